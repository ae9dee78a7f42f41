"""The IP Insights model, on NumPy arrays: entity and IPv4 embeddings whose dot product
scores how usual an (entity, IP) pair is.

* Entities: every entity id is hashed into one of ``num_entity_vectors`` buckets, each a
  learned ``vector_dim`` vector (as SageMaker does; collisions share a vector). A bucket no
  training row reached answers with the out-of-vocabulary vector, the mean of the trained
  ones.
* IPv4 addresses: the /8, /16, /24 and /32 prefixes of the address each select a learned
  vector (the /8 table is exact, the others hashed into buckets sized from the data); their
  sum goes through ``num_ip_encoder_layers`` dense ``vector_dim x vector_dim`` layers (ReLU
  between layers, the last one linear). Addresses of a subnet share its prefix vectors, so an
  entity's usual subnets score high even for addresses never seen.
* Training: each mini-batch of real pairs gets ``random_negative_sampling_rate`` pairs per
  row with a uniformly random IPv4 address and ``shuffled_negative_sampling_rate`` pairs with
  the address of another row of the batch; logistic loss on the dot product (real = 1,
  generated = 0), Adam with ``weight_decay`` (L2), embedding rows updated lazily.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
LEVELS = (24, 16, 8, 0)  # right shifts giving the /8, /16, /24 and /32 prefixes
_MIX = np.uint64(0x9E3779B97F4A7C15)
MAX_BUCKETS = 1 << 20


# --------------------------------------------------------------------------------- hashing


def hash_entities(entities: Iterable[str], buckets: int) -> NDArray[Any]:
    """Stable bucket of each entity id (BLAKE2b of its UTF-8 text, modulo ``buckets``)."""
    import hashlib

    return np.fromiter((int.from_bytes(hashlib.blake2b(e.encode(), digest_size=8).digest(),
                                       "little") % buckets for e in entities),
                       dtype=np.int64)


def _mix(values: NDArray[Any], salt: int) -> NDArray[Any]:
    h = (values.astype(np.uint64) + np.uint64(salt)) * _MIX
    return h ^ (h >> np.uint64(29))


def ip_sizes(ips: NDArray[Any]) -> list[int]:
    """Bucket count per prefix level: the /8 exact, the others twice the distinct prefixes
    seen in training (a power of two, 1024 to 2^20)."""
    sizes = []
    for shift in LEVELS:
        if shift == 24:
            sizes.append(256)
            continue
        distinct = len(np.unique(ips >> np.uint32(shift)))
        sizes.append(int(min(MAX_BUCKETS, max(1024, 1 << math.ceil(math.log2(2 * distinct))))))
    return sizes


def ip_rows(ips: NDArray[Any], sizes: list[int]) -> NDArray[Any]:
    """(n, 4) rows of the IP table for each address's prefixes."""
    ips = np.asarray(ips, dtype=np.uint32)
    out = np.empty((len(ips), len(LEVELS)), dtype=np.int64)
    offset = 0
    for level, (shift, size) in enumerate(zip(LEVELS, sizes, strict=True)):
        prefix = ips >> np.uint32(shift)
        if shift == 24:
            out[:, level] = offset + prefix.astype(np.int64)
        else:
            out[:, level] = offset + (_mix(prefix, level) % np.uint64(size)).astype(np.int64)
        offset += size
    return out


# ----------------------------------------------------------------------------------- model


@dataclass
class Model:
    entities: NDArray[Any]  # (num_entity_vectors, d)
    seen: NDArray[Any]  # (num_entity_vectors,) bool: trained buckets
    oov: NDArray[Any]  # (d,)
    ip_table: NDArray[Any]  # (sum(sizes), d)
    sizes: list[int]
    weights: list[NDArray[Any]]  # per encoder layer (d, d)
    biases: list[NDArray[Any]]  # per encoder layer (d,)

    def entity_vectors(self, buckets: NDArray[Any]) -> NDArray[Any]:
        out: NDArray[Any] = self.entities[buckets]
        unseen = ~self.seen[buckets]
        if unseen.any():
            out[unseen] = self.oov
        return out

    def ip_vectors(self, ips: NDArray[Any]) -> NDArray[Any]:
        vectors, _inputs = encode_ips(self, ip_rows(ips, self.sizes))
        return vectors

    def dot(self, buckets: NDArray[Any], ips: NDArray[Any]) -> NDArray[Any]:
        dots: NDArray[Any] = np.sum(self.entity_vectors(buckets) * self.ip_vectors(ips), axis=1)
        return dots


def encode_ips(model: Model, rows: NDArray[Any]) -> tuple[NDArray[Any], list[NDArray[Any]]]:
    """IP embeddings of table rows, and each layer's input (for the backward pass)."""
    h = model.ip_table[rows].sum(axis=1)
    inputs = []
    last = len(model.weights) - 1
    for j, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        inputs.append(h)
        h = h @ w + b
        if j < last:
            h = np.maximum(h, 0.0)
    return h, inputs


def sigmoid(z: NDArray[Any]) -> NDArray[Any]:
    s: NDArray[Any] = 0.5 * (1.0 + np.tanh(0.5 * z))
    return s


def auc(positive: NDArray[Any], negative: NDArray[Any]) -> float:
    """Area under the ROC curve of positive vs negative scores (ties count half)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ------------------------------------------------------------------------------- training


class _Adam:
    def __init__(self, param: NDArray[Any], lr: float, wd: float) -> None:
        self.lr, self.wd = lr, wd
        self.m = np.zeros_like(param)
        self.s = np.zeros_like(param)
        self.t = np.zeros(param.shape[0] if param.ndim == 2 else 1)

    def dense(self, param: NDArray[Any], grad: NDArray[Any]) -> None:
        grad = grad + self.wd * param
        self.t += 1
        t = float(self.t[0])
        self.m = BETA1 * self.m + (1 - BETA1) * grad
        self.s = BETA2 * self.s + (1 - BETA2) * grad * grad
        rate = self.lr * math.sqrt(1 - BETA2 ** t) / (1 - BETA1 ** t)
        param -= rate * self.m / (np.sqrt(self.s) + EPS)

    def rows(self, param: NDArray[Any], rows: NDArray[Any], grad: NDArray[Any]) -> None:
        value = param[rows]
        grad = grad + self.wd * value
        self.t[rows] += 1
        t = self.t[rows][:, None]
        m = BETA1 * self.m[rows] + (1 - BETA1) * grad
        s = BETA2 * self.s[rows] + (1 - BETA2) * grad * grad
        self.m[rows], self.s[rows] = m, s
        rate = self.lr * np.sqrt(1 - BETA2 ** t) / (1 - BETA1 ** t)
        param[rows] = value - rate * m / (np.sqrt(s) + EPS)


def _row_sums(index: NDArray[Any], grads: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Distinct rows of ``index`` and the summed gradient of each (a sparse product)."""
    rows, inverse = np.unique(index, return_inverse=True)
    scatter = sp.csr_matrix((np.ones(len(index)), (inverse.ravel(), np.arange(len(index)))),
                            shape=(len(rows), len(index)))
    return rows, np.asarray(scatter @ grads)


def negatives(buckets: NDArray[Any], ips: NDArray[Any], random_rate: int, shuffled_rate: int,
              rng: np.random.Generator) -> tuple[NDArray[Any], NDArray[Any]]:
    """Generated (entity, IP) pairs: random IPv4 addresses and addresses of other rows."""
    n = len(buckets)
    ents = [np.tile(buckets, random_rate + shuffled_rate)]
    fake = [rng.integers(0, 1 << 32, size=n * random_rate, dtype=np.uint64).astype(np.uint32)]
    for _ in range(shuffled_rate):
        fake.append(ips[rng.permutation(n)] if n > 1 else ips.copy())
    return ents[0], np.concatenate(fake)


def fit(buckets: NDArray[Any], ips: NDArray[Any], *, num_entity_vectors: int, vector_dim: int,
        epochs: int = 10, learning_rate: float = 0.001, batch_size: int = 10000,
        encoder_layers: int = 1, random_rate: int = 1, shuffled_rate: int = 1,
        weight_decay: float = 1e-5, seed: int = 0,
        on_epoch: Callable[[int, float, Model], None] | None = None,
        on_batch: Callable[[int, int, float], None] | None = None) -> Model:
    """Train on real (entity bucket, IPv4 as uint32) pairs."""
    rng = np.random.default_rng(seed)
    d = vector_dim
    sizes = ip_sizes(ips)
    scale = 1.0 / math.sqrt(d)
    model = Model(
        entities=rng.normal(0, scale, size=(num_entity_vectors, d)),
        seen=np.zeros(num_entity_vectors, dtype=bool),
        oov=np.zeros(d),
        ip_table=rng.normal(0, scale / 2, size=(sum(sizes), d)),
        sizes=sizes,
        weights=[np.eye(d) + rng.normal(0, 0.1 * scale, size=(d, d))
                 for _ in range(encoder_layers)],
        biases=[np.zeros(d) for _ in range(encoder_layers)])
    model.seen[buckets] = True
    if random_rate + shuffled_rate == 0:
        random_rate = 1  # a discriminator needs something to tell real pairs from
    opt_e = _Adam(model.entities, learning_rate, weight_decay)
    opt_ip = _Adam(model.ip_table, learning_rate, weight_decay)
    opt_w = [_Adam(w, learning_rate, weight_decay) for w in model.weights]
    opt_b = [_Adam(b, learning_rate, 0.0) for b in model.biases]
    n = len(buckets)
    batch_number = 0
    for epoch in range(epochs):
        order = rng.permutation(n)
        total, count = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            neg_e, neg_ip = negatives(buckets[idx], ips[idx], random_rate, shuffled_rate, rng)
            ent = np.concatenate([buckets[idx], neg_e])
            ip = np.concatenate([ips[idx], neg_ip])
            label = np.zeros(len(ent))
            label[:len(idx)] = 1.0
            rows = ip_rows(ip, sizes)
            e = model.entities[ent]
            h, inputs = encode_ips(model, rows)
            score = np.sum(e * h, axis=1)
            loss = float(np.sum(np.logaddexp(0.0, score) - label * score))
            total += loss
            count += len(ent)
            g = (sigmoid(score) - label) / len(ent)
            grad_e = g[:, None] * h
            grad_h = g[:, None] * e
            last = len(model.weights) - 1
            for j in range(last, -1, -1):
                x_in = inputs[j]
                if j < last:  # undo the ReLU after layer j (its output is inputs[j + 1])
                    grad_h = grad_h * (inputs[j + 1] > 0)
                grad_w = x_in.T @ grad_h
                grad_b = grad_h.sum(axis=0)
                grad_h = grad_h @ model.weights[j].T
                opt_w[j].dense(model.weights[j], grad_w)
                opt_b[j].dense(model.biases[j], grad_b)
            ent_rows, ent_grad = _row_sums(ent, grad_e)
            opt_e.rows(model.entities, ent_rows, ent_grad)
            ip_index, ip_grad = _row_sums(rows.ravel(), np.repeat(grad_h, rows.shape[1],
                                                                  axis=0))
            opt_ip.rows(model.ip_table, ip_index, ip_grad)
            batch_number += 1
            if on_batch is not None:
                on_batch(epoch, batch_number, loss / len(ent))
        model.oov = model.entities[model.seen].mean(axis=0)
        if on_epoch is not None:
            on_epoch(epoch, total / max(count, 1), model)
    return model


def discriminator_auc(model: Model, buckets: NDArray[Any], ips: NDArray[Any], *,
                      random_rate: int = 1, shuffled_rate: int = 1, seed: int = 1) -> float:
    """AUC of the real pairs' dot products against generated negatives' (as in training)."""
    rng = np.random.default_rng(seed)
    if random_rate + shuffled_rate == 0:
        random_rate = 1
    neg_e, neg_ip = negatives(buckets, ips, random_rate, shuffled_rate, rng)
    return auc(model.dot(buckets, ips), model.dot(neg_e, neg_ip))
