"""``python -m opensage.algorithms.blazingtext train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.blazingtext")

if __name__ == "__main__":
    main()
