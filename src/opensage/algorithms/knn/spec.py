"""The k-NN built-in's hyperparameters, channels and metrics, as ``knn:1`` declares them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opensage.algorithms.firstparty import (
    data_channel,
    feature_dim,
    mini_batch_size,
    quality_metric,
)
from opensage.algorithms.params import Choice, Int, OrAuto
from opensage.algorithms.spec import AlgorithmSpec

NAME = "knn"

PQ_M_VALUES = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)

HYPERPARAMETERS = {
    "feature_dim": feature_dim(),
    "k": Int(min=1, required=True, tunable=True, description="Number of nearest neighbors"),
    "predictor_type": Choice(["classifier", "regressor"], required=True,
                             description="classifier (majority vote) or regressor (mean)"),
    "sample_size": Int(min=1, required=True, tunable=True,
                       description="Number of training points sampled into the index"),
    "dimension_reduction_type": Choice(["sign", "fjlt"],
                                       description="Random projection: sign or fjlt"),
    "dimension_reduction_target": Int(min=1, description="Dimension to reduce to"),
    "index_type": Choice(["faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ"], default="faiss.Flat"),
    "index_metric": Choice(["L2", "INNER_PRODUCT", "COSINE"], default="L2"),
    "faiss_index_ivf_nlists": OrAuto(Int(min=1), description="Number of IVF lists; auto "
                                                             "is sqrt(sample_size)"),
    "faiss_index_pq_m": Int(min=1, description="Number of product-quantizer sub-vectors "
                                               "(faiss.IVFPQ)"),
    "mini_batch_size": mini_batch_size(5000),
    "_tuning_objective_metric": Choice(["test:accuracy", "test:mse"]),
}


def index_dim(values: Mapping[str, Any]) -> int | None:
    """The dimension the index holds: the reduction target, else feature_dim."""
    if values.get("dimension_reduction_type") is not None:
        return values.get("dimension_reduction_target")
    return values.get("feature_dim")


def _checks(values: Mapping[str, Any], _formats: Mapping[str, str]) -> Iterable[str]:
    dim = values.get("feature_dim")
    kind, target = values.get("dimension_reduction_type"), values.get("dimension_reduction_target")
    if kind is not None and target is None:
        yield ("Hyperparameter 'dimension_reduction_target' is required when "
               "'dimension_reduction_type' is set.")
    if kind is not None and target is not None and dim is not None and target >= dim:
        yield (f"Hyperparameter 'dimension_reduction_target' ({target}) must be less than "
               f"'feature_dim' ({dim}).")
    m = values.get("faiss_index_pq_m")
    if m is not None and m not in PQ_M_VALUES:
        yield (f"Hyperparameter 'faiss_index_pq_m' ({m}) must be one of "
               f"{', '.join(map(str, PQ_M_VALUES))}.")
    elif m is not None and values.get("index_type") == "faiss.IVFPQ":
        size = index_dim(values)
        if size is not None and size % m:
            yield (f"Hyperparameter 'faiss_index_pq_m' ({m}) must divide the index dimension "
                   f"({size}: dimension_reduction_target, else feature_dim).")
    objective = values.get("_tuning_objective_metric")
    predictor = values.get("predictor_type")
    wanted = {"classifier": "test:accuracy", "regressor": "test:mse"}.get(predictor or "")
    if objective is not None and wanted is not None and objective != wanted:
        yield (f"The objective metric {objective} does not apply to predictor_type "
               f"{predictor}; use {wanted}.")


CHANNELS = {
    "train": data_channel(required=True, label_sizes=("1",),
                          description="Labeled points the index is built from"),
    "test": data_channel(required=False, label_sizes=("1",),
                         description="Labeled data the model is scored on"),
}

METRICS = (
    quality_metric("test", "accuracy", "Maximize"),
    quality_metric("test", "mse", "Minimize"),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File", "FastFile", "Pipe"),
                     checks=(_checks,), supports_distributed_training=True)
