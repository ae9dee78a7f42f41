"""``python -m opensage.algorithms.image_classification train``: the container's ``train``
command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.image_classification")

if __name__ == "__main__":
    main()
