"""BlazingText's NumPy Word2Vec against word2vec.c's formulas: one CBOW update computed by hand
(the mean of the context in, the whole error back to each context word, a negative equal to the
word skipped), the learning rate falling over the words read with down-sampled words counted,
the starting range of the input vectors, the unigram table and the summed sparse updates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from opensage.algorithms.blazingtext import word2vec
from opensage.algorithms.blazingtext.text import Subwords, Vocabulary


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def _cbow_once(noise_word: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One CBOW step on "a b c" predicting b from a and c, one negative always `noise_word`."""
    w_in = np.array([[0.1, -0.2], [0.3, 0.05], [-0.4, 0.25]], dtype=np.float32)
    w_out = np.array([[0.2, 0.1], [-0.1, 0.3], [0.05, -0.2]], dtype=np.float32)
    before_in, before_out = w_in.copy(), w_out.copy()
    ids = np.array([0, 1, 2])
    centers, contexts = np.array([1, 1]), np.array([0, 2])  # pairs (position, context position)
    word2vec._cbow_step(ids, centers, contexts, np.array([0]), np.array([2]), w_in, w_out, None,
                        1, np.array([noise_word], dtype=np.int32), 0.5,
                        np.random.default_rng(0))
    return before_in, before_out, w_in, w_out


def test_blazingtext_cbow_update_is_word2vec_cs():
    before_in, before_out, w_in, w_out = _cbow_once(noise_word=0)
    lr = 0.5
    h = (before_in[0] + before_in[2]) / 2  # the mean of the context (cbow_mean)
    g_pos = lr * (1 - _sigmoid(h @ before_out[1]))
    g_neg = lr * (0 - _sigmoid(h @ before_out[0]))
    error = g_pos * before_out[1] + g_neg * before_out[0]
    expected_out = before_out.copy()
    expected_out[1] += g_pos * h
    expected_out[0] += g_neg * h
    expected_in = before_in.copy()
    expected_in[0] += error  # each context word gets the whole error, not a share of it
    expected_in[2] += error
    np.testing.assert_allclose(w_out, expected_out, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(w_in, expected_in, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(w_in[1], before_in[1])  # the predicted word's input: untouched


def test_blazingtext_cbow_negative_equal_to_the_word_is_skipped():
    before_in, before_out, w_in, w_out = _cbow_once(noise_word=1)  # the negative is b itself
    lr = 0.5
    h = (before_in[0] + before_in[2]) / 2
    g_pos = lr * (1 - _sigmoid(h @ before_out[1]))
    expected_out = before_out.copy()
    expected_out[1] += g_pos * h  # only the positive update; no -sigmoid pull on the same row
    np.testing.assert_allclose(w_out, expected_out, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(w_in[0], before_in[0] + g_pos * before_out[1], rtol=1e-5)


def _corpus() -> tuple[list[list[str]], Vocabulary]:
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)]
    p = 1.0 / np.arange(1, 41)
    sentences = [list(rng.choice(words, size=12, p=p / p.sum())) for _ in range(300)]
    return sentences, Vocabulary.build(sentences, 1)


@pytest.mark.parametrize("mode", ["cbow", "skipgram"])
def test_blazingtext_learning_rate_falls_over_the_words_read(monkeypatch, mode):
    """word2vec.c counts every word read, down-sampled or not, so the rate falls evenly: at the
    end of epoch 1 of 2 it is half the start (counting only kept words left it far higher and
    dropped it at each new epoch)."""
    sentences, vocab = _corpus()
    events: list[Any] = []
    pairs, cbow_step, skipgram_step = word2vec._pairs, word2vec._cbow_step, word2vec._skipgram_step

    def mark_epoch(*args: Any) -> Any:
        events.append("epoch")
        return pairs(*args)

    def record_cbow(*args: Any) -> None:
        events.append(args[10])
        cbow_step(*args)

    def record_skipgram(*args: Any) -> None:
        events.append(args[7])
        skipgram_step(*args)

    monkeypatch.setattr(word2vec, "PAIRS_PER_BATCH", 60)  # many batches on a small corpus
    monkeypatch.setattr(word2vec, "_pairs", mark_epoch)
    monkeypatch.setattr(word2vec, "_cbow_step", record_cbow)
    monkeypatch.setattr(word2vec, "_skipgram_step", record_skipgram)
    word2vec.train(sentences, vocab, Subwords(vocab.words, 3, 6, 1, False), mode=mode, dim=8,
                   window=3, negative=2, epochs=2, learning_rate=0.1,
                   sampling_threshold=1e-3)  # keeps well under half of the words
    second = events.index("epoch", 1)
    first_epoch, second_epoch = events[1:second], events[second + 1:]
    rates = [*first_epoch, *second_epoch]
    assert len(first_epoch) > 4 and len(second_epoch) > 4
    assert rates == sorted(rates, reverse=True)
    assert first_epoch[0] == pytest.approx(0.1)
    assert second_epoch[0] == pytest.approx(0.05)
    step = 0.05 / len(first_epoch)  # one batch's share of the epoch
    assert 0.05 < first_epoch[-1] <= 0.05 + 1.5 * step


def test_blazingtext_input_vectors_start_within_one_over_dim():
    sentences, vocab = _corpus()
    result = word2vec.train(sentences, vocab, Subwords(vocab.words, 3, 6, 1, False),
                            mode="cbow", dim=20, window=3, negative=2, epochs=0,
                            learning_rate=0.05, sampling_threshold=1e-3)
    spread = np.abs(result.input_rows)
    assert spread.max() < 1 / 20
    assert spread.max() > 0.9 / 20  # gensim's and fastText's range, not word2vec.c's half
    assert abs(float(result.input_rows.mean())) < 0.1 / 20


def test_blazingtext_noise_table_follows_counts_to_three_quarters():
    table = word2vec._noise_table(np.array([16, 1, 0, 81]))
    share = np.bincount(table, minlength=4) / len(table)
    np.testing.assert_allclose(share, np.array([8, 1, 0, 27]) / 36, atol=1e-5)
    draws = word2vec._negatives((5000, 3), table, np.random.default_rng(0))
    assert draws.shape == (5000, 3)
    assert set(np.unique(draws)) == {0, 1, 3}


def test_blazingtext_sparse_updates_sum_repeated_rows():
    rng = np.random.default_rng(1)
    rows = np.array([[2, 0, 2], [1, 2, 2]])
    coefficients = rng.normal(size=(2, 3)).astype(np.float32)
    vectors = rng.normal(size=(2, 4)).astype(np.float32)
    weights = rng.normal(size=(5, 4)).astype(np.float32)
    expected = weights.copy()
    np.add.at(expected, rows.ravel(), (coefficients[:, :, None] * vectors[:, None, :])
              .reshape(-1, 4))
    word2vec._scatter_products(weights, rows, coefficients, vectors)
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)

    updates = rng.normal(size=(4, 4)).astype(np.float32)
    flat = np.array([3, 0, 3, 3])
    expected = weights.copy()
    np.add.at(expected, flat, updates)
    word2vec._scatter(weights, flat, updates)
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)
