"""``python -m opensage.algorithms.xgboost train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.xgboost")

if __name__ == "__main__":
    main()
