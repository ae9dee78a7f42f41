"""``python -m opensage.algorithms.lda train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.lda")

if __name__ == "__main__":
    main()
