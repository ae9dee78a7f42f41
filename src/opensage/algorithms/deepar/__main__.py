"""``python -m opensage.algorithms.deepar train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.deepar")

if __name__ == "__main__":
    main()
