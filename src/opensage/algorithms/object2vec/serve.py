"""Inference for the Object2Vec built-in, as ``object2vec:1`` answers:

* pairs ``{"instances": [{"in0": [ids], "in1": [ids]}, ...]}`` (JSON, or JSON lines one
  instance per line) -> ``{"predictions": [{"scores": [p0, p1, ...], "predicted_label": k}]}``
  (softmax) or ``{"scores": [value]}`` (mean_squared_error);
* encoder embeddings: instances with only ``in0`` (or only ``in1``), or every instance when the
  model's environment sets ``INFERENCE_PREFERRED_MODE=embedding`` -> ``{"predictions":
  [{"embeddings": [...]}]}`` from that input's encoder.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from opensage.algorithms.contract import UserError
from opensage.algorithms.inference import (
    JSON,
    JSONLINES,
    InferenceError,
    default_accept,
    json_instances,
    media_type,
    negotiate,
)
from opensage.algorithms.object2vec.data import check_tokens, pad
from opensage.algorithms.object2vec.model import Object2Vec
from opensage.algorithms.object2vec.spec import NAME
from opensage.algorithms.torchsupport import load_model

TYPES = (JSON, JSONLINES)


class Object2VecModel:
    def __init__(self, model: Object2Vec, config: dict[str, Any], embedding_mode: bool) -> None:
        self.model = model.eval()
        self.config = config
        self.embedding_mode = embedding_mode

    def _tokens(self, instances: list[Any], key: str) -> torch.Tensor:
        rows = []
        vocab = self.config["enc0_vocab_size" if key == "in0" else "enc1_vocab_size"]
        for number, instance in enumerate(instances, start=1):
            try:
                rows.append(check_tokens(instance.get(key), key, vocab, f"instance {number}"))
            except UserError as e:
                raise InferenceError(400, f"Invalid input: {e}") from None
        length = self.config["enc0_max_seq_len" if key == "in0" else "enc1_max_seq_len"]
        return torch.as_tensor(pad(rows, length))

    def invoke(self, body: bytes, content_type: str | None,
               accept: str | None = None) -> tuple[bytes, str]:
        kind = media_type(content_type) or JSON
        if kind not in TYPES:
            raise InferenceError(415, f"Content type {content_type} is not supported by "
                                      f"Object2Vec; use application/json or "
                                      f"application/jsonlines.")
        response, _ = negotiate(accept, TYPES, default_accept(TYPES, JSON))
        instances = json_instances(body, lines=kind == JSONLINES)
        if not all(isinstance(i, dict) for i in instances):
            raise InferenceError(400, 'Invalid input: each instance must be an object with '
                                      '"in0" and/or "in1" token lists.')
        keys = {tuple(sorted(k for k in ("in0", "in1") if k in i)) for i in instances}
        if len(keys) != 1 or () in keys:
            raise InferenceError(400, 'Invalid input: every instance needs "in0" and "in1" '
                                      '(pair scores) or every instance only one of them '
                                      '(encoder embeddings).')
        present = keys.pop()
        with torch.no_grad():
            if len(present) == 1 or self.embedding_mode:
                key = present[0]
                encoder = self.model.enc0 if key == "in0" else self.model.encoder1()
                vectors = encoder(self._tokens(instances, key)).numpy().tolist()
                rows: list[dict[str, Any]] = [{"embeddings": v} for v in vectors]
            else:
                out = self.model(self._tokens(instances, "in0"), self._tokens(instances, "in1"))
                if self.config["output_layer"] == "softmax":
                    probs = torch.softmax(out, dim=1)
                    rows = [{"scores": p.tolist(), "predicted_label": int(p.argmax())}
                            for p in probs]
                else:
                    rows = [{"scores": [float(v)]} for v in out[:, 0]]
        if response == JSONLINES:
            return "".join(json.dumps(r) + "\n" for r in rows).encode(), JSONLINES
        return json.dumps({"predictions": rows}).encode(), JSON


def load(model_dir: str | os.PathLike[str]) -> Object2VecModel:
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or 1)))
    tensors, header = load_model(model_dir, NAME)
    config = header["config"]
    model = Object2Vec(config)
    model.load_state_dict(tensors)
    mode = os.environ.get("INFERENCE_PREFERRED_MODE", "classification").lower()
    return Object2VecModel(model, config, mode == "embedding")
