"""``python -m opensage.algorithms.kmeans train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.kmeans")

if __name__ == "__main__":
    main()
