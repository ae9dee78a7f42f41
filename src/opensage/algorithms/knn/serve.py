"""Inference for the k-NN built-in: each record's ``predicted_label``, plus with
``Accept: ...; verbose=true`` its neighbors' ``distances`` (ascending) and ``labels``, as
``knn:1`` answers them."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.firstparty.training import load_model
from opensage.algorithms.inference import BuiltinModel
from opensage.algorithms.knn.neighbors import KNN, Index, Projection
from opensage.algorithms.knn.spec import NAME


class KNNModel(BuiltinModel):
    def __init__(self, model: KNN, feature_dim: int) -> None:
        self.model = model
        self.feature_dim = feature_dim

    def predict(self, features: Any, verbose: bool) -> dict[str, NDArray[Any]]:
        predicted, distances, labels = self.model.query(np.asarray(features, np.float32))
        out = {"predicted_label": predicted.astype(np.float32)}
        if verbose:
            out["distances"] = distances.astype(np.float32)
            out["labels"] = labels.astype(np.float32)
        return out


def load(model_dir: str | os.PathLike[str]) -> KNNModel:
    arrays, meta = load_model(model_dir, NAME)
    index = Index.from_arrays(meta["index_type"], meta["index_metric"], int(meta["nprobe"]),
                              arrays)
    reduction = meta.get("dimension_reduction_type")
    projection = Projection.from_arrays(reduction, arrays) if reduction else None
    model = KNN(k=int(meta["k"]), predictor_type=meta["predictor_type"], index=index,
                projection=projection)
    return KNNModel(model, int(meta["feature_dim"]))
