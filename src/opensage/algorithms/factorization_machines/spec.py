"""The factorization-machines built-in's hyperparameters, channels and metrics, as
``factorization-machines:1`` declares them (RecordIO-protobuf Float32 only: no CSV)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opensage.algorithms.firstparty import (
    data_channel,
    feature_dim,
    mini_batch_size,
    quality_metric,
)
from opensage.algorithms.params import Choice, Float, Int
from opensage.algorithms.spec import AlgorithmSpec

NAME = "factorization-machines"
INIT_METHODS = ("normal", "uniform", "constant")
GROUPS = ("bias", "linear", "factors")


def _group(prefix: str, *, lr: float, wd: float, sigma: float) -> dict[str, Any]:
    return {
        f"{prefix}_init_method": Choice(INIT_METHODS, default="normal", tunable=True),
        f"{prefix}_init_scale": Float(min=0, tunable=True,
                                      description="Uniform initialisation range [-scale, scale]"),
        f"{prefix}_init_sigma": Float(min=0, default=sigma, tunable=True,
                                      description="Standard deviation of the normal init"),
        f"{prefix}_init_value": Float(tunable=True, description="Constant initial value"),
        f"{prefix}_lr": Float(min=0, default=lr, tunable=True),
        f"{prefix}_wd": Float(min=0, default=wd, tunable=True),
    }


HYPERPARAMETERS = {
    "feature_dim": feature_dim(),
    "num_factors": Int(min=1, required=True, description="Dimension of the factorization"),
    "predictor_type": Choice(["binary_classifier", "regressor"], required=True),
    **_group("bias", lr=0.1, wd=0.01, sigma=0.01),
    **_group("linear", lr=0.001, wd=0.001, sigma=0.01),
    **_group("factors", lr=0.0001, wd=0.00001, sigma=0.001),
    "clip_gradient": Float(description="Clip gradients to [-clip_gradient, clip_gradient]"),
    "epochs": Int(min=1, default=1, tunable=True),
    "eps": Float(description="Epsilon of the optimizer (avoids division by 0)"),
    "mini_batch_size": mini_batch_size(1000, tunable=True),
    "rescale_grad": Float(description="Gradient scale (default 1 / mini-batch rows)"),
    "_tuning_objective_metric": Choice([
        "test:rmse", "test:binary_classification_accuracy",
        "test:binary_classification_cross_entropy", "test:binary_f_beta"]),
}

CHANNELS = {
    "train": data_channel(required=True, csv=False, description="Training data"),
    "test": data_channel(required=False, csv=False, description="Data the model is scored on"),
}

METRICS = (
    quality_metric("test", "rmse", "Minimize"),
    quality_metric("test", "binary_classification_accuracy", "Maximize"),
    quality_metric("test", "binary_classification_cross_entropy", "Minimize"),
    quality_metric("test", "binary_f_beta", "Maximize"),
)

_REGRESSOR_METRICS = ("test:rmse",)


def _objective_matches_predictor(hps: Mapping[str, Any],
                                 formats: Mapping[str, str]) -> Iterable[str]:
    objective = hps.get("_tuning_objective_metric")
    kind = hps.get("predictor_type")
    if objective is None or kind is None:
        return
    if (objective in _REGRESSOR_METRICS) != (kind == "regressor"):
        yield (f"Tuning objective metric {objective} is not reported for predictor_type "
               f"{kind}.")


SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File", "FastFile", "Pipe"),
                     checks=(_objective_matches_predictor,),
                     supports_distributed_training=True)
