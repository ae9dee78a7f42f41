"""``python -m opensage.algorithms.ntm train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.ntm")

if __name__ == "__main__":
    main()
