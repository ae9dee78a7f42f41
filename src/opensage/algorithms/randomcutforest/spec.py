"""The Random Cut Forest built-in's hyperparameters, channels and metrics, as
``randomcutforest:1`` declares them."""

from __future__ import annotations

from opensage.algorithms.firstparty import (
    data_channel,
    feature_dim,
    mini_batch_size,
    quality_metric,
)
from opensage.algorithms.params import Choice, Int, StrList
from opensage.algorithms.spec import AlgorithmSpec

NAME = "randomcutforest"
EVAL_METRICS = ("accuracy", "precision_recall_fscore")

HYPERPARAMETERS = {
    "feature_dim": feature_dim(max=10000),
    "eval_metrics": StrList(Choice(EVAL_METRICS), default=EVAL_METRICS,
                            description="Metrics reported on the test channel"),
    "num_samples_per_tree": Int(min=1, max=2048, default=256, tunable=True,
                                description="Records sampled (reservoir) for each tree"),
    "num_trees": Int(min=50, max=1000, default=100, tunable=True,
                     description="Number of trees in the forest"),
    # the SDK always sends mini_batch_size=1000; the forest reads the data whole, so it only
    # has to be a valid batch size
    "mini_batch_size": mini_batch_size(1000),
    "_tuning_objective_metric": Choice(["test:f1"]),
}

CHANNELS = {
    "train": data_channel(required=True, label_sizes=("0",), description="Training data"),
    "test": data_channel(required=False, label_sizes=("1",),
                         description="Labelled data (label 1 = anomaly) the model is scored on"),
}

METRICS = (
    quality_metric("test", "f1", "Maximize"),
    quality_metric("test", "accuracy", "Maximize"),
    quality_metric("test", "precision", "Maximize"),
    quality_metric("test", "recall", "Maximize"),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File", "FastFile", "Pipe"),
                     supports_distributed_training=True)
