"""k-means speed and quality: opensage's k-means (the same
``opensage.algorithms.kmeans.clustering.fit`` a training job runs, default hyperparameters:
one epoch of mini-batches of 5000, extra centers, local Lloyd reduction, a final Lloyd step)
against scikit-learn's ``KMeans`` (lloyd, k-means++ init, ``n_init=1``) on the same float32
matrix: 1,000,000 x 50, 10 Gaussian clusters with unequal spreads. Prints the time ratio
(target <= 1.0x) and the inertia ratio (target within 1 %).

    .venv/bin/python -m benchmarks.bench_kmeans [--rows 1000000] [--cols 50] [--k 10]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def make_data(rows: int, cols: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, cols)).astype(np.float32)
    spreads = rng.uniform(0.5, 3.0, size=k).astype(np.float32)
    labels = rng.integers(0, k, rows)
    x = rng.standard_normal((rows, cols), dtype=np.float32) * spreads[labels, None]
    x += centers[labels]
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from sklearn.cluster import KMeans

    from opensage.algorithms.kmeans.clustering import assign, fit

    x = make_data(args.rows, args.cols, args.k)
    print(f"data {x.shape[0]} x {x.shape[1]} float32, k {args.k}, load "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    ours_t, theirs_t, ours_inertia, theirs_inertia = [], [], [], []
    for seed in range(args.repeats):
        start = time.perf_counter()
        centers = fit(x, args.k, seed=seed)
        ours_t.append(time.perf_counter() - start)
        ours_inertia.append(float(assign(x, centers)[1].sum()))
        start = time.perf_counter()
        reference = KMeans(args.k, n_init=1, random_state=seed).fit(x)
        theirs_t.append(time.perf_counter() - start)
        theirs_inertia.append(float(reference.inertia_))
    print(f"opensage: best {min(ours_t):.3f} s, inertia {ours_inertia}")
    print(f"sklearn:  best {min(theirs_t):.3f} s, inertia {theirs_inertia}")
    print(f"time ratio opensage/sklearn: {min(ours_t) / min(theirs_t):.3f}x (target <= 1.0x)")
    print(f"inertia ratio (mean over seeds): "
          f"{np.mean(ours_inertia) / np.mean(theirs_inertia):.4f} (target <= 1.01)")


if __name__ == "__main__":
    main()
