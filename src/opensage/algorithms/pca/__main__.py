"""``python -m opensage.algorithms.pca train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.pca")

if __name__ == "__main__":
    main()
