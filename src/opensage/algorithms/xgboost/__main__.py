"""``python -m opensage.algorithms.xgboost train``: the container's ``train`` command."""

from __future__ import annotations

import sys

from opensage.algorithms.contract import TrainingEnv, run_main


def _train(env: TrainingEnv) -> None:
    try:
        from opensage.algorithms.xgboost.train import train
    except ImportError as e:
        raise RuntimeError(f"the xgboost algorithm cannot start ({e}); install opensage with "
                           f"the 'algorithms' extra: pip install 'opensage[algorithms]'") from e
    train(env)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args != ["train"]:
        print("usage: python -m opensage.algorithms.xgboost train", file=sys.stderr)
        sys.exit(2)
    run_main(_train)


if __name__ == "__main__":
    main()
