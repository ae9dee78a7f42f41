"""The factorization machine of the SageMaker algorithm, on SciPy CSR mini-batches.

The model (Rendle's degree-2 factorization machine)::

    y(x) = w0 + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j

with the pairwise term computed by the O(k nnz) identity
``0.5 * sum_f ((sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2)``. A regressor predicts ``y`` and
trains on squared error; a binary classifier predicts ``sigmoid(y)`` and trains on the
logistic loss (labels 0/1).

Training is what SageMaker's MXNet implementation does: mini-batches over ``epochs``, Adam
with one learning rate and weight decay per parameter group (bias, linear, factors), the
gradient summed over the batch times ``rescale_grad`` (default ``1 / batch rows``), clipped
to ``clip_gradient``; the sparse groups are updated lazily, only the rows of the features
present in the batch (MXNet's row-sparse update). Every step is vectorised over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from opensage.algorithms.firstparty.scoring import binary_scores

BETA1, BETA2 = 0.9, 0.999


@dataclass
class Group:
    """One parameter group's optimiser settings and initialisation."""

    lr: float
    wd: float
    init_method: str = "normal"
    init_sigma: float = 0.01
    init_scale: float | None = None
    init_value: float | None = None

    def init(self, shape: tuple[int, ...], rng: np.random.Generator) -> NDArray[Any]:
        if self.init_method == "constant":
            return np.full(shape, self.init_value or 0.0)
        if self.init_method == "uniform":
            scale = self.init_scale if self.init_scale is not None else self.init_sigma
            return rng.uniform(-scale, scale, size=shape)
        return rng.normal(0.0, self.init_sigma, size=shape)


@dataclass
class Params:
    """A trained factorization machine: ``w0``, ``w`` (d,), ``v`` (d, k)."""

    w0: float
    w: NDArray[Any]
    v: NDArray[Any]

    def raw(self, x: sp.csr_matrix) -> NDArray[Any]:
        """``y(x)`` for every row of a CSR matrix (before the sigmoid)."""
        return _forward(x, self.w0, self.w, self.v)[0]


def _forward(x: sp.csr_matrix, w0: float, w: NDArray[Any],
             v: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    xv = np.asarray(x @ v)
    x2 = x.multiply(x).tocsr()
    x2v2 = np.asarray(x2 @ (v * v))
    y = w0 + np.asarray(x @ w).ravel() + 0.5 * np.sum(xv * xv - x2v2, axis=1)
    return y, xv


def sigmoid(z: NDArray[Any]) -> NDArray[Any]:
    s: NDArray[Any] = 0.5 * (1.0 + np.tanh(0.5 * z))
    return s


def predict(params: Params, x: sp.csr_matrix, binary: bool) -> NDArray[Any]:
    y = params.raw(x)
    return sigmoid(y) if binary else y


@dataclass
class _Adam:
    group: Group
    eps: float
    clip: float | None
    m: NDArray[Any] = field(default_factory=lambda: np.zeros(0))
    s: NDArray[Any] = field(default_factory=lambda: np.zeros(0))
    t: NDArray[Any] = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def like(cls, param: NDArray[Any], group: Group, eps: float, clip: float | None) -> _Adam:
        rows = param.shape[0] if param.ndim else 1
        return cls(group, eps, clip, np.zeros_like(param), np.zeros_like(param),
                   np.zeros(rows))

    def step(self, param: NDArray[Any], grad: NDArray[Any], rows: NDArray[Any] | None) -> None:
        """Update ``param`` (or its ``rows``) in place from the (rescaled) gradient."""
        g = self.group
        value = param if rows is None else param[rows]
        grad = grad + g.wd * value
        if self.clip is not None and self.clip > 0:
            grad = np.clip(grad, -self.clip, self.clip)
        if rows is None:
            self.t += 1
            t = float(self.t[0])
            self.m = BETA1 * self.m + (1 - BETA1) * grad
            self.s = BETA2 * self.s + (1 - BETA2) * grad * grad
            rate = g.lr * math.sqrt(1 - BETA2 ** t) / (1 - BETA1 ** t)
            param -= rate * self.m / (np.sqrt(self.s) + self.eps)
            return
        self.t[rows] += 1
        t = self.t[rows]
        m = BETA1 * self.m[rows] + (1 - BETA1) * grad
        s = BETA2 * self.s[rows] + (1 - BETA2) * grad * grad
        self.m[rows], self.s[rows] = m, s
        rate = g.lr * np.sqrt(1 - BETA2 ** t) / (1 - BETA1 ** t)
        if param.ndim == 2:
            rate = rate[:, None]
        param[rows] = value - rate * m / (np.sqrt(s) + self.eps)


def fit(x: sp.csr_matrix, y: NDArray[Any], *, num_factors: int, binary: bool,
        bias: Group, linear: Group, factors: Group, epochs: int = 1,
        batch_size: int = 1000, eps: float | None = None, clip_gradient: float | None = None,
        rescale_grad: float | None = None, seed: int = 0,
        on_epoch: Callable[[int, float], None] | None = None) -> Params:
    """Train a factorization machine on CSR rows ``x`` and targets ``y``.

    ``on_epoch(epoch, loss)`` is called after every epoch with the epoch's mean training loss
    (logistic loss for a binary classifier, squared error for a regressor).
    """
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    w0 = bias.init((1,), rng)
    w = linear.init((d,), rng)
    v = factors.init((d, num_factors), rng)
    eps = 1e-8 if eps is None else eps
    opt0 = _Adam.like(w0, bias, eps, clip_gradient)
    opt_w = _Adam.like(w, linear, eps, clip_gradient)
    opt_v = _Adam.like(v, factors, eps, clip_gradient)
    for epoch in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            batch = x[idx]
            target = y[idx]
            cols, local = np.unique(batch.indices, return_inverse=True)
            sub = sp.csr_matrix((batch.data, local.ravel(), batch.indptr),
                                shape=(len(idx), len(cols)))
            wc, vc = w[cols], v[cols]
            raw, xv = _forward(sub, float(w0[0]), wc, vc)
            if binary:
                p = sigmoid(raw)
                g = p - target
                total += float(np.sum(np.logaddexp(0.0, raw) - target * raw))
            else:
                g = raw - target
                total += float(np.sum(g * g))
            scale = (1.0 / len(idx)) if rescale_grad is None else rescale_grad
            g = g * scale
            subt = sub.T.tocsr()
            grad_w = np.asarray(subt @ g).ravel()
            x2t = subt.multiply(subt).tocsr()
            grad_v = np.asarray(subt @ (g[:, None] * xv)) - np.asarray(x2t @ g).reshape(-1, 1) * vc
            opt0.step(w0, np.array([g.sum()]), None)
            opt_w.step(w, grad_w, cols)
            opt_v.step(v, grad_v, cols)
        if on_epoch is not None:
            on_epoch(epoch, total / n)
    return Params(float(w0[0]), w, v)


def scores(params: Params, x: sp.csr_matrix, y: NDArray[Any], binary: bool) -> dict[str, float]:
    """The quality metrics SageMaker logs for a channel: ``rmse`` for a regressor;
    ``binary_classification_accuracy``, ``binary_classification_cross_entropy`` and
    ``binary_f_beta`` (beta 1, threshold 0.5) for a binary classifier."""
    raw = params.raw(sp.csr_matrix(x, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    if not binary:
        return {"rmse": float(np.sqrt(np.mean((raw - y) ** 2)))}
    found = binary_scores(raw > 0, y > 0.5)
    return {
        "binary_classification_accuracy": found["accuracy"],
        "binary_classification_cross_entropy": float(np.mean(np.logaddexp(0.0, raw)
                                                             - y * raw)),
        "binary_f_beta": found["f_beta"],
    }
