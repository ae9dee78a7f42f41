"""The PCA built-in's hyperparameters and channels, as ``pca:1`` declares them.

PCA has no tunable hyperparameters and no objective metric (the docs list none)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opensage.algorithms.firstparty import data_channel, feature_dim, mini_batch_size
from opensage.algorithms.params import Bool, Choice, Int
from opensage.algorithms.spec import AlgorithmSpec

NAME = "pca"

HYPERPARAMETERS = {
    "feature_dim": feature_dim(),
    "mini_batch_size": mini_batch_size(required=True),
    "num_components": Int(min=1, required=True,
                          description="The number of principal components to compute"),
    "algorithm_mode": Choice(["regular", "randomized"], default="regular",
                             description="Mode for computing the principal components"),
    "extra_components": Int(min=-1, default=-1,
                            description="Extra (oversampling) components of the randomized "
                                        "mode; -1 means max(10, num_components)"),
    "subtract_mean": Bool(default=True,
                          description="Whether the data is centered in training and inference"),
}


def _components_fit(values: Mapping[str, Any], _formats: Mapping[str, str]) -> Iterable[str]:
    k, dim = values.get("num_components"), values.get("feature_dim")
    if k is not None and dim is not None and k > dim:
        yield (f"Hyperparameter 'num_components' ({k}) must not be greater than "
               f"'feature_dim' ({dim}).")


CHANNELS = {
    "train": data_channel(required=True, label_sizes=("0",), description="Training data"),
    "test": data_channel(required=False, label_sizes=("0",),
                         description="Data checked against the final model"),
}

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=(), input_modes=("File", "FastFile", "Pipe"),
                     checks=(_components_fit,), supports_distributed_training=True,
                     trains_across_hosts=True)
