"""The torch-free pieces of LDA, BlazingText and DeepAR: LDA's bound and inference, fastText's
character n-grams and the word2vec vector files, DeepAR's calendar, JSON lines parsing and
weighted quantile loss."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp

from opensage.algorithms.blazingtext.text import (
    Subwords,
    Vocabulary,
    char_ngrams,
    fnv1a,
    read_vectors_text,
    word_similarity,
    write_vectors,
)
from opensage.algorithms.contract import UserError
from opensage.algorithms.deepar.data import (
    Frequency,
    parse_series,
    read_series,
    weighted_quantile_loss,
)
from opensage.algorithms.lda.topics import LdaModel, doc_topics, fit, per_word_bound


def lda_corpus(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    beta = np.full((3, 30), 0.001)
    for k in range(3):
        beta[k, k * 10:(k + 1) * 10] = 1.0
    beta /= beta.sum(axis=1, keepdims=True)
    theta = rng.dirichlet(np.full(3, 0.3), size=300)
    x = np.stack([rng.multinomial(40, t @ beta) for t in theta])
    return sp.csr_matrix(x, dtype=np.float64), beta


def test_lda_recovers_topics_and_scores_the_truth_above_noise():
    x, beta = lda_corpus()
    model = fit(x, 3, alpha0=1.0, restarts=5, iterations=200, tol=1e-8, batch=300)
    distance = np.abs(model.beta[:, None, :] - beta[None]).sum(axis=2) / 2
    assert distance.min(axis=0).max() < 0.1
    noise = LdaModel(alpha=np.full(3, 1 / 3), beta=np.full((3, 30), 1 / 30))
    assert per_word_bound(x, model) > per_word_bound(x, noise) + 0.5


def test_lda_topic_mixtures_sum_to_one_and_do_not_depend_on_the_batch():
    x, _ = lda_corpus(1)
    model = fit(x, 3, alpha0=1.0, restarts=3, iterations=100, tol=1e-6, batch=300,
                refine_passes=5)
    whole = doc_topics(x, model, batch=300)
    assert np.allclose(whole.sum(axis=1), 1)
    assert np.allclose(doc_topics(x[:7], model, batch=2), whole[:7], atol=1e-9)


def test_fasttext_character_ngrams_and_hash():
    # fastText's paper: "where" with n = 3 gives <wh, whe, her, ere, re>
    assert char_ngrams("where", 3, 3) == ["<wh", "whe", "her", "ere", "re>"]
    assert "<where>" not in char_ngrams("where", 3, 7)
    assert fnv1a("") == 2166136261
    assert fnv1a("a") == 0xE40C292C  # FNV-1a 32 of "a"
    subwords = Subwords(["where", "here"], 3, 4, 1000, True)
    matrix = subwords.matrix().toarray()
    assert np.allclose(matrix.sum(axis=1), 1)  # each word's input is a mean of its rows
    assert subwords.rows == 2 + len(subwords.bucket_ids)


def test_vocabulary_counts_and_word2vec_files(tmp_path):
    vocab = Vocabulary.build([["b", "a", "b"], ["c", "b", "a"]], min_count=2)
    assert vocab.words == ["b", "a"] and vocab.counts.tolist() == [3, 2]
    vectors = np.array([[1.0, 0.5], [-0.25, 2.0]], dtype=np.float32)
    write_vectors(tmp_path, vocab.words, vectors)
    words, read = read_vectors_text(tmp_path / "vectors.txt")
    assert words == ["b", "a"] and np.allclose(read, vectors)
    binary = (tmp_path / "vectors.bin").read_bytes()
    assert binary.startswith(b"2 2\nb ")
    assert np.frombuffer(binary[6:14], "<f4").tolist() == [1.0, 0.5]
    (tmp_path / "sim.tsv").write_text("# comment\nb\ta\t1.0\nb\tzz\t2\nb\tb\t9\na\ta\t8\n")
    rho, used, total = word_similarity(tmp_path / "sim.tsv",
                                       lambda w: vectors[["b", "a"].index(w)]
                                       if w in ("b", "a") else None)
    assert (used, total) == (3, 4) and np.isfinite(rho)


def test_deepar_calendar_and_series_parsing(tmp_path):
    freq = Frequency.parse("M")
    stamps = freq.index(np.datetime64("2020-11-01T00:00", "m"), 3)
    assert [str(s)[:7] for s in stamps] == ["2020-11", "2020-12", "2021-01"]
    hourly = Frequency.parse("2H")
    assert hourly.multiple == 2 and hourly.season() == 12 and 12 in hourly.lags()
    features = Frequency.parse("D").features(Frequency.parse("D").index(
        np.datetime64("2024-01-01T00:00", "m"), 30))
    assert features.shape == (30, 3) and features.min() >= -0.5 and features.max() <= 0.5
    with pytest.raises(UserError, match="time_freq"):
        Frequency.parse("5S")
    series = parse_series({"start": "2020-01-01 00:00:00", "target": [1, "NaN", None, 2.5],
                           "cat": 3}, "here")
    assert np.isnan(series.target[1]) and np.isnan(series.target[2]) and series.cat == [3]
    with pytest.raises(UserError, match="value 2"):
        parse_series({"start": "2020-01-01", "target": [1, "x"]}, "here")
    with pytest.raises(UserError, match="'start'"):
        parse_series({"target": [1]}, "here")
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(
        (json.dumps({"start": "2020-01-01", "target": [1, 2]}) + "\nnot json\n").encode()))
    with pytest.raises(UserError, match="line 2"):
        read_series(tmp_path, "train")


def test_weighted_quantile_loss():
    truth = np.array([10.0, 20.0])
    assert weighted_quantile_loss(truth, truth, 0.5) == 0
    # under-forecast by 10 at q = 0.9: 2 * 0.9 * 10 / 30
    assert weighted_quantile_loss(truth, np.array([0.0, 20.0]), 0.9) == pytest.approx(0.6)
    assert weighted_quantile_loss(truth, np.array([20.0, 20.0]), 0.9) == pytest.approx(
        2 * 0.1 * 10 / 30)
