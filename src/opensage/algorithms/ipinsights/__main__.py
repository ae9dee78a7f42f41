"""``python -m opensage.algorithms.ipinsights train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.ipinsights")

if __name__ == "__main__":
    main()
