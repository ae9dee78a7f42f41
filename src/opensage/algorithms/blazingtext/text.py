"""Text handling shared by BlazingText's modes: reading a channel's sentences, the vocabulary,
fastText's character n-grams and their hash buckets, word n-gram hashes, and the two word
vector file formats (word2vec text ``vectors.txt`` and binary ``vectors.bin``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.contract import UserError

LABEL = "__label__"
EOS = "</s>"


def fnv1a(text: str) -> int:
    """fastText's 32-bit FNV-1a hash of a string's UTF-8 bytes."""
    h = 2166136261
    for byte in text.encode("utf-8"):
        h ^= byte if byte < 128 else (byte - 256) & 0xFFFFFFFF  # fastText hashes signed chars
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def char_ngrams(word: str, low: int, high: int) -> list[str]:
    """The character n-grams (``low``..``high`` long) of ``<word>``, as fastText takes them."""
    wrapped = f"<{word}>"
    out = []
    for n in range(low, high + 1):
        for start in range(len(wrapped) - n + 1):
            gram = wrapped[start:start + n]
            if gram != wrapped:
                out.append(gram)
    return out


def lines_of(location: Path) -> Iterator[tuple[str, int, str]]:
    """(file name, line number, line) of every non-blank line of the channel's files."""
    from opensage.data import data_files

    for path in data_files(location):
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield path.name, number, line


@dataclass
class Vocabulary:
    words: list[str]
    counts: NDArray[np.int64]

    @property
    def index(self) -> dict[str, int]:
        if not hasattr(self, "_index"):
            self._index = {w: i for i, w in enumerate(self.words)}
        return self._index

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_count: int) -> Vocabulary:
        counter: Counter[str] = Counter()
        for sentence in sentences:
            counter.update(sentence)
        kept = sorted(((c, w) for w, c in counter.items() if c >= max(min_count, 1)),
                      key=lambda item: (-item[0], item[1]))
        return cls([w for _, w in kept], np.array([c for c, _ in kept], dtype=np.int64))


class Subwords:
    """Each word's input rows: the word's own row, then its n-grams' rows. The n-gram rows are
    ``len(vocab) + hash % buckets`` as in fastText, but only buckets that some word uses are
    stored (``rows`` maps a bucket to its stored row), so memory follows the vocabulary, not
    ``buckets``."""

    def __init__(self, words: Sequence[str], low: int, high: int, buckets: int,
                 enabled: bool) -> None:
        self.low, self.high, self.buckets, self.enabled = low, high, buckets, enabled
        self.vocab_size = len(words)
        grams = [self.hashes(w) if enabled else [] for w in words]
        used = np.unique(np.concatenate([np.asarray(g, dtype=np.int64) for g in grams]
                                        + [np.zeros(0, dtype=np.int64)]))
        self.bucket_ids = used  # sorted buckets with a stored row
        indptr, indices = [0], []
        for i, g in enumerate(grams):
            rows = [i, *(self.vocab_size + np.searchsorted(used, g)).tolist()]
            indices += rows
            indptr.append(len(indices))
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)

    @property
    def rows(self) -> int:
        return self.vocab_size + len(self.bucket_ids)

    def hashes(self, word: str) -> list[int]:
        if not self.enabled:
            return []
        return [fnv1a(g) % self.buckets for g in char_ngrams(word, self.low, self.high)]

    def matrix(self) -> Any:
        """Words x rows, each word's rows weighted 1/count (a word's input is their mean)."""
        import scipy.sparse as sp

        lengths = np.diff(self.indptr)
        weights = np.repeat(1.0 / lengths, lengths).astype(np.float32)
        return sp.csr_matrix((weights, self.indices, self.indptr),
                             shape=(self.vocab_size, self.rows))


def write_vectors(directory: Path, words: Sequence[str], vectors: NDArray[Any]) -> None:
    """``vectors.txt`` (word2vec text: a ``count dim`` header, then ``word v1 v2 ...``) and
    ``vectors.bin`` (word2vec binary: the header, then ``word `` + float32 values + newline
    per word), both loadable by gensim's ``KeyedVectors.load_word2vec_format``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    header = f"{len(words)} {vectors.shape[1]}\n"
    with open(directory / "vectors.txt", "w", encoding="utf-8") as f:
        f.write(header)
        f.writelines(word + " " + " ".join(f"{v:.5f}" for v in row.tolist()) + "\n" for word, row in zip(words, vectors))
    with open(directory / "vectors.bin", "wb") as b:
        b.write(header.encode())
        b.writelines(word.encode("utf-8") + b" " + row.astype("<f4").tobytes() + b"\n" for word, row in zip(words, vectors))


def read_vectors_text(path: Path) -> tuple[list[str], NDArray[np.float32]]:
    with open(path, encoding="utf-8") as f:
        count, dim = (int(v) for v in f.readline().split())
        words, rows = [], np.empty((count, dim), dtype=np.float32)
        for i, line in enumerate(f):
            parts = line.rstrip("\n").split(" ")
            words.append(parts[0])
            rows[i] = np.asarray(parts[1:1 + dim], dtype=np.float32)
    return words, rows


def spearman(a: NDArray[Any], b: NDArray[Any]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def word_similarity(path: Path, lookup: Any) -> tuple[float, int, int]:
    """Spearman's rho between a word-similarity file's human scores (``word1<TAB>word2<TAB>
    score`` lines; ``#`` comments) and the vectors' cosines, over the pairs both words of
    which ``lookup(word)`` knows (None otherwise): (rho, pairs used, pairs)."""
    human, ours, total = [], [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.replace(",", "\t").split("\t") if "\t" in line or "," in line \
            else line.split()
        if len(parts) < 3:
            continue
        try:
            score = float(parts[2])
        except ValueError:
            continue  # a header line
        total += 1
        a, b = lookup(parts[0].lower()), lookup(parts[1].lower())
        if a is None or b is None:
            continue
        denominator = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
        human.append(score)
        ours.append(float(a @ b) / denominator)
    if len(human) < 3:
        return float("nan"), len(human), total
    return spearman(np.asarray(human), np.asarray(ours)), len(human), total


def require_words(vocab: Vocabulary, channel: str, min_count: int) -> None:
    if not vocab.words:
        raise UserError(f"The {channel} channel has no word that appears at least "
                        f"min_count ({min_count}) times.")
