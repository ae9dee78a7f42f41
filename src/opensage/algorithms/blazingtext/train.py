"""Training for the BlazingText built-in.

Word2Vec modes write ``vectors.txt`` and ``vectors.bin`` (word2vec's text and binary formats,
which gensim and fastText read) and, with ``evaluation``, log ``#mean_rho: <rho>``: Spearman's
rho of the vectors' cosines against human word-similarity scores. SageMaker evaluates on
WS-353, which is not shipped with opensage: put WS-353 (or any ``word1<TAB>word2<TAB>score``
files) in the directory named by ``OPENSAGE_WORD_SIMILARITY_DIR`` (default
``~/.cache/opensage/word-similarity``) on the server; without one the job logs that the
evaluation was skipped. Supervised mode logs ``#train_accuracy`` and ``#validation_accuracy``.

Both also write ``model.npz``, opensage's own model for inference (NumPy arrays and JSON, no
pickle): SageMaker's ``model.bin`` is fastText's binary format, which opensage does not write.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from opensage.algorithms.blazingtext import classify, word2vec
from opensage.algorithms.blazingtext.spec import SPEC
from opensage.algorithms.blazingtext.text import (
    LABEL,
    Subwords,
    Vocabulary,
    lines_of,
    require_words,
    word_similarity,
    write_vectors,
)
from opensage.algorithms.contract import TrainingEnv, UserError

MODEL_FILE = "model.npz"
SIMILARITY_ENV = "OPENSAGE_WORD_SIMILARITY_DIR"


def similarity_dir() -> Path:
    configured = os.environ.get(SIMILARITY_ENV)
    return Path(configured) if configured else Path.home() / ".cache/opensage/word-similarity"


def read_sentences(env: TrainingEnv, channel: str) -> list[list[str]]:
    location = env.channel_data(channel)
    sentences = [line.split() for _, _, line in lines_of(location)]
    if not sentences:
        raise UserError(f"No text in the {channel} channel (input/data/{channel}).")
    return sentences


def read_labelled(env: TrainingEnv, channel: str) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences and their labels (fastText's ``__label__`` tokens); a UserError names the
    first line without one."""
    sentences, labels = [], []
    for name, number, line in lines_of(env.channel_data(channel)):
        tokens = line.split()
        found = [t for t in tokens if t.startswith(LABEL) and len(t) > len(LABEL)]
        if not found:
            raise UserError(f"The {channel} channel's line {number} (file {name}) has no label: "
                            f"supervised mode needs lines like '__label__<class> <text>'.")
        labels.append(found)
        sentences.append([t for t in tokens if not t.startswith(LABEL)])
    if not sentences:
        raise UserError(f"No text in the {channel} channel (input/data/{channel}).")
    return sentences, labels


def train(env: TrainingEnv) -> None:
    hps, _formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                      fill_defaults=True)
    env.model_dir.mkdir(parents=True, exist_ok=True)
    if hps["mode"] == "supervised":
        _supervised(env, hps)
    else:
        _word2vec(env, hps)


def _log(line: str) -> None:
    print(line, flush=True)


def _word2vec(env: TrainingEnv, hps: dict[str, Any]) -> None:
    sentences = read_sentences(env, "train")
    vocab = Vocabulary.build(sentences, hps["min_count"])
    require_words(vocab, "train", hps["min_count"])
    subwords = Subwords(vocab.words, hps["min_char"], hps["max_char"], hps["buckets"],
                        hps["subwords"])
    _log(f"Number of words: {len(vocab.words)}  Number of tokens: {int(vocab.counts.sum())}  "
         f"mode: {hps['mode']}")
    result = word2vec.train(
        sentences, vocab, subwords, mode=hps["mode"], dim=hps["vector_dim"],
        window=hps["window_size"], negative=hps["negative_samples"], epochs=hps["epochs"],
        learning_rate=hps["learning_rate"], sampling_threshold=hps["sampling_threshold"],
        batch_size=hps["batch_size"], log=_log)
    _log("Training finished.")
    _log(f"Average throughput in Million words/sec: {result.words_per_second / 1e6:.4f}")
    write_vectors(env.model_dir, vocab.words, result.word_vectors)
    meta = {"algorithm": "blazingtext", "mode": hps["mode"], "subwords": hps["subwords"],
            "min_char": hps["min_char"], "max_char": hps["max_char"],
            "buckets": hps["buckets"], "words": vocab.words}
    _save(env.model_dir, {"input_rows": result.input_rows,
                          "bucket_ids": subwords.bucket_ids}, meta)
    if hps["evaluation"]:
        _evaluate(vocab.words, result.word_vectors)


def _evaluate(words: Sequence[str], vectors: Any) -> None:
    directory = similarity_dir()
    files = sorted(p for p in directory.glob("*") if p.is_file()) if directory.is_dir() else []
    if not files:
        _log(f"Evaluation skipped: no word-similarity data set in {directory} (set "
             f"{SIMILARITY_ENV} to a directory of word1<TAB>word2<TAB>score files, e.g. "
             f"WS-353).")
        return
    index = {w: i for i, w in enumerate(words)}

    def lookup(word: str) -> Any:
        i = index.get(word)
        return None if i is None else vectors[i]

    rhos = []
    for path in files:
        rho, used, total = word_similarity(path, lookup)
        _log(f"Evaluation on {path.name}: Spearman's rho {rho:.4f} over {used} of {total} "
             f"pairs (the others have a word out of the vocabulary).")
        if np.isfinite(rho):
            rhos.append(rho)
    if rhos:
        _log(f"#mean_rho: {float(np.mean(rhos))!r}")


def _supervised(env: TrainingEnv, hps: dict[str, Any]) -> None:
    sentences, labels = read_labelled(env, "train")
    validation = read_labelled(env, "validation") if "validation" in env.input_data_config \
        else None
    vocab = Vocabulary.build([*sentences, *([["</s>"]] * len(sentences))], hps["min_count"])
    require_words(vocab, "train", hps["min_count"])
    _log(f"Number of words: {len(vocab.words)}  Number of labels: "
         f"{len({label for ls in labels for label in ls})}")
    model, speed = classify.train(
        sentences, labels, vocab.words, dim=hps["vector_dim"], epochs=hps["epochs"],
        learning_rate=hps["learning_rate"], word_ngrams=hps["word_ngrams"],
        buckets=hps["buckets"], validation=validation, early_stopping=hps["early_stopping"],
        min_epochs=hps["min_epochs"], patience=hps["patience"], log=_log)
    _log("Training finished.")
    _log(f"Average throughput in Million words/sec: {speed / 1e6:.4f}")
    _log(f"#train_accuracy: {classify.model_accuracy(model, sentences, labels)!r}")
    _log(f"Number of train examples: {len(sentences)}")
    if validation is not None:
        _log(f"#validation_accuracy: {classify.model_accuracy(model, *validation)!r}")
        _log(f"Number of validation examples: {len(validation[0])}")
    meta = {"algorithm": "blazingtext", "mode": "supervised", "words": model.words,
            "labels": model.labels, "word_ngrams": model.word_ngrams,
            "buckets": model.buckets}
    _save(env.model_dir, {"embeddings": model.embeddings, "bucket_ids": model.bucket_ids,
                          "output": model.output}, meta)


def _save(directory: Path, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
    partial = directory / (MODEL_FILE + ".partial")
    with open(partial, "wb") as f:
        np.savez(f, **arrays, __meta__=np.array(json.dumps(meta)))
    os.replace(partial, directory / MODEL_FILE)
