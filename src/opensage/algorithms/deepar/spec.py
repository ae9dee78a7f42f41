"""DeepAR's hyperparameters, channels and metrics, as ``forecasting-deepar:1`` declares them.

Tunable ranges are SageMaker's DeepAR tuning page's (mini_batch_size 32-1028, epochs 1-1000,
context_length 1-200, num_cells 30-200, num_layers 1-8, dropout_rate 0-0.2,
embedding_dimension 1-50, learning_rate 1e-5-1e-1); outside tuning the accepted values are
wider where the hyperparameter page says so. Metrics: ``test:RMSE``,
``test:mean_wQuantileLoss``, ``test:wQuantileLoss[0.1]``... and ``train:final_loss``, found
in the container's ``#test_score (algo-1, RMSE): 1.23`` and ``#quality_metric: host=algo-1,
train final_loss <loss>=...`` lines (the exact regexes SageMaker registers are unverified).
"""

from __future__ import annotations

import re
from typing import Any

from opensage.algorithms.channels import ChannelSpec
from opensage.algorithms.params import Choice, Float, Int, OrAuto, Param, Rejected, Text
from opensage.algorithms.spec import AlgorithmSpec, MetricDefinition

NAME = "forecasting-deepar"
LIKELIHOODS = ("gaussian", "beta", "negative-binomial", "student-T", "deterministic-L1")
FREQ = re.compile(r"^(\d*)(min|H|D|W|M)$")
DEFAULT_QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class Quantiles(Param):
    """A JSON list of quantiles in (0, 1): ``[0.1, 0.5, 0.9]``."""

    def _parse(self, raw: str) -> tuple[float, ...]:
        import json

        values = json.loads(raw)
        if not isinstance(values, list) or not values:
            raise Rejected("a non-empty JSON list")
        out = tuple(float(v) for v in values)
        if not all(0 < v < 1 for v in out):
            raise Rejected("every quantile must lie strictly between 0 and 1")
        return out

    def accepted(self) -> str:
        return "a JSON list of floats in (0, 1)"

    def format(self, value: Any) -> str:
        return "[" + ", ".join(str(v) for v in value) + "]"

    def invalid_examples(self) -> list[str]:
        return ["[1.5]", "x", "[]"]


class Cardinality(Param):
    """``auto``, ``ignore``, or a JSON list of positive integers (one per ``cat`` field)."""

    def _parse(self, raw: str) -> Any:
        import json

        if raw in ("auto", "ignore"):
            return raw
        values = json.loads(raw)
        if not isinstance(values, list) or not all(isinstance(v, int) and v > 0
                                                   for v in values):
            raise Rejected("a JSON list of positive integers")
        return tuple(values)

    def accepted(self) -> str:
        return "auto, ignore or a JSON list of positive integers"

    def format(self, value: Any) -> str:
        return value if isinstance(value, str) else "[" + ", ".join(map(str, value)) + "]"

    def invalid_examples(self) -> list[str]:
        return ["[0]", "x"]


class TimeFreq(Text):
    """``[N]min``, ``[N]H``, ``[N]D``, ``[N]W`` or ``[N]M``."""

    def valid_example(self) -> str:
        return "D"


HYPERPARAMETERS = {
    "context_length": Int(min=1, max=200, required=True, tunable=True,
                          description="The number of time-points the model sees before "
                                      "making the prediction"),
    "epochs": Int(min=1, max=1000, required=True, tunable=True,
                  description="The maximum number of passes over the training data"),
    "prediction_length": Int(min=1, required=True,
                             description="The number of time-steps the model is trained to "
                                         "predict"),
    "time_freq": TimeFreq(r"\d*(min|H|D|W|M)", what="a frequency: [N]min, [N]H, [N]D, [N]W or "
                      "[N]M", required=True, description="The granularity of the time series"),
    "cardinality": Cardinality(default="auto",
                               description="The number of categories of each cat feature"),
    "dropout_rate": Float(0, 0.2, default=0.1, tunable=True,
                          description="The dropout rate used during training"),
    "early_stopping_patience": Int(min=1, description="Epochs without improvement of the "
                                                      "loss before training stops"),
    "embedding_dimension": Int(min=1, max=50, default=10, tunable=True,
                               description="Size of the embedding of each categorical feature"),
    "learning_rate": Float(1e-5, 1e-1, default=1e-3, tunable=True,
                           description="The learning rate used in training"),
    "likelihood": Choice(LIKELIHOODS, default="student-T",
                         description="The noise model of the forecasts"),
    "mini_batch_size": Int(min=1, max=1028, default=128, tunable=True,
                           description="The size of mini-batches used during training"),
    "num_cells": Int(min=1, max=200, default=40, tunable=True,
                     description="The number of cells in each hidden layer of the RNN"),
    "num_dynamic_feat": OrAuto(Int(min=0), words=("auto", "ignore"),
                               description="The number of dynamic_feat in the data"),
    "num_eval_samples": Int(min=1, default=100,
                            description="The number of samples per series for test metrics"),
    "num_layers": Int(min=1, max=8, default=2, tunable=True,
                      description="The number of hidden layers in the RNN"),
    "test_quantiles": Quantiles(default=DEFAULT_QUANTILES,
                                description="Quantiles for which the quantile loss is computed "
                                            "on the test channel"),
    "_tuning_objective_metric": Choice(["test:RMSE", "test:mean_wQuantileLoss",
                                        "train:final_loss"]),
}

JSON_TYPES = {"application/jsonlines": "jsonlines", "application/json": "jsonlines",
              "application/x-jsonlines": "jsonlines", "json": "jsonlines"}

CHANNELS = {
    "train": ChannelSpec(required=True, content_types=JSON_TYPES,
                         default_content_type="application/jsonlines",
                         description="Time series, one JSON object per line (gzip ok)"),
    "test": ChannelSpec(required=False, content_types=JSON_TYPES,
                        default_content_type="application/jsonlines",
                        description="Series whose last prediction_length points are "
                                    "forecast and scored"),
}


def test_score(name: str, direction: Any) -> MetricDefinition:
    escaped = re.escape(name)
    return MetricDefinition(f"test:{name}", rf"#test_score \(algo-\d+, {escaped}\): (\S+)",
                            direction)


METRICS = (
    test_score("RMSE", "Minimize"),
    test_score("mean_wQuantileLoss", "Minimize"),
    *(test_score(f"wQuantileLoss[{q}]", "Minimize") for q in DEFAULT_QUANTILES),
    MetricDefinition("train:final_loss",
                     r"#quality_metric: host=\S+, train final_loss <loss>=(\S+)", "Minimize"),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File",),
                     supports_distributed_training=True)
