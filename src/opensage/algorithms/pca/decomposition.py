"""The PCA math of the SageMaker algorithm, on NumPy arrays or SciPy CSR matrices.

Both modes stream the rows in blocks and never form a centered copy of the data: centering
is applied to ``d x d`` / ``d x l`` products (``X_c^T X_c = X^T X - n mu mu^T``), so sparse
input stays sparse. Dense blocks are first shifted by a rough mean (the first block's) so the
float32 products do not lose the small centered signal under a large mean.

* ``regular``: the exact covariance (``d x d`` Gram matrix accumulated in float64) and its
  eigendecomposition; one pass.
* ``randomized``: Halko, Martinsson & Tropp's randomized range finder with power (subspace)
  iterations applied to ``C = X_c^T X_c`` (every pass computes ``C Q = X^T (X Q)`` blockwise,
  ``l = num_components + extra_components`` columns), finished by the Nystrom step for PSD
  matrices (Halko et al. algorithm 5.5, stabilised as in Tropp et al. 2017). ``q + 1`` passes,
  with ``q`` power iterations chosen as scikit-learn does (7 when ``k < 0.1 d``, else 4).

Components come back in descending order of variance.

Several hosts (``group``, :mod:`opensage.algorithms.collective`) each stream their own rows
and sum what a pass yields, ``n``, the column sums and sums of squares, ``X^T X`` (regular) or
``X^T (X Q)`` (randomized, every pass, from the same seeded ``Q`` on every host), over the
hosts before the eigendecomposition: every host ends with the components one host would find
on all the rows (to float rounding). The rough mean dense blocks are shifted by is the mean
of every host's first block.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from opensage.algorithms.collective import LOCAL, Collective

BLOCK = 16384  # rows per block: a float32 block of 50 features stays in cache between products


@dataclass
class PCAResult:
    mean: NDArray[Any]  # (d,) float64 column means (zeros when subtract_mean is off)
    components: NDArray[Any]  # (k, d) unit rows, descending variance
    singular_values: NDArray[Any]  # (k,) sqrt of the eigenvalues of X_c^T X_c
    explained_variance: NDArray[Any]  # (k,) eigenvalues / (n - 1)
    total_variance: float  # trace of the covariance (sum of all variances)
    n: int

    @property
    def explained_variance_ratio(self) -> NDArray[Any]:
        return self.explained_variance / self.total_variance if self.total_variance > 0 \
            else np.zeros_like(self.explained_variance)


def _is_sparse(x: Any) -> bool:
    return hasattr(x, "tocsr")


def _blocks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _shift(x: Any, subtract_mean: bool, block: int,
           group: Collective = LOCAL) -> NDArray[Any]:
    """A rough mean to subtract from dense blocks (zeros for sparse data or no centering):
    the mean of the first block (of every host's first block)."""
    if _is_sparse(x) or not subtract_mean:
        return np.zeros(x.shape[1])
    first = np.asarray(x[:block], dtype=np.float64)
    total = group.sum(np.append(first.sum(axis=0), len(first)))
    mean: NDArray[np.float64] = total[:-1] / max(total[-1], 1.0)
    return mean


def _dense_block(x: NDArray[Any], part: slice, shift: NDArray[Any], dtype: np.dtype[Any],
                 buf: NDArray[Any] | None) -> NDArray[Any]:
    rows = part.stop - part.start
    out = buf[:rows] if buf is not None else np.empty((rows, x.shape[1]), dtype)
    np.subtract(x[part], shift.astype(dtype), out=out)
    return out


def _work_dtype(x: Any) -> np.dtype[Any]:
    return np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)


def _gram_pass(x: Any, q: NDArray[Any] | None, shift: NDArray[Any], block: int,
               stats: bool) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """One pass over the rows of ``X_s = X - shift``: ``X_s^T (X_s q)`` (or the whole Gram
    ``X_s^T X_s`` when ``q`` is None), and when ``stats`` the column sums and sums of squares."""
    n, d = x.shape
    sparse = _is_sparse(x)
    dtype = np.dtype(np.float64) if q is None else _work_dtype(x)
    out = np.zeros((d, d if q is None else q.shape[1]))
    colsum = np.zeros(d)
    sumsq = np.zeros(d)
    qw = None if q is None else q.astype(dtype)
    buf = None if sparse else np.empty((min(block, n), d), dtype)
    for part in _blocks(n, block):
        if sparse:
            b = x[part]
            if qw is None:
                out += (b.T @ b).toarray()
            else:
                out += b.T @ (b @ qw)
            if stats:
                colsum += np.asarray(b.sum(axis=0), dtype=np.float64).ravel()
                sumsq += np.asarray(b.multiply(b).sum(axis=0), dtype=np.float64).ravel()
            continue
        b = _dense_block(x, part, shift, dtype, buf)
        out += b.T @ b if qw is None else b.T @ (b @ qw)
        if stats:
            colsum += b.sum(axis=0, dtype=np.float64)
            sumsq += np.einsum("ij,ij->j", b, b, dtype=np.float64)
    return out, colsum, sumsq


def _finish(n: int, shift: NDArray[Any], colsum: NDArray[Any], sumsq: NDArray[Any],
            subtract_mean: bool) -> tuple[NDArray[Any], NDArray[Any], float]:
    """(mean of the shifted data, true mean, total variance) from a pass's statistics."""
    m_s = colsum / n if subtract_mean else np.zeros_like(colsum)
    total = float(sumsq.sum() - n * float(m_s @ m_s))
    mean = shift + m_s if subtract_mean else np.zeros_like(colsum)
    return m_s, mean, max(total, 0.0) / max(n - 1, 1)


def _result(n: int, mean: NDArray[Any], values: NDArray[Any], vectors: NDArray[Any], k: int,
            total_variance: float) -> PCAResult:
    order = np.argsort(values)[::-1][:k]
    values = np.maximum(values[order], 0.0)
    vectors = vectors[:, order]
    # a deterministic sign: the largest-magnitude entry of each component is positive
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])])
    vectors = vectors * np.where(signs == 0, 1.0, signs)
    return PCAResult(mean=mean, components=np.ascontiguousarray(vectors.T),
                     singular_values=np.sqrt(values),
                     explained_variance=values / max(n - 1, 1),
                     total_variance=total_variance, n=n)


def _summed(group: Collective, n: int, out: NDArray[Any], colsum: NDArray[Any],
            sumsq: NDArray[Any]) -> tuple[int, NDArray[Any], NDArray[Any], NDArray[Any]]:
    """A pass's (n, product, column sums, sums of squares) summed over the hosts."""
    if group.size == 1:
        return n, out, colsum, sumsq
    d = len(colsum)
    total = group.sum(np.concatenate([[n], colsum, sumsq, out.ravel()]))
    return (round(float(total[0])), total[1 + 2 * d:].reshape(out.shape), total[1:1 + d],
            total[1 + d:1 + 2 * d])


def fit_regular(x: Any, k: int, *, subtract_mean: bool = True,
                block: int = BLOCK, group: Collective = LOCAL) -> PCAResult:
    """Exact PCA: the covariance accumulated over blocks (and hosts), then its
    eigendecomposition."""
    shift = _shift(x, subtract_mean, block, group)
    n, gram, colsum, sumsq = _summed(group, x.shape[0],
                                     *_gram_pass(x, None, shift, block, stats=True))
    m_s, mean, total = _finish(n, shift, colsum, sumsq, subtract_mean)
    cov = gram - n * np.outer(m_s, m_s)
    cov = (cov + cov.T) / 2
    values, vectors = scipy.linalg.eigh(cov, subset_by_index=[cov.shape[0] - k,
                                                              cov.shape[0] - 1])
    return _result(n, mean, values, vectors, k, total)


def power_iterations(k: int, d: int) -> int:
    """scikit-learn's ``n_iter='auto'``: 7 when few components are asked for, else 4."""
    return 7 if k < 0.1 * d else 4


def fit_randomized(x: Any, k: int, *, subtract_mean: bool = True, extra_components: int = -1,
                   n_iter: int | None = None, block: int = BLOCK,
                   seed: int = 0, group: Collective = LOCAL) -> PCAResult:
    """Randomized PCA (see the module docstring): ``n_iter + 1`` passes over the data."""
    n, d = x.shape
    if group.size > 1:
        n = round(float(group.sum(np.array([n]))[0]))
    extra = max(10, k) if extra_components < 0 else extra_components
    width = min(d, k + extra)
    q_iter = power_iterations(k, d) if n_iter is None else n_iter
    rng = np.random.default_rng(seed)
    shift = _shift(x, subtract_mean, block, group)
    basis = rng.standard_normal((d, width))
    m_s = np.zeros(d)
    mean, total = np.zeros(d), 0.0
    y = basis
    for i in range(q_iter + 1):
        y, colsum, sumsq = _gram_pass(x, basis, shift, block, stats=i == 0)
        if group.size > 1:
            _, y, colsum, sumsq = _summed(group, 0, y, colsum, sumsq)
        if i == 0:
            m_s, mean, total = _finish(n, shift, colsum, sumsq, subtract_mean)
        y -= n * np.outer(m_s, m_s @ basis)  # C Q for the centered data
        if i < q_iter:
            basis, _ = np.linalg.qr(y)
    # Nystrom: C ~ Y (Q^T Y)^-1 Y^T with Y = C Q, shifted by nu for a stable Cholesky.
    nu = np.finfo(np.float64).eps * max(float(np.linalg.norm(y, 2)), 1e-300) * d
    y_nu = y + nu * basis
    small = basis.T @ y_nu
    small = (small + small.T) / 2
    try:
        chol = np.linalg.cholesky(small)
        f = scipy.linalg.solve_triangular(chol, y_nu.T, lower=True).T
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        values = s ** 2 - nu
    except np.linalg.LinAlgError:  # (numerically) rank-deficient: plain Rayleigh-Ritz
        values, w = np.linalg.eigh(basis.T @ y)
        u = basis @ w
    return _result(n, mean, values, u, k, total)


def fit(x: Any, k: int, *, mode: str = "regular", subtract_mean: bool = True,
        extra_components: int = -1, block: int = BLOCK, seed: int = 0,
        group: Collective = LOCAL) -> PCAResult:
    """``k`` principal components of ``x`` (rows, this host's when ``group`` has several),
    as ``algorithm_mode`` asks."""
    if mode == "randomized":
        return fit_randomized(x, k, subtract_mean=subtract_mean,
                              extra_components=extra_components, block=block, seed=seed,
                              group=group)
    return fit_regular(x, k, subtract_mean=subtract_mean, block=block, group=group)


def project(x: Any, mean: NDArray[Any], components: NDArray[Any]) -> NDArray[Any]:
    """``(x - mean) @ components.T`` without densifying a sparse ``x``."""
    out = np.asarray(x @ components.T, dtype=np.float64)
    projected: NDArray[np.float64] = out - (mean @ components.T)[None, :]
    return projected
