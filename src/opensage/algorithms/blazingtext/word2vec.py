"""Word2Vec with negative sampling, vectorised over mini-batches of (word, context) pairs in
NumPy: ``skipgram`` (each word predicts each context word), ``cbow`` (the mean of the context
predicts the word) and ``batch_skipgram`` (skip-gram whose ``batch_size`` consecutive words
share one draw of negative samples, as BlazingText's batched skip-gram shares them).

As word2vec.c: frequent words are down-sampled (``sampling_threshold``), the window is
shrunk at random per word, negatives come from the unigram distribution to the 3/4 power (a
negative that is the positive word itself is skipped), and the learning rate falls linearly to
zero over the words read in all epochs (down-sampled words count as read, as in word2vec.c,
gensim and fastText). Input vectors start uniform in (-1/dim, 1/dim) as in fastText and gensim
(word2vec.c's half-width start learns CBOW markedly slower: about 1 point of similarity
correlation lower after 5 epochs on the benchmark's corpus). With ``subwords`` a
word's input vector is the mean of its own row and its character n-grams' rows (fastText).
Updates of one mini-batch are summed, each row once (``_scatter``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from opensage.algorithms.blazingtext.text import Subwords, Vocabulary

PAIRS_PER_BATCH = 2048
TABLE_POWER = 0.75
MIN_TABLE, MAX_TABLE = 1 << 20, 1 << 24  # entries of the negative-sampling table


@dataclass
class Word2VecResult:
    input_rows: NDArray[np.float32]  # (rows, dim): words then used n-gram buckets
    word_vectors: NDArray[np.float32]  # (vocab, dim): each word's input vector
    words_per_second: float


def _sigmoid(x: NDArray[Any]) -> NDArray[Any]:
    out: NDArray[Any] = 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))
    return out


def _scatter(weights: NDArray[Any], rows: NDArray[Any], updates: NDArray[Any]) -> None:
    """``weights[rows] += updates`` with repeated rows summed (as a sparse product: one
    column per update, built as CSC without sorting; the rows used found by counting)."""
    used = np.bincount(rows, minlength=len(weights)) > 0
    unique = np.flatnonzero(used)
    if len(unique) == len(rows):
        weights[rows] += updates
        return
    rank = np.cumsum(used) - 1
    summing = sp.csc_matrix((np.ones(len(rows), dtype=updates.dtype), rank[rows],
                             np.arange(len(rows) + 1)), shape=(len(unique), len(rows)))
    weights[unique] += summing @ updates


def _scatter_products(weights: NDArray[Any], rows: NDArray[Any], coefficients: NDArray[Any],
                      vectors: NDArray[Any]) -> None:
    """``weights[rows[i, j]] += coefficients[i, j] * vectors[i]`` for every i, j, summed per row
    as one sparse product (column i holds row i's coefficients) without forming the products."""
    flat = rows.ravel()
    used = np.bincount(flat, minlength=len(weights)) > 0
    unique = np.flatnonzero(used)
    rank = np.cumsum(used) - 1
    summing = sp.csc_matrix((coefficients.ravel(), rank[flat],
                             np.arange(0, flat.size + 1, rows.shape[1])),
                            shape=(len(unique), len(rows)))
    weights[unique] += summing @ vectors


def encode(sentences: Sequence[Sequence[str]], vocab: Vocabulary) -> tuple[NDArray[Any],
                                                                           NDArray[Any]]:
    """The corpus as word ids and each token's sentence number (unknown words dropped)."""
    index = vocab.index
    ids: list[int] = []
    sentence: list[int] = []
    for number, words in enumerate(sentences):
        known = [index[w] for w in words if w in index]
        ids += known
        sentence += [number] * len(known)
    return np.asarray(ids, dtype=np.int64), np.asarray(sentence, dtype=np.int64)


def _pairs(ids: NDArray[Any], sentence: NDArray[Any], window: int,
           rng: np.random.Generator) -> tuple[NDArray[Any], NDArray[Any]]:
    """(position, context position) pairs in a randomly shrunk window of each position."""
    reach = rng.integers(1, window + 1, size=len(ids))
    centers, contexts = [], []
    positions = np.arange(len(ids))
    for offset in range(1, window + 1):
        for sign in (-1, 1):
            other = positions + sign * offset
            ok = (other >= 0) & (other < len(ids)) & (reach >= offset)
            ok[ok] &= sentence[other[ok]] == sentence[positions[ok]]
            centers.append(positions[ok])
            contexts.append(other[ok])
    return np.concatenate(centers), np.concatenate(contexts)


def train(sentences: Sequence[Sequence[str]], vocab: Vocabulary, subwords: Subwords, *,
          mode: str, dim: int, window: int, negative: int, epochs: int, learning_rate: float,
          sampling_threshold: float, batch_size: int = 11, seed: int = 1,
          log: Callable[[str], None] | None = None) -> Word2VecResult:
    rng = np.random.default_rng(seed)
    ids, sentence = encode(sentences, vocab)
    counts = vocab.counts.astype(np.float64)
    frequency = counts / counts.sum()
    keep_probability = np.minimum(1.0, (np.sqrt(frequency / sampling_threshold) + 1)
                                  * sampling_threshold / frequency)
    noise_table = _noise_table(counts)
    w_in = ((2.0 * rng.random((subwords.rows, dim)) - 1.0) / dim).astype(np.float32)
    w_out = np.zeros((len(vocab.words), dim), dtype=np.float32)
    composed = subwords.enabled
    compose = subwords.matrix() if composed else None
    total_words = max(1, len(ids) * epochs)
    done = 0
    started = time.perf_counter()
    for epoch in range(epochs):
        kept = rng.random(len(ids)) < keep_probability[ids]
        eids, esent = ids[kept], sentence[kept]
        centers, contexts = _pairs(eids, esent, window, rng)
        if mode == "cbow":
            order = np.argsort(centers, kind="stable")
            centers, contexts = centers[order], contexts[order]
            batch_words = np.unique(centers)
            rng.shuffle(batch_words)
        else:
            order = rng.permutation(len(centers))
            centers, contexts = centers[order], contexts[order]
        n_batches = 0
        if mode == "cbow":
            starts = np.searchsorted(centers, np.sort(batch_words))
            ends = np.searchsorted(centers, np.sort(batch_words), side="right")
            # one CBOW step scores one target per centre word, not per pair: 1,024 centres (~6,000
            # context rows summed) cost about what 2,048 skip-gram pairs do
            per_batch = max(1, PAIRS_PER_BATCH // 2)
            shuffled = rng.permutation(len(starts))
            for first in range(0, len(shuffled), per_batch):
                chosen = shuffled[first:first + per_batch]
                progress = (done + len(ids) * first / max(len(shuffled), 1)) / total_words
                lr = learning_rate * max(1e-4, 1.0 - progress)
                _cbow_step(eids, centers, contexts, starts[chosen], ends[chosen], w_in,
                           w_out, compose, negative, noise_table, lr, rng)
                n_batches += 1
        else:
            for first in range(0, len(centers), PAIRS_PER_BATCH):
                part = slice(first, first + PAIRS_PER_BATCH)
                progress = (done + len(ids) * first / max(len(centers), 1)) / total_words
                lr = learning_rate * max(1e-4, 1.0 - progress)
                shared = batch_size if mode == "batch_skipgram" else 1
                _skipgram_step(eids[centers[part]], eids[contexts[part]], w_in, w_out, compose,
                               negative, noise_table, lr, rng, shared)
                n_batches += 1
        done += len(ids)
        if log:
            elapsed = time.perf_counter() - started
            log(f"##### Epoch {epoch + 1}/{epochs}  Progress: {100.0 * done / total_words:.2f}%"
                f"  Words/sec: {done / max(elapsed, 1e-9):,.0f} #####")
    elapsed = time.perf_counter() - started
    vectors = np.asarray(compose @ w_in) if compose is not None else w_in[:len(vocab.words)]
    return Word2VecResult(input_rows=w_in, word_vectors=vectors.astype(np.float32),
                          words_per_second=len(ids) * epochs / max(elapsed, 1e-9))


def _inputs(words: NDArray[Any], w_in: NDArray[Any], compose: Any) -> NDArray[Any]:
    if compose is None:
        out: NDArray[Any] = w_in[words]
        return out
    rows = compose[words]
    return np.asarray(rows @ w_in)


def _update_inputs(words: NDArray[Any], grad: NDArray[Any], w_in: NDArray[Any],
                   compose: Any) -> None:
    if compose is None:
        _scatter(w_in, words, grad)
        return
    rows = compose[words].tocoo()  # every row of the word gets the whole gradient (fastText)
    _scatter(w_in, rows.col, grad[rows.row])


def _noise_table(counts: NDArray[Any]) -> NDArray[np.int32]:
    """word2vec.c's unigram table: each word fills a share of the entries proportional to its
    count to the 3/4 power, so a negative is one uniform draw and one lookup."""
    noise = counts.astype(np.float64) ** TABLE_POWER
    cdf = np.cumsum(noise / noise.sum())
    size = min(MAX_TABLE, max(MIN_TABLE, 64 * len(counts)))
    found = np.searchsorted(cdf, (np.arange(size) + 0.5) / size)
    return np.minimum(found, len(counts) - 1).astype(np.int32)


def _negatives(shape: tuple[int, ...], noise_table: NDArray[Any],
               rng: np.random.Generator) -> NDArray[Any]:
    found: NDArray[Any] = noise_table[rng.integers(0, len(noise_table), size=shape)]
    return found


def _gradients(h: NDArray[Any], u: NDArray[Any], targets: NDArray[Any],
               lr: float) -> NDArray[np.float32]:
    """``lr * (label - sigmoid(h . u))`` for the positive (column 0) and each negative; a
    negative drawn equal to the positive word gets none (word2vec.c and gensim skip it)."""
    score = _sigmoid(np.einsum("bd,bkd->bk", h, u))
    label = np.zeros_like(score)
    label[:, 0] = 1.0
    g: NDArray[np.float32] = ((label - score) * lr).astype(np.float32)
    g[:, 1:][targets[:, 1:] == targets[:, :1]] = 0.0
    return g


def _skipgram_step(words: NDArray[Any], contexts: NDArray[Any], w_in: NDArray[Any],
                   w_out: NDArray[Any], compose: Any, negative: int, noise_table: NDArray[Any],
                   lr: float, rng: np.random.Generator, shared: int) -> None:
    b = len(words)
    if shared > 1:  # one draw of negatives for each group of `shared` pairs
        groups = -(-b // shared)
        negs = np.repeat(_negatives((groups, negative), noise_table, rng), shared, axis=0)[:b]
    else:
        negs = _negatives((b, negative), noise_table, rng)
    targets = np.concatenate([contexts[:, None], negs], axis=1)
    h = _inputs(words, w_in, compose)
    u = w_out[targets]  # (b, 1 + negative, dim)
    g = _gradients(h, u, targets, lr)
    grad_h = np.einsum("bk,bkd->bd", g, u)
    _scatter_products(w_out, targets, g, h)
    _update_inputs(words, grad_h, w_in, compose)


def _cbow_step(ids: NDArray[Any], centers: NDArray[Any], contexts: NDArray[Any],
               starts: NDArray[Any], ends: NDArray[Any], w_in: NDArray[Any],
               w_out: NDArray[Any], compose: Any, negative: int, noise_table: NDArray[Any],
               lr: float, rng: np.random.Generator) -> None:
    lengths = ends - starts  # every center has at least one context pair
    owner = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.cumsum(lengths) - lengths  # each center's first pair among the chosen
    pair = np.arange(len(owner)) - offsets[owner] + starts[owner]
    context_words = ids[contexts[pair]]
    target_words = ids[centers[starts]]
    ctx = _inputs(context_words, w_in, compose)
    h = np.add.reduceat(ctx, offsets, axis=0) / lengths[:, None].astype(np.float32)
    negs = _negatives((len(starts), negative), noise_table, rng)
    targets = np.concatenate([target_words[:, None], negs], axis=1)
    u = w_out[targets]
    g = _gradients(h, u, targets, lr)
    grad_h = np.einsum("bk,bkd->bd", g, u)
    _scatter_products(w_out, targets, g, h)
    _update_inputs(context_words, grad_h[owner], w_in, compose)
