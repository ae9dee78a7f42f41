"""Inference for the BlazingText built-in, as SageMaker's answers it.

* Text classification (``supervised``): ``application/json`` ``{"instances": ["a sentence",
  ...], "configuration": {"k": 2}}`` -> ``[{"label": ["__label__1", "__label__0"],
  "prob": [0.9, 0.1]}, ...]`` (the ``k`` most probable labels, default 1);
  ``application/jsonlines`` ``{"source": "a sentence"}`` lines -> one such object per line
  (batch transform).
* Word2Vec: ``{"instances": ["word", ...]}`` -> ``[{"vector": [...], "word": "word"}, ...]``;
  a word out of the vocabulary gets its subwords' mean with ``subwords``, else zeros.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.blazingtext.classify import Classifier
from opensage.algorithms.blazingtext.text import char_ngrams, fnv1a
from opensage.algorithms.blazingtext.train import MODEL_FILE
from opensage.algorithms.inference import JSON, JSONLINES, InferenceError, media_type, negotiate

MAX_K = 1000


class BlazingTextModel:
    def __init__(self, arrays: dict[str, NDArray[Any]], meta: dict[str, Any]) -> None:
        self.mode = meta["mode"]
        self.meta = meta
        if self.mode == "supervised":
            self.classifier = Classifier(
                words=list(meta["words"]), labels=list(meta["labels"]),
                embeddings=arrays["embeddings"], bucket_ids=arrays["bucket_ids"],
                output=arrays["output"], word_ngrams=int(meta["word_ngrams"]),
                buckets=int(meta["buckets"]))
        else:
            self.words = list(meta["words"])
            self.index = {w: i for i, w in enumerate(self.words)}
            self.rows = arrays["input_rows"]
            self.bucket_ids = arrays["bucket_ids"]

    # -- word2vec
    def vector(self, word: str) -> NDArray[Any]:
        """The word's input vector: the mean of its row and its n-grams' rows, as in training
        (an unknown word: its known n-grams' rows; nothing known: zeros)."""
        rows = []
        i = self.index.get(word)
        if i is not None:
            rows.append(i)
        if self.meta.get("subwords") and len(self.bucket_ids):
            grams = np.asarray([fnv1a(g) % int(self.meta["buckets"]) for g in
                                char_ngrams(word, int(self.meta["min_char"]),
                                            int(self.meta["max_char"]))], dtype=np.int64)
            if len(grams):
                at = np.minimum(np.searchsorted(self.bucket_ids, grams), len(self.bucket_ids) - 1)
                rows += (len(self.words) + at[self.bucket_ids[at] == grams]).tolist()
        if not rows:
            return np.zeros(self.rows.shape[1], dtype=np.float32)
        mean: NDArray[Any] = self.rows[rows].mean(axis=0)
        return mean

    # -- the contract
    def invoke(self, body: bytes, content_type: str | None,
               accept: str | None = None) -> tuple[bytes, str]:
        kind = media_type(content_type) or JSON
        if kind not in (JSON, JSONLINES):
            raise InferenceError(415, f"Content type {content_type} is not supported by "
                                      f"BlazingText; use application/json or "
                                      f"application/jsonlines.")
        response_type, _ = negotiate(accept, (JSON, JSONLINES), kind)
        texts, k = self._parse(body, kind)
        answers = self._classify(texts, k) if self.mode == "supervised" else [
            {"vector": self.vector(w).astype(float).tolist(), "word": w} for w in texts]
        if response_type == JSONLINES:
            return "".join(json.dumps(a) + "\n" for a in answers).encode(), JSONLINES
        return json.dumps(answers).encode(), JSON

    def _parse(self, body: bytes, kind: str) -> tuple[list[str], int]:
        try:
            if kind == JSONLINES:
                documents = [json.loads(line) for line in body.splitlines() if line.strip()]
                texts = [d.get("source") if isinstance(d, dict) else d for d in documents]
                k = 1
                if documents and isinstance(documents[0], dict):
                    k = documents[0].get("configuration", {}).get("k", 1)
            else:
                document = json.loads(body)
                if not isinstance(document, dict) or "instances" not in document:
                    raise InferenceError(400, 'Invalid JSON payload: expected {"instances": '
                                              '["...", ...]}.')
                texts = document["instances"]
                k = (document.get("configuration") or {}).get("k", 1)
        except ValueError as e:
            raise InferenceError(400, f"Unable to parse JSON: {e}") from None
        if not isinstance(texts, list) or not texts:
            raise InferenceError(400, "Invalid payload: no instances.")
        for number, text in enumerate(texts, 1):
            if not isinstance(text, str):
                raise InferenceError(400, f"Invalid payload: instance {number} is not a "
                                          f"string.")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise InferenceError(400, f"Invalid configuration: k must be a positive integer, "
                                      f"got {k!r}.")
        return texts, k

    def _classify(self, texts: list[str], k: int) -> list[dict[str, Any]]:
        probabilities = self.classifier.probabilities([t.split() for t in texts])
        k = min(k, probabilities.shape[1])
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        return [{"label": [self.classifier.labels[j] for j in row],
                 "prob": [float(probabilities[i, j]) for j in row]}
                for i, row in enumerate(top)]


def load(model_dir: str | os.PathLike[str]) -> BlazingTextModel:
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise RuntimeError(f"model.tar.gz has no {MODEL_FILE} (an opensage BlazingText model)")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    if meta.get("algorithm") != "blazingtext":
        raise RuntimeError(f"{MODEL_FILE} is not a BlazingText model")
    return BlazingTextModel(arrays, meta)
