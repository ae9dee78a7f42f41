"""Inference for the image classification built-in, as ``image-classification:1`` answers:
a JPEG or PNG image (``application/x-image``, ``image/jpeg``, ``image/png``) ->

* ``application/json`` (default): the list of class probabilities, ``[0.01, 0.97, ...]``;
* ``application/jsonlines``: ``{"prediction": [...]}``; with ``; verbose=true`` also
  ``"labels"`` (the class indices) and ``"predicted_label"``.

The image is converted to image_shape's channels, its shortest side resized to the trained
height, and centre-cropped. Multi-label models answer a sigmoid probability per class."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch

from opensage.algorithms.contract import UserError
from opensage.algorithms.image_classification.data import center_crop, decode
from opensage.algorithms.image_classification.model import ResNet
from opensage.algorithms.image_classification.spec import NAME
from opensage.algorithms.image_classification.train import Batcher
from opensage.algorithms.inference import (
    JSON,
    JSONLINES,
    InferenceError,
    is_verbose,
    media_type,
    negotiate,
)
from opensage.algorithms.torchsupport import load_model

IMAGE_TYPES = ("application/x-image", "image/jpeg", "image/png")


class ImageClassifier:
    def __init__(self, model: ResNet, config: dict[str, Any]) -> None:
        self.model = model.eval()
        self.config = config
        self.shape = (config["channels"], config["height"], config["width"])
        self.batcher = Batcher(self.shape, None, torch.device("cpu"))

    def probabilities(self, body: bytes) -> list[float]:
        channels, height, width = self.shape
        try:
            image = decode(body, channels, self.config.get("resize") or max(height, width),
                           height, width, "the request")
        except UserError as e:
            raise InferenceError(400, f"Invalid input: {e}") from None
        with torch.no_grad():
            logits = self.model(self.batcher.batch([center_crop(image, height, width)], None))
        scores = (torch.sigmoid(logits) if self.config.get("multi_label")
                  else torch.softmax(logits, dim=1))[0]
        return [float(v) for v in scores]

    def invoke(self, body: bytes, content_type: str | None,
               accept: str | None = None) -> tuple[bytes, str]:
        kind = media_type(content_type) or "application/x-image"
        if kind not in IMAGE_TYPES:
            raise InferenceError(415, f"Content type {content_type} is not supported by "
                                      f"image-classification; send an image as "
                                      f"application/x-image, image/jpeg or image/png.")
        response, params = negotiate(accept, (JSON, JSONLINES), JSON)
        probabilities = self.probabilities(body)
        if response == JSON:
            return json.dumps(probabilities).encode(), JSON
        row: dict[str, Any] = {"prediction": probabilities}
        if is_verbose(params):
            row["labels"] = list(range(len(probabilities)))
            row["predicted_label"] = int(np.argmax(probabilities))
        return (json.dumps(row) + "\n").encode(), JSONLINES


def load(model_dir: str | os.PathLike[str]) -> ImageClassifier:
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or 1)))
    tensors, header = load_model(model_dir, NAME)
    config = header["config"]
    model = ResNet(config)
    model.load_state_dict(tensors)
    return ImageClassifier(model, config)
