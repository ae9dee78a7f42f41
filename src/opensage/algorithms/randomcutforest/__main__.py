"""``python -m opensage.algorithms.randomcutforest train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.randomcutforest")

if __name__ == "__main__":
    main()
