"""``python -m opensage.algorithms.seq2seq train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.seq2seq")

if __name__ == "__main__":
    main()
