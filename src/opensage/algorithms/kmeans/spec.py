"""The k-means built-in's hyperparameters, channels and metrics, as ``kmeans:1`` declares them."""

from __future__ import annotations

from opensage.algorithms.firstparty import (
    data_channel,
    feature_dim,
    mini_batch_size,
    quality_metric,
)
from opensage.algorithms.params import Bool, Choice, Float, Int, OrAuto, StrList
from opensage.algorithms.spec import AlgorithmSpec

NAME = "kmeans"

HYPERPARAMETERS = {
    "feature_dim": feature_dim(),
    "k": Int(min=2, required=True, tunable=False, description="Number of clusters"),
    "epochs": Int(min=1, default=1, tunable=True),
    "eval_metrics": StrList(Choice(["msd", "ssd"]), default=("msd",)),
    "extra_center_factor": OrAuto(Int(min=1), tunable=True),
    "half_life_time_size": Int(min=0, default=0),
    "init_method": Choice(["random", "kmeans++"], default="random", tunable=True),
    "local_lloyd_init_method": Choice(["random", "kmeans++"], default="kmeans++",
                                      tunable=True),
    "local_lloyd_max_iter": Int(min=1, default=300, tunable=True),
    "local_lloyd_num_trials": OrAuto(Int(min=1), tunable=True),
    "local_lloyd_tol": Float(0, 1, default=0.0001, tunable=True),
    "mini_batch_size": mini_batch_size(5000, tunable=True),
    # The SDK's KMeans always sends force_dense=True ("to fit on Record objects"); sparse
    # records are densified either way.
    "force_dense": Bool(default=True),
    "_tuning_objective_metric": Choice(["test:msd", "test:ssd"]),
}

CHANNELS = {
    "train": data_channel(required=True, label_sizes=("0",), description="Training data"),
    "test": data_channel(required=False, description="Data the final model is scored on"),
}

METRICS = (
    quality_metric("test", "msd", "Minimize"),
    quality_metric("test", "ssd", "Minimize"),
    quality_metric("train", "msd", "Minimize"),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File", "FastFile", "Pipe"),
                     supports_distributed_training=True, trains_across_hosts=True)
