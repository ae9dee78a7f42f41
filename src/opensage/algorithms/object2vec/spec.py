"""The Object2Vec built-in's hyperparameters, channels and metrics, as ``object2vec:1``
declares them (SageMaker's Object2Vec hyperparameter and tuning pages, the SDK's
``Object2Vec`` estimator)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opensage.algorithms.channels import ChannelSpec
from opensage.algorithms.firstparty import quality_metric
from opensage.algorithms.params import Bool, Choice, Float, Int, OrAuto, StrList, Text
from opensage.algorithms.spec import AlgorithmSpec

NAME = "object2vec"
NETWORKS = ["hcnn", "bilstm", "pooled_embedding"]


def _encoder(index: int) -> dict[str, Any]:
    e = f"enc{index}"
    required = index == 0
    return {
        f"{e}_max_seq_len": Int(1, 5000, required=required,
                                description=f"Maximum sequence length of {e}'s input"),
        f"{e}_vocab_size": Int(2, 3_000_000, required=required,
                               description=f"Vocabulary size of {e}'s tokens"),
        f"{e}_network": Choice(NETWORKS if index == 0 else [*NETWORKS, "enc0"],
                               default="hcnn" if index == 0 else "enc0", tunable=True),
        f"{e}_cnn_filter_width": Int(1, 9, default=3, tunable=True),
        f"{e}_layers": OrAuto(Int(1, 4), tunable=True),
        f"{e}_token_embedding_dim": Int(2, 1000, default=300, tunable=True),
        f"{e}_freeze_pretrained_embedding": Bool(default=True, tunable=True),
        f"{e}_pretrained_embedding_file": Text(default=""),
        f"{e}_vocab_file": Text(default=""),
    }


HYPERPARAMETERS = {
    **_encoder(0), **_encoder(1),
    "bucket_width": Int(0, 100, default=0),
    "comparator_list": StrList(Choice(["hadamard", "concat", "abs_diff"]),
                               default=("hadamard", "concat", "abs_diff")),
    "dropout": Float(0.0, 1.0, default=0.0, tunable=True),
    "early_stopping_patience": Int(1, 5, default=3),
    "early_stopping_tolerance": Float(1e-6, 0.1, default=0.01),
    "enc_dim": Int(4, 10000, default=4096, tunable=True),
    "epochs": Int(1, 100, default=30),
    # The SDK's Object2Vec estimator sends it (from the train RecordSet), as all first-party
    # estimators do; the encoders' vocabulary and lengths are their own hyperparameters.
    "feature_dim": Int(1, None, description="Sent by the SDK's Object2Vec estimator; not used"),
    "learning_rate": Float(1e-6, 1.0, default=0.0004, tunable=True),
    "mini_batch_size": Int(1, 10000, default=32, tunable=True),
    "mlp_activation": Choice(["tanh", "relu", "linear"], default="linear", tunable=True),
    "mlp_dim": Int(2, 10000, default=512, tunable=True),
    "mlp_layers": Int(1, 10, default=2, tunable=True),
    "negative_sampling_rate": Int(0, 100, default=0),
    "num_classes": Int(2, 30, default=2),
    "optimizer": Choice(["adadelta", "adagrad", "adam", "rmsprop", "sgd"], default="adam",
                        tunable=True),
    "output_layer": Choice(["softmax", "mean_squared_error"], default="softmax"),
    "tied_token_embedding_weight": Bool(default=False),
    "token_embedding_storage_type": Choice(["dense", "row_sparse"], default="dense"),
    "weight_decay": Float(0.0, 10000.0, default=0.0, tunable=True),
    "_tuning_objective_metric": Choice(["validation:accuracy", "validation:cross_entropy",
                                        "validation:mean_squared_error", "test:accuracy",
                                        "test:cross_entropy", "test:mean_squared_error"]),
}

_JSONLINES = {"application/jsonlines": "jsonlines", "application/json": "jsonlines"}


def _channel(required: bool, description: str) -> ChannelSpec:
    return ChannelSpec(required=required, content_types=_JSONLINES,
                       default_content_type="application/jsonlines", input_modes=("File",),
                       description=description)


CHANNELS = {
    "train": _channel(True, 'JSON lines {"label": 1, "in0": [ids], "in1": [ids]}'),
    "validation": _channel(False, "Pairs scored after each epoch (early stopping)"),
    "test": _channel(False, "Pairs the final model is scored on"),
    "auxiliary": ChannelSpec(required=False, content_types={"application/json": "files",
                                                            "text/plain": "files"},
                             default_content_type="application/json", input_modes=("File",),
                             description="Vocabulary and pretrained embedding files"),
}

METRICS = tuple(
    metric
    for channel in ("validation", "test")
    for metric in (quality_metric(channel, "accuracy", "Maximize"),
                   quality_metric(channel, "cross_entropy", "Minimize"),
                   quality_metric(channel, "mean_squared_error", "Minimize"))
) + (quality_metric("train", "loss", "Minimize", epoch=True),)


def _pretrained_needs_vocab(hps: Mapping[str, Any], _formats: Mapping[str, str]
                            ) -> Iterable[str]:
    for e in ("enc0", "enc1"):
        if hps.get(f"{e}_pretrained_embedding_file") and not hps.get(f"{e}_vocab_file"):
            yield (f"{e}_pretrained_embedding_file needs {e}_vocab_file (the auxiliary "
                   f"channel's vocabulary the embeddings are looked up by).")


SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File",), checks=(_pretrained_needs_vocab,))
