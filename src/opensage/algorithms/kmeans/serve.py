"""Inference for the k-means built-in: each record's ``closest_cluster`` and
``distance_to_cluster`` (Euclidean), as ``kmeans:1`` answers them."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.firstparty.training import load_model
from opensage.algorithms.inference import BuiltinModel
from opensage.algorithms.kmeans.clustering import assign
from opensage.algorithms.kmeans.spec import NAME


class KMeansModel(BuiltinModel):
    def __init__(self, centers: NDArray[Any]) -> None:
        self.centers = centers.astype(np.float64)
        self.feature_dim = int(centers.shape[1])

    def predict(self, features: Any, verbose: bool) -> dict[str, NDArray[Any]]:
        labels, dist = assign(np.asarray(features, dtype=np.float64), self.centers)
        return {"closest_cluster": labels.astype(np.float32),
                "distance_to_cluster": np.sqrt(dist).astype(np.float32)}


def load(model_dir: str | os.PathLike[str]) -> KMeansModel:
    arrays, _meta = load_model(model_dir, NAME)
    return KMeansModel(arrays["centers"])
