"""``python -m opensage.algorithms.knn train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.knn")

if __name__ == "__main__":
    main()
