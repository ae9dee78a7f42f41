"""The k-NN math of the SageMaker algorithm, on NumPy arrays (no faiss).

* Sampling: the index keeps a uniform sample of ``sample_size`` training points (what a
  reservoir sample over the stream yields).
* Dimension reduction (random projections, Johnson-Lindenstrauss):
  ``sign``: ``x @ R`` with ``R`` a random +-1 matrix scaled by ``1/sqrt(target)``;
  ``fjlt``: the fast JL transform as a subsampled randomized Hadamard transform: random signs,
  a fast Walsh-Hadamard transform (features zero-padded to a power of two), then ``target``
  coordinates sampled without replacement, scaled to preserve norms in expectation.
* Indexes: ``faiss.Flat``: exact blocked brute force (BLAS products); ``faiss.IVFFlat``: a
  k-means coarse quantizer with ``nlists`` inverted lists, each query probing its ``nprobe``
  closest lists (more when they hold fewer than ``k`` points); ``faiss.IVFPQ``: the same lists
  holding product-quantized residuals (``m`` sub-quantizers of up to 256 centroids, uint8
  codes); distances are computed against the decoded vectors (faiss's asymmetric distance).
* Metrics: ``L2`` distances are squared Euclidean distances (as faiss reports them);
  ``INNER_PRODUCT`` ranks by the largest inner product and reports its negative, ``COSINE``
  ranks by cosine similarity (vectors normalized) and reports ``1 - cosine``; distances are
  always ascending.
* Prediction: majority vote of the ``k`` labels (ties go to the smallest label, as
  scikit-learn breaks them) or their mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

ELEMENTS = 1 << 23  # bound on one block's query x point distance matrix


# ------------------------------------------------------------------------------ projections


def fwht(x: NDArray[Any]) -> NDArray[Any]:
    """The orthonormal fast Walsh-Hadamard transform of each row (width a power of two)."""
    n, width = x.shape
    y = x
    h = 1
    while h < width:
        y = y.reshape(n, -1, 2, h)
        y = np.stack((y[:, :, 0, :] + y[:, :, 1, :], y[:, :, 0, :] - y[:, :, 1, :]), axis=2)
        h *= 2
    return y.reshape(n, width) / math.sqrt(width)


@dataclass
class Projection:
    """A random projection ``feature_dim -> target`` (``kind`` sign or fjlt)."""

    kind: str
    matrix: NDArray[Any] | None = None  # sign: (d, target)
    signs: NDArray[Any] | None = None  # fjlt: (padded,) +-1
    rows: NDArray[Any] | None = None  # fjlt: (target,) sampled coordinates

    @classmethod
    def make(cls, kind: str, dim: int, target: int, rng: np.random.Generator) -> Projection:
        if kind == "sign":
            matrix = rng.choice(np.array([-1.0, 1.0], np.float32), size=(dim, target))
            return cls(kind, matrix=matrix / np.float32(math.sqrt(target)))
        padded = 1 << max(0, (dim - 1).bit_length())
        signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=padded)
        rows = np.sort(rng.choice(padded, size=target, replace=False))
        return cls(kind, signs=signs, rows=rows.astype(np.int64))

    def apply(self, x: NDArray[Any]) -> NDArray[Any]:
        x = np.asarray(x, dtype=np.float32)
        if self.kind == "sign":
            assert self.matrix is not None
            projected: NDArray[np.float32] = x @ self.matrix
            return projected
        assert self.signs is not None and self.rows is not None
        padded = len(self.signs)
        out = np.empty((len(x), len(self.rows)), dtype=np.float32)
        scale = np.float32(math.sqrt(padded / len(self.rows)))
        step = max(1, ELEMENTS // (padded * 4))
        for part in _blocks(len(x), step):
            block = np.zeros((part.stop - part.start, padded), dtype=np.float32)
            block[:, :x.shape[1]] = x[part]
            block *= self.signs
            out[part] = fwht(block)[:, self.rows] * scale
        return out

    def arrays(self) -> dict[str, NDArray[Any]]:
        if self.kind == "sign":
            assert self.matrix is not None
            return {"projection_matrix": self.matrix}
        assert self.signs is not None and self.rows is not None
        return {"fjlt_signs": self.signs, "fjlt_rows": self.rows}

    @classmethod
    def from_arrays(cls, kind: str, arrays: dict[str, NDArray[Any]]) -> Projection:
        if kind == "sign":
            return cls(kind, matrix=arrays["projection_matrix"].astype(np.float32))
        return cls(kind, signs=arrays["fjlt_signs"].astype(np.float32),
                   rows=arrays["fjlt_rows"].astype(np.int64))


# ---------------------------------------------------------------------------------- helpers


def _blocks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, max(1, size)):
        yield slice(start, min(start + max(1, size), n))


def normalize(x: NDArray[Any]) -> NDArray[Any]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: NDArray[Any] = x / np.where(norms > 0, norms, 1).astype(x.dtype)
    return unit


def scores(queries: NDArray[Any], points: NDArray[Any], metric: str,
           point_norms: NDArray[Any] | None = None) -> NDArray[Any]:
    """Ascending distances (query x point): squared L2, or the negative inner product (COSINE
    vectors are normalized beforehand, so it is ``-cos``)."""
    products: NDArray[Any] = queries @ points.T
    if metric != "L2":
        return -products
    if point_norms is None:
        point_norms = np.einsum("ij,ij->i", points, points)
    d: NDArray[Any] = (np.einsum("ij,ij->i", queries, queries)[:, None] - 2 * products
                       + point_norms[None, :])
    np.maximum(d, 0, out=d)
    return d


def _top_k(dist: NDArray[Any], ids: NDArray[Any], k: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """The ``k`` smallest of each row (sorted ascending, ties by id); ``ids`` per column or
    per entry."""
    if dist.shape[1] > k:
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        dist = np.take_along_axis(dist, part, axis=1)
        ids = np.take_along_axis(ids, part, axis=1) if ids.ndim == 2 else ids[part]
    elif ids.ndim == 1:
        ids = np.broadcast_to(ids, dist.shape)
    order = np.lexsort((ids, dist), axis=1)
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(ids, order, axis=1)


def kmeans(x: NDArray[Any], n_clusters: int, rng: np.random.Generator,
           n_iter: int = 20) -> NDArray[Any]:
    """Lloyd's k-means (L2) from random distinct rows; empty clusters are re-seeded."""
    n_clusters = min(n_clusters, len(x))
    centers: NDArray[np.float32] = x[rng.choice(len(x), n_clusters, replace=False)].astype(
        np.float32)
    for _ in range(n_iter):
        labels = np.argmin(scores(x, centers, "L2"), axis=1)
        counts = np.bincount(labels, minlength=n_clusters)
        sums = np.stack([np.bincount(labels, weights=x[:, j], minlength=n_clusters)
                         for j in range(x.shape[1])], axis=1).astype(np.float32)
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
        empty = np.flatnonzero(~filled)
        if len(empty):
            centers[empty] = x[rng.choice(len(x), len(empty), replace=False)]
    return centers


def _assign(x: NDArray[Any], centers: NDArray[Any], metric: str) -> NDArray[Any]:
    out = np.empty(len(x), dtype=np.int64)
    step = max(1, ELEMENTS // max(len(centers), 1))
    norms = np.einsum("ij,ij->i", centers, centers)
    for part in _blocks(len(x), step):
        out[part] = np.argmin(scores(x[part], centers, metric, norms), axis=1)
    return out


# ---------------------------------------------------------------------------------- indexes


@dataclass
class Index:
    """The searchable index: points (or PQ codes) in list order, with their labels."""

    kind: str  # faiss.Flat, faiss.IVFFlat, faiss.IVFPQ
    metric: str
    labels: NDArray[Any]  # (n,) labels in index order
    ids: NDArray[Any] | None = None  # (n,) the sampled training row of each index position
    points: NDArray[Any] | None = None  # (n, dim) Flat / IVFFlat
    centroids: NDArray[Any] | None = None  # (nlist, dim) IVF
    offsets: NDArray[Any] | None = None  # (nlist + 1,) list boundaries
    codes: NDArray[Any] | None = None  # (n, m) uint8, IVFPQ
    codebooks: NDArray[Any] | None = None  # (m, ksub, dim / m), IVFPQ
    nprobe: int = 1
    _norms: NDArray[Any] | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return len(self.labels)

    def arrays(self) -> dict[str, NDArray[Any]]:
        out = {"labels": self.labels}
        for name in ("ids", "points", "centroids", "offsets", "codes", "codebooks"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_arrays(cls, kind: str, metric: str, nprobe: int,
                    arrays: dict[str, NDArray[Any]]) -> Index:
        return cls(kind=kind, metric=metric, nprobe=nprobe, labels=arrays["labels"],
                   **{name: arrays.get(name) for name in
                      ("ids", "points", "centroids", "offsets", "codes", "codebooks")})

    # -- search
    def search(self, queries: NDArray[Any], k: int) -> tuple[NDArray[Any], NDArray[Any]]:
        """(distances, index positions), each (queries, k), distances ascending."""
        queries = np.asarray(queries, dtype=np.float32)
        if self.kind == "faiss.Flat":
            return self._search_flat(queries, k)
        return self._search_ivf(queries, k)

    def _search_flat(self, queries: NDArray[Any], k: int) -> tuple[NDArray[Any], NDArray[Any]]:
        assert self.points is not None
        if self._norms is None:
            self._norms = np.einsum("ij,ij->i", self.points, self.points)
        dist = np.empty((len(queries), k), dtype=np.float32)
        ids = np.empty((len(queries), k), dtype=np.int64)
        ids_all = np.arange(self.size)
        for part in _blocks(len(queries), ELEMENTS // max(self.size, 1)):
            d = scores(queries[part], self.points, self.metric, self._norms)
            dist[part], ids[part] = _top_k(d, ids_all, k)
        return dist, ids

    def _decode(self, lo: int, hi: int, list_id: int) -> NDArray[Any]:
        """The vectors of positions lo:hi (one list), decoded for IVFPQ."""
        if self.kind == "faiss.IVFFlat":
            assert self.points is not None
            return self.points[lo:hi]
        assert self.codes is not None and self.codebooks is not None
        assert self.centroids is not None
        codes = self.codes[lo:hi]
        m = self.codebooks.shape[0]
        parts = [self.codebooks[j][codes[:, j]] for j in range(m)]
        decoded: NDArray[Any] = np.hstack(parts) + self.centroids[list_id]
        return decoded

    def _search_ivf(self, queries: NDArray[Any], k: int) -> tuple[NDArray[Any], NDArray[Any]]:
        assert self.centroids is not None and self.offsets is not None
        nlist = len(self.centroids)
        sizes = np.diff(self.offsets)
        coarse = scores(queries, self.centroids, self.metric)
        order = np.argsort(coarse, axis=1, kind="stable")
        # probe nprobe lists, or as many as it takes to hold k points
        held = np.cumsum(sizes[order], axis=1)
        needed = np.minimum((held < k).sum(axis=1) + 1, nlist)
        probes = np.maximum(needed, min(self.nprobe, nlist))
        probe = np.zeros((len(queries), nlist), dtype=bool)
        rank = np.arange(nlist)[None, :] < probes[:, None]
        np.put_along_axis(probe, order, rank, axis=1)
        best_d = np.full((len(queries), k), np.inf, dtype=np.float32)
        best_i = np.full((len(queries), k), -1, dtype=np.int64)
        for list_id in range(nlist):
            lo, hi = int(self.offsets[list_id]), int(self.offsets[list_id + 1])
            who = np.flatnonzero(probe[:, list_id])
            if hi == lo or not len(who):
                continue
            vectors = self._decode(lo, hi, list_id)
            d = scores(queries[who], vectors, self.metric).astype(np.float32)
            ids = np.broadcast_to(np.arange(lo, hi), d.shape)
            best_d[who], best_i[who] = _top_k(np.hstack([best_d[who], d]),
                                              np.hstack([best_i[who], ids]), k)
        return best_d, best_i


def build_index(x: NDArray[Any], labels: NDArray[Any], *, kind: str, metric: str,
                nlists: int | None = None, pq_m: int | None = None,
                rng: np.random.Generator) -> Index:
    """The index of ``x`` (already projected and, for COSINE, normalized)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.float32)
    if kind == "faiss.Flat":
        return Index(kind=kind, metric=metric, labels=labels, points=x,
                     ids=np.arange(len(x), dtype=np.int64))
    nlist = max(1, min(len(x), nlists or round(math.sqrt(len(x)))))
    train = x if len(x) <= 256 * nlist else x[rng.choice(len(x), 256 * nlist, replace=False)]
    centroids = kmeans(train, nlist, rng)
    nlist = len(centroids)
    assignment = _assign(x, centroids, metric)
    order = np.argsort(assignment, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(assignment, minlength=nlist))])
    nprobe = min(nlist, max(1, math.ceil(math.sqrt(nlist))))
    x, labels, assignment = x[order], labels[order], assignment[order]
    ids = order.astype(np.int64)
    if kind == "faiss.IVFFlat":
        return Index(kind=kind, metric=metric, labels=labels, points=x, centroids=centroids,
                     offsets=offsets.astype(np.int64), nprobe=nprobe, ids=ids)
    m = pq_m or default_pq_m(x.shape[1])
    residuals = x - centroids[assignment]
    sub = x.shape[1] // m
    ksub = min(256, len(x))
    sample = residuals if len(x) <= 64 * ksub else \
        residuals[rng.choice(len(x), 64 * ksub, replace=False)]
    codebooks = np.empty((m, ksub, sub), dtype=np.float32)
    codes = np.empty((len(x), m), dtype=np.uint8)
    for j in range(m):
        cols = slice(j * sub, (j + 1) * sub)
        book = kmeans(np.ascontiguousarray(sample[:, cols]), ksub, rng)
        codebooks[j, :len(book)] = book
        codebooks[j, len(book):] = book[0]
        codes[:, j] = _assign(np.ascontiguousarray(residuals[:, cols]), book, "L2")
    return Index(kind=kind, metric=metric, labels=labels, centroids=centroids,
                 offsets=offsets.astype(np.int64), codes=codes, codebooks=codebooks,
                 nprobe=nprobe, ids=ids)


def default_pq_m(dim: int) -> int:
    """faiss_index_pq_m when unset: the largest allowed value dividing ``dim`` that leaves
    sub-vectors of at least 2 dimensions (1 when none does)."""
    from opensage.algorithms.knn.spec import PQ_M_VALUES

    fits = [m for m in PQ_M_VALUES if dim % m == 0 and dim // m >= 2]
    return max(fits) if fits else 1


# ------------------------------------------------------------------------------- prediction


def predict(neighbor_labels: NDArray[Any], predictor_type: str) -> NDArray[Any]:
    """Majority vote (ties to the smallest label) or mean of each row's neighbor labels."""
    if predictor_type == "regressor":
        means: NDArray[np.float64] = neighbor_labels.astype(np.float64).mean(axis=1)
        return means
    classes, inverse = np.unique(neighbor_labels, return_inverse=True)
    inverse = inverse.reshape(neighbor_labels.shape)
    rows = np.repeat(np.arange(len(neighbor_labels)), neighbor_labels.shape[1])
    counts = np.zeros((len(neighbor_labels), len(classes)), dtype=np.int64)
    np.add.at(counts, (rows, inverse.ravel()), 1)
    votes: NDArray[np.float64] = classes[np.argmax(counts, axis=1)].astype(np.float64)
    return votes


def sample_rows(n: int, sample_size: int, rng: np.random.Generator) -> NDArray[Any] | None:
    """Positions of a uniform sample without replacement (None: keep everything)."""
    if sample_size >= n:
        return None
    return np.sort(rng.choice(n, sample_size, replace=False))


# ------------------------------------------------------------------------------------ model


@dataclass
class KNN:
    """A fitted model: the projection, the index and how to turn neighbors into a label."""

    k: int
    predictor_type: str
    index: Index
    projection: Projection | None = None

    def transform(self, x: NDArray[Any]) -> NDArray[Any]:
        x = np.asarray(x, dtype=np.float32)
        if self.projection is not None:
            x = self.projection.apply(x)
        if self.index.metric == "COSINE":
            x = normalize(x)
        return x

    def query(self, x: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
        """(predicted labels, neighbor distances ascending, neighbor labels)."""
        dist, ids = self.index.search(self.transform(x), self.k)
        if self.index.metric == "COSINE":
            dist = dist + 1  # 1 - cos
        neighbor_labels = self.index.labels[ids]
        return predict(neighbor_labels, self.predictor_type), dist, neighbor_labels


def fit(x: NDArray[Any], labels: NDArray[Any], *, k: int, predictor_type: str, sample_size: int,
        index_type: str = "faiss.Flat", index_metric: str = "L2",
        reduction: str | None = None, reduction_target: int | None = None,
        nlists: int | None = None, pq_m: int | None = None, seed: int = 0) -> KNN:
    """Sample, project and index the training points (see the module docstring)."""
    rng = np.random.default_rng(seed)
    keep = sample_rows(len(x), sample_size, rng)
    if keep is not None:
        x, labels = x[keep], labels[keep]
    projection = None
    if reduction is not None and reduction_target is not None:
        projection = Projection.make(reduction, x.shape[1], reduction_target, rng)
    model = KNN(k=k, predictor_type=predictor_type,
                index=Index(kind=index_type, metric=index_metric, labels=labels),
                projection=projection)
    model.index = build_index(model.transform(x), labels, kind=index_type, metric=index_metric,
                              nlists=nlists, pq_m=pq_m, rng=rng)
    return model
