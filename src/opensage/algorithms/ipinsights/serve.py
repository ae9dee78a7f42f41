"""Inference for the IP Insights built-in: ``entity,ip`` pairs in, dot products out.

Requests: ``text/csv`` rows ``entity_id,IPv4 address``; ``application/json`` ``{"instances":
[{"features": ["entity_id_2", "10.10.1.2"]}]}``; ``application/jsonlines`` one instance per
line. Responses: ``{"predictions": [{"dot_product": 0.1}]}`` (JSON) or one object per line
(JSON lines); ``Accept: application/json; verbose=True`` adds ``entity_embedding`` and
``ip_embedding``. A malformed address or row is a 400.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.firstparty.training import load_model
from opensage.algorithms.inference import (
    CSV,
    JSON,
    JSONLINES,
    BuiltinModel,
    InferenceError,
    instance_features,
    json_instances,
)
from opensage.algorithms.ipinsights.data import parse_ips
from opensage.algorithms.ipinsights.model import Model, hash_entities
from opensage.algorithms.ipinsights.spec import NAME


class IPInsightsModel(BuiltinModel):
    request_types = (CSV, JSON, JSONLINES)
    response_types = (JSON, JSONLINES)
    dense = False

    def __init__(self, model: Model) -> None:
        self.model = model
        self.buckets = int(model.entities.shape[0])

    def parse(self, body: bytes, kind: str) -> Any:
        """The request's (entity ids, IPv4 strings), row by row."""
        if kind == CSV:
            text = body.decode("utf-8", "replace")
            rows = [r for r in csv.reader(io.StringIO(text)) if any(f.strip() for f in r)]
        else:
            rows = [instance_features(x, i)
                    for i, x in enumerate(json_instances(body, lines=kind == JSONLINES), 1)]
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, list) or len(row) != 2:
                raise InferenceError(400, f"Invalid input: record {number} must be two values "
                                          f"[entity_id, IPv4 address]; got {row!r}.")
        return ([str(r[0]).strip() for r in rows], [str(r[1]).strip() for r in rows])

    def check(self, features: Any) -> Any:
        entities, addresses = features
        ips, bad = parse_ips(addresses)
        if bad is not None:
            raise InferenceError(400, f"Invalid input: record {bad + 1} has "
                                      f"{addresses[bad]!r}, which is not an IPv4 address.")
        for number, entity in enumerate(entities, start=1):
            if not entity:
                raise InferenceError(400, f"Invalid input: record {number} has no entity id.")
        return hash_entities(entities, self.buckets), ips

    def predict(self, features: Any, verbose: bool) -> dict[str, NDArray[Any]]:
        buckets, ips = features
        entity = self.model.entity_vectors(buckets)
        ip = self.model.ip_vectors(ips)
        out = {"dot_product": np.sum(entity * ip, axis=1).astype(np.float32)}
        if verbose:
            out["entity_embedding"] = entity.astype(np.float32)
            out["ip_embedding"] = ip.astype(np.float32)
        return out


def load(model_dir: str | os.PathLike[str]) -> IPInsightsModel:
    arrays, meta = load_model(model_dir, NAME)
    layers = int(meta.get("layers", 0))
    model = Model(entities=arrays["entities"].astype(np.float64),
                  seen=arrays["seen"].astype(bool), oov=arrays["oov"].astype(np.float64),
                  ip_table=arrays["ip_table"].astype(np.float64),
                  sizes=[int(s) for s in arrays["sizes"]],
                  weights=[arrays[f"layer{j}_weight"].astype(np.float64)
                           for j in range(layers)],
                  biases=[arrays[f"layer{j}_bias"].astype(np.float64) for j in range(layers)])
    return IPInsightsModel(model)
