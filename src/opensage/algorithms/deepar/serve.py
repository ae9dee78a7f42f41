"""Inference for DeepAR, as SageMaker's answers it: ``application/json`` ``{"instances":
[{"start": ..., "target": [...], "cat": [...], "dynamic_feat": [[...]]}], "configuration":
{"num_samples": 100, "output_types": ["mean", "quantiles", "samples"], "quantiles": ["0.1",
"0.5", "0.9"]}}`` -> ``{"predictions": [{"mean": [...], "quantiles": {"0.1": [...], ...},
"samples": [[...], ...]}]}``; ``application/jsonlines`` (batch transform): one instance per
line, the configuration from the ``DEEPAR_INFERENCE_CONFIG`` environment variable, one
prediction object per line. Dynamic features must cover the ``prediction_length`` steps
after the target."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch

from opensage.algorithms.contract import UserError
from opensage.algorithms.deepar.data import Frequency, parse_series
from opensage.algorithms.deepar.model import DeepARNet, Layout, forecast
from opensage.algorithms.deepar.spec import NAME
from opensage.algorithms.inference import JSON, JSONLINES, InferenceError, media_type, negotiate
from opensage.algorithms.torchsupport import load_model

OUTPUT_TYPES = ("mean", "quantiles", "samples")


class DeepARModel:
    def __init__(self, net: DeepARNet, freq: Frequency) -> None:
        self.net = net.eval()
        self.freq = freq

    def invoke(self, body: bytes, content_type: str | None,
               accept: str | None = None) -> tuple[bytes, str]:
        kind = media_type(content_type) or JSON
        if kind not in (JSON, JSONLINES):
            raise InferenceError(415, f"Content type {content_type} is not supported by "
                                      f"DeepAR; use application/json or application/jsonlines.")
        response_type, _ = negotiate(accept, (JSON, JSONLINES), kind)
        try:
            if kind == JSONLINES:
                instances = [json.loads(line) for line in body.splitlines() if line.strip()]
                configuration = json.loads(os.environ.get("DEEPAR_INFERENCE_CONFIG") or "{}")
            else:
                document = json.loads(body)
                if not isinstance(document, dict) or "instances" not in document:
                    raise InferenceError(400, 'Invalid JSON payload: expected {"instances": '
                                              '[{"start": ..., "target": [...]}]}.')
                instances = document["instances"]
                configuration = document.get("configuration") or {}
        except ValueError as e:
            raise InferenceError(400, f"Unable to parse JSON: {e}") from None
        if not isinstance(instances, list) or not instances:
            raise InferenceError(400, "Invalid payload: no instances.")
        num_samples, outputs, quantiles = self._configuration(configuration)
        predictions = [self._predict(x, i, num_samples, outputs, quantiles)
                       for i, x in enumerate(instances, 1)]
        if response_type == JSONLINES:
            return "".join(json.dumps(p) + "\n" for p in predictions).encode(), JSONLINES
        return json.dumps({"predictions": predictions}).encode(), JSON

    def _configuration(self, config: Any) -> tuple[int, list[str], list[str]]:
        if not isinstance(config, dict):
            raise InferenceError(400, "Invalid configuration: expected an object.")
        num_samples = config.get("num_samples", 100)
        if not isinstance(num_samples, int) or not 1 <= num_samples <= 10000:
            raise InferenceError(400, "Invalid configuration: num_samples must be an integer "
                                      "from 1 to 10000.")
        outputs = config.get("output_types", ["mean", "quantiles"])
        if not isinstance(outputs, list) or not set(outputs) <= set(OUTPUT_TYPES):
            raise InferenceError(400, f"Invalid configuration: output_types must list some of "
                                      f"{', '.join(OUTPUT_TYPES)}.")
        quantiles = [str(q) for q in config.get("quantiles", ["0.1", "0.2", "0.3", "0.4",
                                                              "0.5", "0.6", "0.7", "0.8",
                                                              "0.9"])]
        for q in quantiles:
            try:
                ok = 0 < float(q) < 1
            except ValueError:
                ok = False
            if not ok:
                raise InferenceError(400, f"Invalid configuration: quantile {q!r} is not a "
                                          f"number between 0 and 1.")
        return num_samples, outputs, quantiles

    def _predict(self, instance: Any, number: int, num_samples: int, outputs: list[str],
                 quantiles: list[str]) -> dict[str, Any]:
        layout = self.net.layout
        try:
            series = parse_series(instance, f"Instance {number}")
        except UserError as e:
            raise InferenceError(400, str(e)) from None
        if len(series.cat) < len(layout.cardinality):
            raise InferenceError(400, f"Instance {number} has {len(series.cat)} cat values; "
                                      f"the model was trained with {len(layout.cardinality)}.")
        dyn = 0 if series.dynamic_feat is None else series.dynamic_feat.shape[0]
        if dyn != layout.num_dynamic:
            raise InferenceError(400, f"Instance {number} has {dyn} dynamic_feat; the model "
                                      f"was trained with {layout.num_dynamic}.")
        needed = len(series.target) + layout.prediction_length
        if dyn and series.dynamic_feat is not None and series.dynamic_feat.shape[1] < needed:
            raise InferenceError(400, f"Instance {number}: dynamic_feat must cover the target "
                                      f"and the {layout.prediction_length} steps after it "
                                      f"({needed} values).")
        paths = forecast(self.net, series, self.freq, num_samples)
        out: dict[str, Any] = {}
        if "mean" in outputs:
            out["mean"] = paths.mean(axis=0).tolist()
        if "quantiles" in outputs:
            out["quantiles"] = {q: np.quantile(paths, float(q), axis=0).tolist()
                                for q in quantiles}
        if "samples" in outputs:
            out["samples"] = paths.tolist()
        return out


def load(model_dir: str | os.PathLike[str]) -> DeepARModel:
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or 1)))
    torch.manual_seed(0)
    tensors, header = load_model(model_dir, NAME)
    raw = header["layout"]
    layout = Layout(lags=tuple(raw["lags"]), time_features=raw["time_features"],
                    num_dynamic=raw["num_dynamic"], cardinality=tuple(raw["cardinality"]),
                    likelihood=raw["likelihood"], context_length=raw["context_length"],
                    prediction_length=raw["prediction_length"])
    net = DeepARNet(layout, embedding_dimension=header["embedding_dimension"],
                    num_cells=header["num_cells"], num_layers=header["num_layers"], dropout=0.0)
    net.load_state_dict(tensors)
    return DeepARModel(net, Frequency.parse(header["time_freq"]))
