"""Inference for the NTM built-in: each document's ``topic_weights`` (its topic mixture), as
``ntm:1`` answers them, for CSV, JSON, JSON lines and RecordIO-protobuf word counts."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from opensage.algorithms.inference import BuiltinModel
from opensage.algorithms.ntm.model import TopicModel
from opensage.algorithms.ntm.spec import NAME
from opensage.algorithms.torchsupport import load_model


class NTMModel(BuiltinModel):
    def __init__(self, model: TopicModel, feature_dim: int) -> None:
        self.model = model.eval()
        self.feature_dim = feature_dim

    def predict(self, features: Any, verbose: bool) -> dict[str, NDArray[Any]]:
        counts = torch.as_tensor(np.asarray(features, dtype=np.float32))
        with torch.no_grad():
            weights = self.model.topic_weights(counts).numpy()
        return {"topic_weights": weights.astype(np.float32)}


def load(model_dir: str | os.PathLike[str]) -> NTMModel:
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or 1)))
    tensors, header = load_model(model_dir, NAME)
    model = TopicModel(header["feature_dim"], header["num_topics"], header["layers"],
                       header["activation"], header["batch_norm"])
    model.load_state_dict(tensors)
    return NTMModel(model, header["feature_dim"])
