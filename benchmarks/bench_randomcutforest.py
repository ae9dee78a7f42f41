"""Random Cut Forest speed and quality: opensage's forest (``fit`` then ``score`` of every
record, the same ``opensage.algorithms.randomcutforest.forest`` code a training job runs to
get its three-sigma threshold) against scikit-learn's ``IsolationForest`` with the same
number of trees and samples per tree, fit and ``score_samples`` on the same data.

Data: ``--rows`` x ``--cols`` float32, standard normal with 1% of the rows injected 4 to 8
standard deviations out (in a random direction). Prints both times (wall and this process's
CPU), the time ratio, and the AUC of each one's scores against the injected labels.

    .venv/bin/python -m benchmarks.bench_randomcutforest [--rows 100000] [--cols 10]
        [--trees 100] [--samples 256] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time

# as in a training job (the fork server sets it): our threads, not OpenBLAS's, use the cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def make_data(rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols), dtype=np.float32)
    labels = np.zeros(rows)
    out = rng.choice(rows, rows // 100, replace=False)
    direction = rng.standard_normal((len(out), cols))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    x[out] = (direction * rng.uniform(4, 8, size=(len(out), 1))).astype(np.float32)
    labels[out] = 1
    return x, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", type=int, default=10)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None,
                        help="scoring threads (default: the CPU count)")
    args = parser.parse_args()

    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    from opensage.algorithms.randomcutforest.forest import fit, score

    x, labels = make_data(args.rows, args.cols)
    print(f"data {x.shape[0]} x {x.shape[1]} float32 ({int(labels.sum())} injected "
          f"anomalies), {args.trees} trees x {args.samples} samples", flush=True)

    wall, cpu = time.perf_counter(), time.process_time()
    forest = fit(x, num_trees=args.trees, num_samples_per_tree=args.samples)
    built = time.perf_counter() - wall
    ours = score(forest, x, threads=args.threads)
    ours_wall, ours_cpu = time.perf_counter() - wall, time.process_time() - cpu

    wall, cpu = time.perf_counter(), time.process_time()
    reference = IsolationForest(n_estimators=args.trees, max_samples=args.samples,
                                random_state=0, n_jobs=args.threads).fit(x)
    theirs = -reference.score_samples(x)
    theirs_wall, theirs_cpu = time.perf_counter() - wall, time.process_time() - cpu

    print(f"opensage RCF   : fit {built:.2f} s + score all = {ours_wall:.2f} s wall, "
          f"{ours_cpu:.2f} s CPU; AUC {roc_auc_score(labels, ours):.4f}")
    print(f"IsolationForest: fit + score_samples = {theirs_wall:.2f} s wall, "
          f"{theirs_cpu:.2f} s CPU; AUC {roc_auc_score(labels, theirs):.4f}")
    print(f"time ratio (ours / IsolationForest): {ours_wall / theirs_wall:.2f}x wall, "
          f"{ours_cpu / max(theirs_cpu, 1e-9):.2f}x CPU")


if __name__ == "__main__":
    main()
