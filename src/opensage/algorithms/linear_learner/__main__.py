"""``python -m opensage.algorithms.linear_learner train``: the container's ``train`` command."""

from opensage.algorithms.contract import main_for

main = main_for("opensage.algorithms.linear_learner")

if __name__ == "__main__":
    main()
