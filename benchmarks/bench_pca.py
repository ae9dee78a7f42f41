"""PCA speed and quality: opensage's randomized PCA (``algorithm_mode=randomized``, the same
``opensage.algorithms.pca.decomposition.fit`` a training job runs) against scikit-learn's
``PCA(svd_solver="randomized")`` on the same in-memory float32 matrix.

Data: 1,000,000 x 50 float32 with a decaying spectrum (a rank-50 mixing of Gaussian sources
whose scales fall geometrically, plus noise and a non-zero mean). Both fit ``--components``
components; runs alternate (ours, theirs) ``--repeats`` times and the best of each is
compared. Prints the time ratio (target <= 1.0x) and the explained-variance-ratio difference
against the exact solution (the covariance accumulated in float64 and its eigendecomposition,
the ``regular`` mode).

    .venv/bin/python -m benchmarks.bench_pca [--rows 1000000] [--cols 50] [--components 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_data(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = 0.8 ** np.arange(cols)
    mixing, _ = np.linalg.qr(rng.standard_normal((cols, cols)))
    x = (rng.standard_normal((rows, cols), dtype=np.float32) * scales.astype(np.float32)) \
        @ mixing.T.astype(np.float32)
    x += 0.01 * rng.standard_normal((rows, cols), dtype=np.float32)
    x += rng.uniform(-3, 3, size=cols).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--components", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from sklearn.decomposition import PCA

    from opensage.algorithms.pca.decomposition import fit

    x = make_data(args.rows, args.cols)
    k = args.components
    print(f"data {x.shape[0]} x {x.shape[1]} float32, num_components {k}", flush=True)
    ours_t, theirs_t = [], []
    ours = theirs = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = fit(x, k, mode="randomized", subtract_mean=True, extra_components=-1)
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = PCA(k, svd_solver="randomized", random_state=0).fit(x)
        theirs_t.append(time.perf_counter() - start)
    assert ours is not None and theirs is not None
    exact = fit(x, k, mode="regular")  # float64 covariance, eigh: exact to rounding
    ours_ratio = ours.explained_variance_ratio
    theirs_ratio = theirs.explained_variance_ratio_
    exact_ratio = exact.explained_variance_ratio
    best_ours, best_theirs = min(ours_t), min(theirs_t)
    print(f"opensage randomized: best {best_ours:.3f} s  (runs: "
          f"{', '.join(f'{t:.3f}' for t in ours_t)})")
    print(f"sklearn randomized:  best {best_theirs:.3f} s  (runs: "
          f"{', '.join(f'{t:.3f}' for t in theirs_t)})")
    print(f"time ratio opensage/sklearn: {best_ours / best_theirs:.3f}x (target <= 1.0x)")
    print(f"explained variance ratio sum: opensage {ours_ratio.sum():.8f}, sklearn "
          f"{theirs_ratio.sum():.8f}, exact {exact_ratio.sum():.8f}")
    print(f"max |evr difference| opensage vs sklearn: "
          f"{np.max(np.abs(ours_ratio - theirs_ratio)):.3e}; opensage vs exact: "
          f"{np.max(np.abs(ours_ratio - exact_ratio)):.3e}; sklearn vs exact: "
          f"{np.max(np.abs(theirs_ratio - exact_ratio)):.3e}")
    cosines = np.abs(np.sum(ours.components * exact.components, axis=1))
    print(f"min |cos| between opensage and exact components: {cosines.min():.6f}")


if __name__ == "__main__":
    main()
