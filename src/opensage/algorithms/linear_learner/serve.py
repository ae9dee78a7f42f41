"""Inference for the linear-learner built-in: ``score`` and ``predicted_label`` per record
(binary: probability and calibrated label; multiclass: class probabilities and the argmax;
regressor: ``score`` only), as ``linear-learner:1`` answers them."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from opensage.algorithms.firstparty.training import load_model
from opensage.algorithms.inference import BuiltinModel
from opensage.algorithms.linear_learner.learner import Features, Model
from opensage.algorithms.linear_learner.spec import NAME


class LinearLearnerModel(BuiltinModel):
    dense = False  # x @ w works on CSR directly

    def __init__(self, model: Model) -> None:
        self.model = model
        self.feature_dim = int(model.weights.shape[0])

    def predict(self, features: Features, verbose: bool) -> dict[str, npt.NDArray[Any]]:
        return self.model.predict(features)


def load(model_dir: str | os.PathLike[str]) -> LinearLearnerModel:
    arrays, meta = load_model(model_dir, NAME)
    return LinearLearnerModel(Model(meta["predictor_type"], meta["loss"],
                                    arrays["weights"].astype(np.float64),
                                    arrays["bias"].astype(np.float64),
                                    float(meta.get("threshold", 0.5))))
