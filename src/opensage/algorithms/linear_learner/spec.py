"""The linear-learner built-in's hyperparameters, channels and metrics, as ``linear-learner:1``
declares them (names, ranges and defaults from the developer guide and the SDK's validators)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from opensage.algorithms.firstparty import data_channel, mini_batch_size, quality_metric
from opensage.algorithms.params import Bool, Choice, Float, Int, OrAuto, Param
from opensage.algorithms.spec import AlgorithmSpec, MetricDefinition

NAME = "linear-learner"

PREDICTOR_TYPES = ("binary_classifier", "multiclass_classifier", "regressor")
LOSSES = {
    "binary_classifier": ("logistic", "hinge_loss"),
    "multiclass_classifier": ("softmax_loss",),
    "regressor": ("squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
                  "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss"),
}
DEFAULT_LOSS = {"binary_classifier": "logistic", "multiclass_classifier": "softmax_loss",
                "regressor": "squared_loss"}
ALL_LOSSES = ("logistic", "squared_loss", "absolute_loss", "hinge_loss",
              "eps_insensitive_squared_loss", "eps_insensitive_absolute_loss", "quantile_loss",
              "huber_loss", "softmax_loss")

# metric -> direction, per predictor type (validation: and test: channels)
METRIC_NAMES = {
    "binary_classifier": {"objective_loss": "Minimize",
                          "binary_classification_accuracy": "Maximize",
                          "binary_f_beta": "Maximize", "precision": "Maximize",
                          "recall": "Maximize", "roc_auc_score": "Maximize"},
    "multiclass_classifier": {"objective_loss": "Minimize", "multiclass_accuracy": "Maximize",
                              "multiclass_top_k_accuracy": "Maximize",
                              "macro_f_beta": "Maximize", "macro_precision": "Maximize",
                              "macro_recall": "Maximize", "dcg": "Maximize"},
    "regressor": {"objective_loss": "Minimize", "mse": "Minimize",
                  "absolute_loss": "Minimize", "rmse": "Minimize"},
}
DIRECTIONS: dict[str, str] = {}
for _names in METRIC_NAMES.values():
    DIRECTIONS.update(_names)


def _positive_float(default: float | None = None, *, tunable: bool = False) -> Float:
    return Float(0, None, closed="neither", default=default, tunable=tunable)


def _unit(default: float | None = None, *, closed: str = "neither") -> Float:
    return Float(0, 1, closed=closed, default=default)  # type: ignore[arg-type]


HYPERPARAMETERS: dict[str, Param] = {
    "feature_dim": OrAuto(Int(min=1), description="Number of features in the input data"),
    "predictor_type": Choice(PREDICTOR_TYPES, required=True),
    "num_classes": Int(1, 1_000_000, description="Number of classes (multiclass_classifier)"),
    "accuracy_top_k": Int(1, 1_000_000, default=3),
    "balance_multiclass_weights": Bool(default=False),
    "beta_1": OrAuto(_unit(closed="left")),
    "beta_2": OrAuto(_unit(closed="left")),
    "bias_lr_mult": OrAuto(_positive_float()),
    "bias_wd_mult": OrAuto(Float(min=0)),
    "binary_classifier_model_selection_criteria": Choice(
        ["accuracy", "f_beta", "precision_at_target_recall", "recall_at_target_precision",
         "loss_function"], default="accuracy"),
    "early_stopping_patience": Int(min=1, default=3),
    "early_stopping_tolerance": _positive_float(0.001),
    "epochs": Int(min=1, default=15),
    "f_beta": _positive_float(1.0),
    "huber_delta": Float(min=0, default=1.0),
    "init_bias": Float(default=0.0),
    "init_method": Choice(["uniform", "normal"], default="uniform"),
    "init_scale": _positive_float(0.07),
    "init_sigma": _positive_float(0.01),
    "l1": OrAuto(Float(min=0), tunable=True),
    "learning_rate": OrAuto(_positive_float(), tunable=True),
    "loss": Choice(("auto", *ALL_LOSSES), default="auto"),
    "loss_insensitivity": _positive_float(0.01),
    "lr_scheduler_factor": OrAuto(_unit()),
    "lr_scheduler_minimum_lr": OrAuto(_positive_float()),
    "lr_scheduler_step": OrAuto(Int(min=1)),
    "margin": Float(min=0, default=1.0),
    "mini_batch_size": mini_batch_size(1000, tunable=True),
    "momentum": OrAuto(_unit(closed="left")),
    "normalize_data": OrAuto(Bool(), default=True),
    "normalize_label": OrAuto(Bool()),
    "num_calibration_samples": OrAuto(Int(min=1)),
    "num_models": OrAuto(Int(min=1)),
    "num_point_for_scaler": Int(min=1, default=10000),
    "optimizer": Choice(["auto", "sgd", "adam", "rmsprop"], default="auto"),
    "positive_example_weight_mult": OrAuto(Float(0, None, closed="neither"),
                                           words=("auto", "balanced"), default=1.0,
                                           tunable=True),
    "quantile": _unit(0.5),
    "target_precision": _unit(0.8),
    "target_recall": _unit(0.8),
    "unbias_data": OrAuto(Bool()),
    "unbias_label": OrAuto(Bool()),
    "use_bias": Bool(default=True, tunable=True),
    "use_lr_scheduler": Bool(default=True),
    "wd": OrAuto(Float(min=0), tunable=True),
    "_tuning_objective_metric": Choice(
        [f"{channel}:{metric}" for channel in ("validation", "test") for metric in DIRECTIONS]
        + ["train:objective_loss"]),
}

CHANNELS = {
    "train": data_channel(required=True, label_sizes=("1",), description="Training data"),
    "validation": data_channel(required=False, label_sizes=("1",),
                               description="Data for early stopping, model selection and "
                                           "threshold calibration"),
    "test": data_channel(required=False, label_sizes=("1",),
                         description="Data the final model is scored on"),
}

METRICS = (
    *(quality_metric(channel, metric, direction)  # type: ignore[arg-type]
      for channel in ("test", "validation") for metric, direction in DIRECTIONS.items()),
    MetricDefinition("train:objective_loss",
                     r"#quality_metric: host=\S+, epoch=\S+, train \S+_objective <loss>=(\S+)",
                     "Minimize"),
)


def _check(values: Mapping[str, Any], formats: Mapping[str, str]) -> Iterator[str]:
    predictor = values.get("predictor_type")
    if predictor is None:
        return
    if predictor == "multiclass_classifier":
        classes = values.get("num_classes")
        if classes is None:
            yield ("Hyperparameter 'num_classes' is required when predictor_type is "
                   "'multiclass_classifier'.")
        elif classes < 3:
            yield (f"Hyperparameter 'num_classes' must be an integer in [3, 1000000] for "
                   f"predictor_type 'multiclass_classifier'; got {classes}. Use "
                   f"predictor_type 'binary_classifier' for two classes.")
    loss = values.get("loss", "auto")
    if loss != "auto" and loss not in LOSSES[predictor]:
        yield (f"Hyperparameter 'loss' {loss!r} cannot be used with predictor_type "
               f"{predictor!r}; use 'auto' or one of {', '.join(LOSSES[predictor])}.")
    tuning = values.get("_tuning_objective_metric")
    if tuning and tuning != "train:objective_loss":
        metric = tuning.split(":", 1)[1]
        if metric not in METRIC_NAMES[predictor]:
            yield (f"Objective metric {tuning!r} is not computed for predictor_type "
                   f"{predictor!r}.")


SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File", "FastFile", "Pipe"),
                     checks=(_check,), supports_distributed_training=True,
                     trains_across_hosts=True)
