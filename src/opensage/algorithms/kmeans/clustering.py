"""The k-means math of the SageMaker algorithm (web-scale k-means), on NumPy arrays.

SageMaker's k-means streams the data in mini-batches over ``epochs``, keeping
``k * extra_center_factor`` centers (more than asked, so a bad start cannot strand a
cluster), then reduces them to ``k`` with a local, count-weighted Lloyd's algorithm
(``local_lloyd_*``), best of ``local_lloyd_num_trials`` by weighted inertia. A final pass
assigns every point to its closest center and moves each center to its points' mean (one
Lloyd step over the data, which the count-weighted reduction approximates).

Several hosts (``group``, :mod:`opensage.algorithms.collective`) train one model: the
starting centers are chosen (with the seed every host shares) from a sample gathered from
every host's rows in proportion to their number; each mini-batch step takes from every host
its share of the batch (every host makes ``ceil(n / mini_batch_size)`` steps an epoch) and the
per-center sums and counts are summed over the hosts before the update, so every host holds
the same centers, as one host taking the whole batch would (only which rows share a batch
differs); the reduction to ``k`` runs on those, and the final Lloyd step sums over the hosts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.collective import LOCAL, Collective

BLOCK = 65536  # rows per distance block: bounds memory at BLOCK x centers floats


def squared_distances(x: NDArray[Any], centers: NDArray[Any],
                      center_norms: NDArray[Any] | None = None) -> NDArray[Any]:
    """``||x_i - c_j||^2`` for every row and center (``||x||^2 - 2 x.c + ||c||^2``, >= 0)."""
    if center_norms is None:
        center_norms = np.einsum("ij,ij->i", centers, centers)
    d: NDArray[Any] = (np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * (x @ centers.T)
                       + center_norms[None, :])
    np.maximum(d, 0, out=d)
    return d


def _blocks(n: int, size: int = BLOCK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def assign(x: NDArray[Any], centers: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """(closest center index, squared distance to it) for every row, in blocks."""
    centers = centers.astype(x.dtype) if x.dtype == np.float32 else centers
    norms = np.einsum("ij,ij->i", centers, centers)
    labels = np.empty(len(x), dtype=np.int64)
    dist = np.empty(len(x), dtype=np.float64)
    for part in _blocks(len(x)):
        d = squared_distances(x[part], centers, norms)
        labels[part] = np.argmin(d, axis=1)
        dist[part] = d[np.arange(len(d)), labels[part]]
    return labels, dist


def init_centers(x: NDArray[Any], n: int, method: str, rng: np.random.Generator,
                 weights: NDArray[Any] | None = None) -> NDArray[Any]:
    """``n`` starting centers: ``random`` rows, or ``kmeans++`` (D^2 sampling, greedy with
    2 + log(n) candidates per step as scikit-learn does)."""
    p = None if weights is None else weights / weights.sum()
    if method == "random" or len(x) <= n:
        replace = len(x) < n
        chosen: NDArray[np.float64] = x[rng.choice(len(x), n, replace=replace, p=p)].astype(
            np.float64)
        return chosen
    centers = np.empty((n, x.shape[1]), dtype=np.float64)
    centers[0] = x[rng.choice(len(x), p=p)]
    w = np.ones(len(x)) if weights is None else weights
    closest = squared_distances(x, centers[:1])[:, 0] * w
    trials = 2 + int(math.log(n))
    for i in range(1, n):
        total = closest.sum()
        if total <= 0:
            centers[i:] = x[rng.choice(len(x), n - i)]
            break
        candidates = np.searchsorted(np.cumsum(closest), rng.random(trials) * total)
        candidates = np.minimum(candidates, len(x) - 1)
        d = np.minimum(closest[:, None],
                       squared_distances(x, x[candidates].astype(np.float64)) * w[:, None])
        best = int(np.argmin(d.sum(axis=0)))
        centers[i] = x[candidates[best]]
        closest = d[:, best]
    return centers


def _batches(order: NDArray[Any], batch_size: int, steps: int | None) -> Iterator[Any]:
    """One epoch's batches of ``order``: ``batch_size`` rows each, or (this host's share of
    every step of several hosts) ``steps`` nearly equal parts."""
    if steps is None:
        for start in range(0, len(order), batch_size):
            yield order[start:start + batch_size]
    else:
        yield from np.array_split(order, steps)


def minibatch(x: NDArray[Any], centers: NDArray[Any], *, epochs: int, batch_size: int,
              half_life: int, rng: np.random.Generator,
              group: Collective = LOCAL) -> tuple[NDArray[Any], NDArray[Any]]:
    """Mini-batch k-means (Sculley's web-scale updates): every center moves toward the mean
    of its batch points by its per-center learning rate. ``half_life`` > 0 decays old counts
    (a point's weight halves after that many points). Returns centers and their counts."""
    centers = centers.copy()
    counts = np.zeros(len(centers))
    decay = 0.5 ** (batch_size / half_life) if half_life > 0 else 1.0
    steps = None
    if group.size > 1:
        steps = max(1, math.ceil(group.sum(np.array([len(x)]))[0] / batch_size))
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for rows in _batches(order, batch_size, steps):
            batch = x[rows]
            labels = np.argmin(squared_distances(batch, centers.astype(batch.dtype)), axis=1)
            counts *= decay
            sums = np.zeros_like(centers)
            _block_sums(batch, labels, sums)
            hits = np.bincount(labels, minlength=len(centers)).astype(np.float64)
            if group.size > 1:
                total = group.sum(np.append(sums.ravel(), hits))
                sums, hits = total[:sums.size].reshape(sums.shape), total[sums.size:]
            moved = hits > 0
            counts[moved] += hits[moved]
            rate = hits[moved] / counts[moved]
            centers[moved] += rate[:, None] * (sums[moved] / hits[moved, None] - centers[moved])
    return centers, counts


def weighted_lloyd(points: NDArray[Any], weights: NDArray[Any], k: int, *, init: str,
                   max_iter: int, tol: float, trials: int,
                   rng: np.random.Generator) -> NDArray[Any]:
    """Reduce weighted points to ``k`` centers: Lloyd's algorithm, best of ``trials``."""
    keep = weights > 0
    points, weights = points[keep], weights[keep]
    if len(points) <= k:
        extra = init_centers(points, k - len(points), "random", rng) if len(points) else None
        return points if extra is None else np.vstack([points, extra])
    best, best_cost = None, math.inf
    scale = float(np.mean(np.var(points, axis=0))) or 1.0
    for _ in range(trials):
        centers = init_centers(points, k, init, rng, weights)
        for _ in range(max_iter):
            d = squared_distances(points, centers)
            labels = np.argmin(d, axis=1)
            sums = np.zeros_like(centers)
            _block_sums(points * weights[:, None], labels, sums)
            mass = np.bincount(labels, weights=weights, minlength=k)
            moved = mass > 0
            new = centers.copy()
            new[moved] = sums[moved] / mass[moved, None]
            shift = float(np.sum((new - centers) ** 2))
            centers = new
            if shift <= tol * scale:
                break
        cost = float(np.sum(weights * np.min(squared_distances(points, centers), axis=1)))
        if cost < best_cost:
            best, best_cost = centers, cost
    assert best is not None
    return best


def lloyd_step(x: NDArray[Any], centers: NDArray[Any],
               group: Collective = LOCAL) -> NDArray[Any]:
    """One Lloyd step over all of ``x`` (and the other hosts' rows; empty clusters keep their
    center)."""
    labels, _ = assign(x, centers)
    sums = np.zeros_like(centers)
    _block_sums(x, labels, sums)
    counts: NDArray[Any] = np.bincount(labels, minlength=len(centers))
    if group.size > 1:
        total = group.sum(np.append(sums.ravel(), counts))
        sums, counts = total[:sums.size].reshape(sums.shape), total[sums.size:]
    moved = counts > 0
    out = centers.copy()
    out[moved] = sums[moved] / counts[moved, None]
    return out


def _block_sums(x: NDArray[Any], labels: NDArray[Any], sums: NDArray[Any]) -> None:
    """Per-center sums as a one-hot matrix product (much faster than ``np.add.at``)."""
    k = len(sums)
    for part in _blocks(len(x)):
        onehot = np.zeros((part.stop - part.start, k), dtype=x.dtype)
        onehot[np.arange(len(onehot)), labels[part]] = 1
        sums += (onehot.T @ x[part]).astype(sums.dtype, copy=False)


def fit(x: NDArray[Any], k: int, *, epochs: int = 1, batch_size: int = 5000,
        extra_center_factor: int | None = None, init: str = "random",
        local_init: str = "kmeans++", local_max_iter: int = 300, local_tol: float = 1e-4,
        local_trials: int | None = None, half_life: int = 0,
        seed: int = 0, group: Collective = LOCAL) -> NDArray[Any]:
    """Fit ``k`` centers to ``x`` (rows, this host's when ``group`` has several); see the
    module docstring for the steps."""
    rng = np.random.default_rng(seed)  # the same on every host
    n = len(x) if group.size == 1 else round(float(group.sum(np.array([len(x)]))[0]))
    factor = extra_center_factor or max(1, math.ceil(math.log(max(n, 2))))
    n_extra = min(n, k * factor)
    wanted = min(n, max(50 * n_extra, batch_size))
    if group.size == 1:
        own = rng  # one host draws everything from one generator
        sample = x[rng.choice(len(x), wanted, replace=False)]
    else:
        own = np.random.default_rng([seed, group.rank])  # this host's batches and sample
        share = min(len(x), math.ceil(wanted * len(x) / max(n, 1)))
        sample = group.gather_rows(x[own.choice(len(x), share, replace=False)]).astype(
            x.dtype)
    start = init_centers(sample, n_extra, init, rng)
    centers, counts = minibatch(x, start, epochs=epochs, batch_size=batch_size,
                                half_life=half_life, rng=own, group=group)
    if n_extra > k:
        trials = local_trials or max(1, min(10, math.ceil(math.log2(n_extra))))
        centers = weighted_lloyd(centers, counts, k, init=local_init,
                                 max_iter=local_max_iter, tol=local_tol, trials=trials, rng=rng)
    return lloyd_step(x, centers, group)
