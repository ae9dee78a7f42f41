"""fastText's supervised text classifier, in NumPy: a sentence is the mean of its words' and
word n-grams' embeddings (n-grams up to ``word_ngrams``, hashed into ``buckets`` as fastText
hashes them), followed by a linear softmax layer over the labels. Trained by SGD with the
learning rate falling linearly to zero, a few sentences per step (each sentence's gradient
taken whole, as fastText's per-example updates). A sentence with several labels is trained
towards each equally.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from opensage.algorithms.blazingtext.text import EOS

SENTENCES_PER_STEP = 8
NGRAM_MULTIPLIER = 116049371  # fastText's word n-gram hash


def _hash_word(word: str) -> int:
    from opensage.algorithms.blazingtext.text import fnv1a

    return fnv1a(word)


@dataclass
class Classifier:
    words: list[str]
    labels: list[str]
    embeddings: NDArray[np.float32]  # (words + used buckets, dim)
    bucket_ids: NDArray[np.int64]  # sorted buckets that have a row (after the words)
    output: NDArray[np.float32]  # (labels, dim)
    word_ngrams: int
    buckets: int

    def __post_init__(self) -> None:
        self._index = {w: i for i, w in enumerate(self.words)}

    def features(self, tokens: Sequence[str]) -> list[int]:
        """The rows of a sentence: its known words, ``</s>``, and its word n-grams' buckets
        that have a row (fastText adds the end-of-sentence token to every line)."""
        return sentence_rows(tokens, self._index, self.word_ngrams, self.buckets,
                             self.bucket_ids)

    def design(self, sentences: Sequence[Sequence[str]]) -> Any:
        return design_matrix([self.features(s) for s in sentences], self.embeddings.shape[0])

    def probabilities(self, sentences: Sequence[Sequence[str]]) -> NDArray[Any]:
        hidden = np.asarray(self.design(sentences) @ self.embeddings)
        return _softmax(hidden @ self.output.T)


def ngram_hashes(tokens: Sequence[str], index: dict[str, int], n: int,
                 buckets: int) -> list[int]:
    """fastText's word n-gram buckets (``addWordNgrams``): hashes of every n-gram up to n."""
    hashes = [_hash_word(t) for t in tokens]
    out = []
    for i in range(len(hashes)):
        h = hashes[i]
        for j in range(i + 1, min(i + n, len(hashes))):
            h = (h * NGRAM_MULTIPLIER + hashes[j]) & 0xFFFFFFFFFFFFFFFF
            out.append(h % buckets)
    return out


def sentence_rows(tokens: Sequence[str], index: dict[str, int], n: int, buckets: int,
                  bucket_ids: NDArray[Any] | None) -> list[int]:
    tokens = [*tokens, EOS]
    rows = [index[t] for t in tokens if t in index]
    if n > 1:
        grams = np.asarray(ngram_hashes(tokens, index, n, buckets), dtype=np.int64)
        if bucket_ids is None:  # training: the raw buckets (compacted by the caller)
            rows += (len(index) + grams).tolist()
        elif len(grams) and len(bucket_ids):
            at = np.searchsorted(bucket_ids, grams)
            at = np.minimum(at, len(bucket_ids) - 1)
            known = bucket_ids[at] == grams
            rows += (len(index) + at[known]).tolist()
    return rows


def design_matrix(rows: Sequence[Sequence[int]], width: int) -> Any:
    """Sentences x rows, each sentence's rows weighted 1/count (its hidden layer is their
    mean); a sentence with no known row is all zeros."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(indptr[-1]))
    weights = np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32)
    return sp.csr_matrix((weights, indices, indptr), shape=(len(rows), width))


def _softmax(z: NDArray[Any]) -> NDArray[Any]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: NDArray[Any] = e / e.sum(axis=1, keepdims=True)
    return out


def train(sentences: Sequence[Sequence[str]], labels: Sequence[Sequence[str]],
          words: list[str], *, dim: int, epochs: int, learning_rate: float, word_ngrams: int,
          buckets: int, validation: tuple[Sequence[Sequence[str]], Sequence[Sequence[str]]]
          | None = None, early_stopping: bool = False, min_epochs: int = 5,
          patience: int = 4, seed: int = 1,
          log: Callable[[str], None] | None = None) -> tuple[Classifier, float]:
    """The classifier and the training throughput in words per second."""
    rng = np.random.default_rng(seed)
    label_names = sorted({label for ls in labels for label in ls})
    label_index = {label: i for i, label in enumerate(label_names)}
    index = {w: i for i, w in enumerate(words)}
    raw = [sentence_rows(s, index, word_ngrams, buckets, None) for s in sentences]
    all_buckets = np.concatenate([np.asarray(r, dtype=np.int64) for r in raw]
                                 + [np.zeros(0, dtype=np.int64)])
    bucket_ids = np.unique(all_buckets[all_buckets >= len(words)] - len(words))
    rows = [[i if i < len(words) else len(words) + int(np.searchsorted(bucket_ids,
                                                                       i - len(words)))
             for i in r] for r in raw]
    width = len(words) + len(bucket_ids)
    x = design_matrix(rows, width)
    targets = np.zeros((len(sentences), len(label_names)), dtype=np.float32)
    for i, ls in enumerate(labels):
        for label in ls:
            targets[i, label_index[label]] += 1.0 / len(ls)
    embeddings = ((rng.random((width, dim)) * 2 - 1) / dim).astype(np.float32)
    output = np.zeros((len(label_names), dim), dtype=np.float32)
    model = Classifier(words, label_names, embeddings, bucket_ids, output, word_ngrams, buckets)
    n_words = sum(len(s) for s in sentences)
    total_steps = max(1, epochs * -(-len(sentences) // SENTENCES_PER_STEP))
    step = 0
    best, best_epoch, best_state = -1.0, 0, (embeddings.copy(), output.copy())
    started = time.perf_counter()
    trained_epochs = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(sentences))
        for first in range(0, len(order), SENTENCES_PER_STEP):
            chosen = order[first:first + SENTENCES_PER_STEP]
            lr = learning_rate * max(0.0, 1.0 - step / total_steps)
            step += 1
            a = x[chosen]
            hidden = np.asarray(a @ embeddings)
            grad_logits = (targets[chosen] - _softmax(hidden @ output.T)) * lr  # ascent
            grad_hidden = grad_logits @ output
            output += (grad_logits.T @ hidden).astype(np.float32)
            # each sentence's rows get its hidden gradient (fastText: scaled by 1/rows)
            coo = a.tocoo()
            updates = grad_hidden[coo.row] * coo.data[:, None]
            unique, inverse = np.unique(coo.col, return_inverse=True)
            summing = sp.csr_matrix((np.ones(len(inverse), dtype=np.float32),
                                     (inverse, np.arange(len(inverse)))),
                                    shape=(len(unique), len(inverse)))
            embeddings[unique] += (summing @ updates).astype(np.float32)
        trained_epochs = epoch
        if validation is not None:
            accuracy = model_accuracy(model, *validation)
            if log:
                log(f"Epoch {epoch}: validation accuracy {accuracy:.4f}")
            if accuracy > best:
                best, best_epoch = accuracy, epoch
                best_state = (embeddings.copy(), output.copy())
            elif early_stopping and epoch >= min_epochs and epoch - best_epoch >= patience:
                if log:
                    log(f"Early stopping after epoch {epoch}: no improvement in validation "
                        f"accuracy for {patience} epochs (best {best:.4f} at epoch "
                        f"{best_epoch}).")
                break
    elapsed = time.perf_counter() - started
    if validation is not None and early_stopping:
        model.embeddings, model.output = best_state
    return model, n_words * trained_epochs / max(elapsed, 1e-9)


def model_accuracy(model: Classifier, sentences: Sequence[Sequence[str]],
                   labels: Sequence[Sequence[str]]) -> float:
    """Precision at 1: the share of sentences whose top label is one of theirs."""
    if not sentences:
        return 0.0
    top = np.argmax(model.probabilities(sentences), axis=1)
    hits = sum(model.labels[t] in ls for t, ls in zip(top, labels))
    return hits / len(sentences)
