"""Inference for the LDA built-in: each document's ``topic_mixture`` (its topic proportions,
summing to 1), as ``lda:1`` answers it, for CSV, JSON, JSON lines and RecordIO-protobuf
requests of word counts."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from opensage.algorithms.firstparty.training import load_model
from opensage.algorithms.inference import BuiltinModel, InferenceError
from opensage.algorithms.lda.spec import NAME
from opensage.algorithms.lda.topics import LdaModel, doc_topics


class LdaServing(BuiltinModel):
    dense = False

    def __init__(self, model: LdaModel) -> None:
        self.model = model
        self.feature_dim = int(model.beta.shape[1])

    def predict(self, features: Any, verbose: bool) -> dict[str, NDArray[Any]]:
        x = sp.csr_matrix(features, dtype=np.float64)
        if x.nnz and x.data.min() < 0:
            row = int(np.searchsorted(x.indptr, int(np.flatnonzero(x.data < 0)[0]),
                                      side="right"))
            raise InferenceError(400, f"Invalid input: record {row} has a negative word count.")
        mixture = doc_topics(x, self.model)
        return {"topic_mixture": mixture.astype(np.float32)}


def load(model_dir: str | os.PathLike[str]) -> LdaServing:
    arrays, _meta = load_model(model_dir, NAME)
    return LdaServing(LdaModel(alpha=arrays["alpha"].astype(np.float64),
                               beta=arrays["beta"].astype(np.float64),
                               topic_word=arrays["topic_word"].astype(np.float64)))
