"""``python -m opensage.algorithms.object2vec train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.object2vec")

if __name__ == "__main__":
    main()
