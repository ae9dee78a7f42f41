"""``python -m opensage.algorithms.factorization_machines train``: the container's ``train``
command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.factorization_machines")

if __name__ == "__main__":
    main()
