"""The NTM built-in's hyperparameters, channels and metrics, as ``ntm:1`` declares them
(names, ranges and defaults from SageMaker's NTM hyperparameter and tuning pages and the SDK's
``NTM`` estimator)."""

from __future__ import annotations

from opensage.algorithms.channels import ChannelSpec
from opensage.algorithms.firstparty import (
    INPUT_MODES,
    data_channel,
    feature_dim,
    quality_metric,
)
from opensage.algorithms.params import Bool, Choice, Float, Int, IntList, OrAuto
from opensage.algorithms.spec import AlgorithmSpec

NAME = "ntm"

HYPERPARAMETERS = {
    "feature_dim": feature_dim(max=1_000_000),
    "num_topics": Int(2, 1000, required=True, description="Number of topics to find"),
    "batch_norm": Bool(default=False, tunable=True,
                       description="Batch normalization in the encoder layers"),
    "clip_gradient": OrAuto(Float(min=1e-3), words=("infinity", "inf"), default="infinity",
                            description="Clip each gradient value to [-c, c]"),
    "encoder_layers": OrAuto(IntList(min=1), description=(
        "Sizes of the encoder's layers; auto is 3 x num_topics, 2 x num_topics")),
    "encoder_layers_activation": Choice(["sigmoid", "tanh", "relu"], default="sigmoid",
                                        tunable=True),
    "epochs": Int(1, 100, default=50, description="Maximum passes over the training data"),
    "learning_rate": Float(1e-6, 1.0, default=0.001, tunable=True),
    "mini_batch_size": Int(1, 10000, default=256, tunable=True,
                           description="Number of documents per mini-batch"),
    "num_patience_epochs": Int(1, 10, default=3,
                               description="Epochs over which early stopping is judged"),
    "optimizer": Choice(["sgd", "adam", "adagrad", "rmsprop", "adadelta"], default="adadelta",
                        tunable=True),
    "rescale_gradient": Float(1e-3, 1.0, default=1.0, tunable=True),
    "sub_sample": Float(0.0, 1.0, closed="right", default=1.0,
                        description="Fraction of the training data sampled each epoch"),
    "tolerance": Float(1e-6, 0.1, default=0.001,
                       description="Relative loss change below which training stops early"),
    "weight_decay": Float(0.0, 1.0, default=0.0, tunable=True),
    "_tuning_objective_metric": Choice(["validation:total_loss", "test:total_loss"]),
}

CHANNELS = {
    "train": data_channel(required=True, label_sizes=("0",),
                          description="Word-count vectors, one document per record"),
    "validation": data_channel(required=False, label_sizes=("0",),
                               description="Documents scored after each epoch"),
    "test": data_channel(required=False, label_sizes=("0",),
                         description="Documents the final model is scored on"),
    "auxiliary": ChannelSpec(required=False, content_types={"text/plain": "vocabulary"},
                             default_content_type="text/plain", input_modes=INPUT_MODES,
                             description="vocab.txt: one word per line, feature_dim lines"),
}

METRICS = (
    quality_metric("validation", "total_loss", "Minimize", epoch=True),
    quality_metric("test", "total_loss", "Minimize"),
    quality_metric("train", "total_loss", "Minimize", epoch=True),
    quality_metric("validation", "recons_loss", "Minimize", epoch=True),
    quality_metric("validation", "kld", "Minimize", epoch=True),
    quality_metric("test", "recons_loss", "Minimize"),
    quality_metric("test", "kld", "Minimize"),
    quality_metric("test", "perplexity", "Minimize"),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=INPUT_MODES,
                     supports_distributed_training=False)
