"""Inference for the Random Cut Forest built-in: each record's anomaly ``score`` (higher is
more anomalous), as ``randomcutforest:1`` answers it: JSON ``{"scores": [{"score": ...}]}``,
JSON lines ``{"score": ...}``, CSV one score per line, RecordIO-protobuf label ``score``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.firstparty.training import load_model
from opensage.algorithms.inference import BuiltinModel
from opensage.algorithms.randomcutforest.forest import Forest, score
from opensage.algorithms.randomcutforest.spec import NAME


class RandomCutForestModel(BuiltinModel):
    top_key = "scores"

    def __init__(self, forest: Forest) -> None:
        self.forest = forest
        self.feature_dim = forest.feature_dim

    def predict(self, features: Any, verbose: bool) -> dict[str, NDArray[Any]]:
        threads = 1 if len(features) < 2048 else None
        return {"score": score(self.forest, np.asarray(features, dtype=np.float32),
                               threads=threads)}


def load(model_dir: str | os.PathLike[str]) -> RandomCutForestModel:
    arrays, _meta = load_model(model_dir, NAME)
    return RandomCutForestModel(Forest.from_arrays(arrays))
