"""Latent Dirichlet allocation on word-count documents, in NumPy/SciPy.

SageMaker's LDA is a spectral method (Anandkumar et al., "A Spectral Algorithm for Latent
Dirichlet Allocation" and "Tensor Decompositions for Learning Latent Variable Models"): the
second moment of the word counts, corrected for the Dirichlet concentration ``alpha0``, is
whitened to ``num_topics`` dimensions; the whitened third moment, a ``k x k x k`` tensor, is
decomposed (``max_restarts`` random starts per component, ``max_iterations`` power
iterations each, stopping when the component moves less than ``tol``); its eigenpairs give the
topics and their Dirichlet weights ``alpha``. opensage then refines those topics with batch
variational Bayes (Blei et al.; Hoffman et al.'s updates, as scikit-learn's batch
``LatentDirichletAllocation``), keeping ``alpha``, which is what raises the held-out
likelihood to that of a variational fit. Documents are processed as a sparse matrix, every
document's E-step at once.

:func:`doc_topics` is the inference: each document's variational posterior over topics,
normalised (SageMaker's ``topic_mixture``); :func:`per_word_bound` the per-word log-likelihood
bound (``pwll``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.special import gammaln, psi

__all__ = ["LdaModel", "doc_topics", "fit", "per_word_bound", "spectral"]

EPS = float(np.finfo(np.float64).eps)
E_STEP_MAX_ITER = 100
E_STEP_TOL = 1e-3


@dataclass
class LdaModel:
    alpha: NDArray[np.float64]  # (k,) Dirichlet prior of a document's topic mixture
    beta: NDArray[np.float64]  # (k, V) topic-word distributions, rows sum to 1
    topic_word: NDArray[np.float64] | None = None  # variational parameter (k, V)

    @property
    def num_topics(self) -> int:
        return int(self.beta.shape[0])


# --------------------------------------------------------------------------- spectral step


def _whitening(x: sp.csr_matrix, lengths: NDArray[Any], m1: NDArray[Any], alpha0: float,
               k: int) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """W (V x k) with W^T M2 W = I, and U, s of M2's top-k eigenpairs (M2 applied as a
    linear operator: it is V x V)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    docs = lengths >= 2
    xd = x[docs]
    n = lengths[docs]
    scale = 1.0 / (n * (n - 1))
    scaled = sp.diags(scale) @ xd
    diag_term = np.asarray(scaled.sum(axis=0)).ravel()  # sum_d c_dv / (n(n-1))
    d_count = float(docs.sum())
    shift = alpha0 / (alpha0 + 1.0)
    vocab = x.shape[1]

    def matvec(v: NDArray[Any]) -> NDArray[Any]:
        v = np.asarray(v).ravel()
        out = (scaled.T @ (xd @ v) - diag_term * v) / d_count
        result: NDArray[Any] = out - shift * m1 * float(m1 @ v)
        return result

    operator = LinearOperator((vocab, vocab), matvec=matvec, dtype=np.float64)
    if vocab <= max(2 * k + 1, 200):
        dense = np.column_stack([matvec(e) for e in np.eye(vocab)])
        values, vectors = np.linalg.eigh((dense + dense.T) / 2)
        order = np.argsort(values)[::-1][:k]
        values, vectors = values[order], vectors[:, order]
    else:
        values, vectors = eigsh(operator, k=k, which="LA")
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
    values = np.maximum(values, EPS * max(1.0, float(values.max(initial=0.0))))
    w = vectors / np.sqrt(values)
    return w, vectors, values


def _whitened_third_moment(x: sp.csr_matrix, lengths: NDArray[Any], m1: NDArray[Any],
                           w: NDArray[Any], alpha0: float) -> NDArray[Any]:
    """M3(W, W, W) (k x k x k), from unbiased per-document estimates of E[x1 x x2 x x3]."""
    docs = lengths >= 3
    xd = x[docs].tocsr()
    n = lengths[docs]
    y = np.asarray(xd @ w)  # (D, k) whitened counts
    denominator = n * (n - 1) * (n - 2)
    t = np.einsum("d,di,dj,dl->ijl", 1.0 / denominator, y, y, y, optimize=True)
    # - sum_v c_v (w_v w_v y + perms) + 2 sum_v c_v w_v w_v w_v, per document
    coo = xd.tocoo()
    weights = coo.data / denominator[coo.row]
    wv = w[coo.col]  # (nnz, k)
    pair = np.einsum("n,ni,nj,nl->ijl", weights, wv, wv, y[coo.row], optimize=True)
    t -= pair + pair.transpose(0, 2, 1) + pair.transpose(2, 0, 1)
    t += 2.0 * np.einsum("n,ni,nj,nl->ijl", weights, wv, wv, wv, optimize=True)
    t /= float(docs.sum())
    # E[x1 x x2] whitened, for the alpha0 corrections
    d2 = lengths >= 2
    x2 = x[d2]
    n2 = lengths[d2]
    y2 = np.asarray(x2 @ w)
    c2 = x2.tocoo()
    wv2 = w[c2.col]
    second = (np.einsum("d,di,dj->ij", 1.0 / (n2 * (n2 - 1)), y2, y2)
              - np.einsum("n,ni,nj->ij", c2.data / (n2 * (n2 - 1))[c2.row], wv2, wv2))
    second /= float(d2.sum())
    m = w.T @ m1
    cross = np.einsum("ij,l->ijl", second, m)
    t -= alpha0 / (alpha0 + 2.0) * (cross + cross.transpose(0, 2, 1) + cross.transpose(2, 0, 1))
    t += 2.0 * alpha0 ** 2 / ((alpha0 + 2.0) * (alpha0 + 1.0)) * np.einsum(
        "i,j,l->ijl", m, m, m)
    result: NDArray[Any] = t
    return result


def _power_decomposition(t: NDArray[Any], k: int, *, restarts: int, iterations: int, tol: float,
                         rng: np.random.Generator) -> tuple[NDArray[Any], NDArray[Any]]:
    """Robust tensor power method with deflation: eigenvalues (k,) and vectors (k x k)."""
    t = t.copy()
    values = np.zeros(k)
    vectors = np.zeros((k, k))
    for component in range(k):
        best, best_value = None, -np.inf
        for _ in range(max(1, restarts)):
            theta = rng.normal(size=k)
            theta /= np.linalg.norm(theta)
            for _ in range(max(1, iterations)):
                nxt = np.einsum("ijl,j,l->i", t, theta, theta)
                norm = np.linalg.norm(nxt)
                if norm <= EPS:
                    break
                nxt /= norm
                moved = float(np.linalg.norm(nxt - theta))
                theta = nxt
                if moved < tol:
                    break
            value = float(np.einsum("ijl,i,j,l->", t, theta, theta, theta))
            if value > best_value:
                best, best_value = theta, value
        assert best is not None
        values[component] = best_value
        vectors[component] = best
        t -= best_value * np.einsum("i,j,l->ijl", best, best, best)
    return values, vectors


def spectral(x: sp.csr_matrix, k: int, *, alpha0: float, restarts: int, iterations: int,
             tol: float, rng: np.random.Generator) -> LdaModel:
    """Topics and alpha from the moments of the word counts (see the module docstring)."""
    lengths = np.asarray(x.sum(axis=1)).ravel()
    docs = lengths >= 3
    if docs.sum() < 1:
        raise ValueError("no document has three or more words")
    m1 = np.asarray((sp.diags(1.0 / np.maximum(lengths, 1)) @ x)[lengths > 0].mean(axis=0)).ravel()
    w, vectors, values = _whitening(x, lengths, m1, alpha0, k)
    t = _whitened_third_moment(x, lengths, m1, w, alpha0)
    lambdas, v = _power_decomposition(t, k, restarts=restarts, iterations=iterations, tol=tol,
                                      rng=rng)
    unwhiten = vectors * np.sqrt(values)  # (W^T)^+
    beta = np.empty((k, x.shape[1]))
    alpha = np.empty(k)
    for i in range(k):
        mu = lambdas[i] * (unwhiten @ v[i])
        if mu.sum() < 0:  # the sign of an eigenvector is arbitrary
            mu = -mu
        mu = np.maximum(mu, 0.0)
        total = mu.sum()
        beta[i] = mu / total if total > 0 else 1.0 / x.shape[1]
        lam = max(EPS, abs(float(lambdas[i])))
        alpha[i] = 4.0 * alpha0 * (alpha0 + 1.0) / ((alpha0 + 2.0) ** 2 * lam ** 2)
    alpha = np.where(np.isfinite(alpha) & (alpha > 0), alpha, alpha0 / k)
    alpha *= alpha0 / alpha.sum()  # the concentrations sum to alpha0
    return LdaModel(alpha=alpha, beta=beta)


# ------------------------------------------------------------------------ variational step


def _dirichlet_expectation(x: NDArray[Any]) -> NDArray[Any]:
    """E[log theta] for theta ~ Dir(x), row-wise."""
    if x.ndim == 1:
        result: NDArray[Any] = psi(x) - psi(x.sum())
        return result
    out: NDArray[Any] = psi(x) - psi(x.sum(axis=1))[:, None]
    return out


def _e_step(x: sp.csr_matrix, alpha: NDArray[Any], exp_elog_beta: NDArray[Any], *,
            batch: int, sstats: bool) -> tuple[NDArray[Any], NDArray[Any] | None]:
    """Variational document-topic parameters gamma (D x k) for every document, in blocks of
    ``batch`` documents; with ``sstats`` the topic-word sufficient statistics (k x V)."""
    d, k = x.shape[0], alpha.shape[0]
    gamma = np.empty((d, k))
    stats = np.zeros_like(exp_elog_beta) if sstats else None
    for start in range(0, d, max(1, batch)):
        block = x[start:start + batch].tocoo()
        rows, cols, counts = block.row, block.col, block.data
        g = np.ones((block.shape[0], k))
        eb = exp_elog_beta[:, cols].T  # (nnz, k)
        # Each document iterates until its own parameters settle, so that its answer does
        # not depend on the documents it is batched with.
        active = np.ones(block.shape[0], dtype=bool)
        for _ in range(E_STEP_MAX_ITER):
            exp_elog_theta = np.exp(_dirichlet_expectation(g))
            norm = np.einsum("nk,nk->n", exp_elog_theta[rows], eb) + EPS
            weight = sp.csr_matrix((counts / norm, (rows, cols)), shape=block.shape)
            new = alpha + exp_elog_theta * np.asarray(weight @ exp_elog_beta.T)
            change = np.mean(np.abs(new - g), axis=1)
            g[active] = new[active]
            active &= change >= E_STEP_TOL
            if not active.any():
                break
        gamma[start:start + block.shape[0]] = g
        if stats is not None:
            exp_elog_theta = np.exp(_dirichlet_expectation(g))
            norm = np.einsum("nk,nk->n", exp_elog_theta[rows], eb) + EPS
            weight = sp.csr_matrix((counts / norm, (rows, cols)), shape=block.shape)
            stats += np.asarray((weight.T @ exp_elog_theta).T)
    if stats is not None:
        stats *= exp_elog_beta
    return gamma, stats


def fit(x: sp.csr_matrix, k: int, *, alpha0: float, restarts: int, iterations: int,
        tol: float, batch: int, refine_passes: int = 30, seed: int = 0,
        log: Any = None) -> LdaModel:
    """Spectral topics, then variational refinement (``refine_passes`` at most, stopping when
    the training bound per word improves by less than 1e-4)."""
    rng = np.random.default_rng(seed)
    try:
        model = spectral(x, k, alpha0=alpha0, restarts=restarts, iterations=iterations,
                         tol=tol, rng=rng)
    except (ValueError, np.linalg.LinAlgError, ArithmeticError) as e:
        if log:
            log(f"Spectral decomposition failed ({e}); starting from random topics.")
        beta = rng.gamma(100.0, 0.01, size=(k, x.shape[1]))
        model = LdaModel(alpha=np.full(k, alpha0 / k), beta=beta / beta.sum(axis=1, keepdims=True))
    eta = 1.0 / k
    # Start the variational parameter from the spectral topics, smoothed.
    words = float(x.sum())
    lam = eta + model.beta * (words / k) + rng.gamma(100.0, 0.01, size=model.beta.shape) * 1e-2
    previous = -np.inf
    for step in range(refine_passes):
        exp_elog_beta = np.exp(_dirichlet_expectation(lam))
        _, stats = _e_step(x, model.alpha, exp_elog_beta, batch=batch, sstats=True)
        assert stats is not None
        lam = eta + stats
        model = LdaModel(alpha=model.alpha, beta=lam / lam.sum(axis=1, keepdims=True),
                         topic_word=lam)
        if step % 5 == 4 or step == refine_passes - 1:
            bound = per_word_bound(x, model, batch=batch)
            if log:
                log(f"Refinement pass {step + 1}: per-word bound {bound:.4f}")
            if bound - previous < 1e-4:
                break
            previous = bound
    return model


def doc_topics(x: sp.csr_matrix, model: LdaModel, *, batch: int = 4096) -> NDArray[Any]:
    """Each document's topic mixture: its variational Dirichlet posterior's mean."""
    gamma, _ = _e_step(x, model.alpha, _exp_elog_beta(model), batch=batch, sstats=False)
    result: NDArray[Any] = gamma / gamma.sum(axis=1, keepdims=True)
    return result


def _exp_elog_beta(model: LdaModel) -> NDArray[Any]:
    if model.topic_word is not None:
        out: NDArray[Any] = np.exp(_dirichlet_expectation(model.topic_word))
        return out
    return np.maximum(model.beta, EPS)


def per_word_bound(x: sp.csr_matrix, model: LdaModel, *, batch: int = 4096) -> float:
    """The evidence lower bound of the documents' words per word (a per-word log-likelihood
    bound, ``pwll``), with the topics taken as given (``log beta``) so that any two models'
    figures compare: sum_d [E q log p(w_d | theta, beta) + E q log p(theta | alpha) - E q log
    q(theta)] / sum_d n_d."""
    log_beta = np.log(np.maximum(model.beta, EPS))
    exp_beta = np.maximum(model.beta, EPS)
    gamma, _ = _e_step(x, model.alpha, exp_beta, batch=batch, sstats=False)
    elog_theta = _dirichlet_expectation(gamma)
    coo = x.tocoo()
    # E log p(w | theta, beta) with the optimal phi: sum counts * logsumexp(Elog theta + log beta)
    scores = elog_theta[coo.row] + log_beta[:, coo.col].T
    top = scores.max(axis=1)
    word_term = float(np.sum(coo.data * (top + np.log(np.exp(scores - top[:, None]).sum(axis=1)))))
    alpha = model.alpha
    theta_term = float(np.sum((alpha - gamma) * elog_theta)
                       + np.sum(gammaln(gamma)) - np.sum(gammaln(gamma.sum(axis=1)))
                       + x.shape[0] * (gammaln(alpha.sum()) - np.sum(gammaln(alpha))))
    return (word_term + theta_term) / max(float(x.sum()), 1.0)
