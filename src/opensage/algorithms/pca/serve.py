"""Inference for the PCA built-in: each record's ``projection`` onto the components, as
``pca:1`` answers it (``{"projections": [{"projection": [...]}]}``; the principal component
is the last entry, as in the AWS model). Sparse requests are projected without densifying."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.firstparty.training import load_model
from opensage.algorithms.inference import BuiltinModel
from opensage.algorithms.pca.decomposition import project
from opensage.algorithms.pca.spec import NAME


class PCAModel(BuiltinModel):
    top_key = "projections"
    dense = False

    def __init__(self, mean: NDArray[Any], v: NDArray[Any]) -> None:
        self.mean = mean.reshape(-1).astype(np.float64)
        self.components = v.T.astype(np.float64)  # (k, d), ascending variance
        self.feature_dim = int(v.shape[0])

    def predict(self, features: Any, verbose: bool) -> dict[str, NDArray[Any]]:
        if not hasattr(features, "tocsr"):
            features = np.asarray(features, dtype=np.float64)
        return {"projection": project(features, self.mean, self.components)
                .astype(np.float32)}


def load(model_dir: str | os.PathLike[str]) -> PCAModel:
    arrays, meta = load_model(model_dir, NAME)
    mean = arrays["mean"] if meta.get("subtract_mean", True) else np.zeros_like(arrays["mean"])
    return PCAModel(mean, arrays["v"])
