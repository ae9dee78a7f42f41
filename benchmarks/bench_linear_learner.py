"""Linear learner vs scikit-learn on 1M x 50 float32 synthetic logistic data (2 cores).

Runs the in-process fit the training job runs (``learner.fit`` + ``learner.select``: 32
parallel models by default, Adam, mini-batches of 1000) and scikit-learn's
``LogisticRegression(solver="lbfgs")`` on the same standardised-free data, then prints both
times, their ratio, and held-out accuracy of each.

    .venv/bin/python -m benchmarks.bench_linear_learner [--rows 1000000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np


def make_data(rows: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    x *= rng.uniform(0.5, 3.0, size=dim).astype(np.float32)  # features on different scales
    x += rng.normal(0, 2, size=dim).astype(np.float32)
    w = rng.normal(size=dim) / np.sqrt(dim) * 2
    z = (x - x.mean(axis=0)) / x.std(axis=0) @ w + 0.3
    y = (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(np.float64)
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--num-models", default="auto")
    parser.add_argument("--mini-batch-size", type=int, default=1000)
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression

    from opensage.algorithms.linear_learner.learner import Config, evaluate, fit, select

    x, y = make_data(args.rows + 200_000, args.dim)
    x_train, y_train = x[:args.rows], y[:args.rows]
    x_test, y_test = x[args.rows:], y[args.rows:]
    num_models = args.num_models if args.num_models == "auto" else int(args.num_models)
    cfg = Config("binary_classifier", "logistic", epochs=args.epochs,
                 mini_batch_size=args.mini_batch_size, num_models=num_models)

    start = time.perf_counter()
    fitted = fit(x_train, y_train, cfg)
    chosen, threshold = select(fitted, x_train, y_train)
    model = fitted.model(chosen, threshold)
    ours = time.perf_counter() - start
    our_acc = evaluate(model, x_test, y_test, cfg)["binary_classification_accuracy"]

    start = time.perf_counter()
    reference = LogisticRegression(solver="lbfgs", max_iter=1000).fit(x_train, y_train)
    theirs = time.perf_counter() - start
    their_acc = float(reference.score(x_test, y_test))

    print(f"data: {args.rows} x {args.dim} float32, test {len(y_test)} rows")
    print(f"linear-learner: {ours:.2f} s ({fitted.pop.size} models, {fitted.epochs_run} "
          f"epochs, mini_batch_size {args.mini_batch_size}), test accuracy {our_acc:.4f}")
    print(f"sklearn LogisticRegression(lbfgs): {theirs:.2f} s ({int(reference.n_iter_[0])} "
          f"iterations), test accuracy {their_acc:.4f}")
    print(f"time ratio (ours / sklearn): {ours / theirs:.2f}x; accuracy difference "
          f"{100 * (our_acc - their_acc):+.2f} pt")


if __name__ == "__main__":
    main()
