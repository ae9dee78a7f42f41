"""Inference for the factorization-machines built-in: JSON, JSON lines or RecordIO-protobuf
requests (no CSV: 415), dense or sparse. A binary classifier answers ``{"score": p,
"predicted_label": 0|1}`` per record, a regressor ``{"score": y}``; RecordIO responses carry
them as ``label`` keys."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from opensage.algorithms.factorization_machines.machine import Params, predict
from opensage.algorithms.factorization_machines.spec import NAME
from opensage.algorithms.firstparty.training import load_model
from opensage.algorithms.inference import JSON, JSONLINES, RECORDIO, BuiltinModel


class FactorizationMachinesModel(BuiltinModel):
    request_types = (JSON, JSONLINES, RECORDIO)
    response_types = (JSON, JSONLINES, RECORDIO)
    dense = False

    def __init__(self, params: Params, binary: bool) -> None:
        self.params = params
        self.binary = binary
        self.feature_dim = int(params.w.shape[0])

    def predict(self, features: Any, verbose: bool) -> dict[str, NDArray[Any]]:
        x = sp.csr_matrix(features, dtype=np.float64)
        score = predict(self.params, x, self.binary)
        if not self.binary:
            return {"score": score.astype(np.float32)}
        return {"score": score.astype(np.float32),
                "predicted_label": (score > 0.5).astype(np.int64)}


def load(model_dir: str | os.PathLike[str]) -> FactorizationMachinesModel:
    arrays, meta = load_model(model_dir, NAME)
    params = Params(float(arrays["w0"][0]), arrays["w"].astype(np.float64),
                    arrays["v"].astype(np.float64))
    return FactorizationMachinesModel(params, meta.get("predictor_type") == "binary_classifier")
