"""The SageMaker XGBoost algorithm (``sagemaker-xgboost:1.7-1``, algorithm mode), declared once.

Names, ranges and cross-checks follow the 1.7-1 container's own hyperparameter validation;
where that container rejected valid XGBoost input by accident (monotone constraints without
an explicit tree_method, feature index 0 in interaction constraints) this spec accepts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from opensage.algorithms.channels import ChannelSpec
from opensage.algorithms.errors import SpecError
from opensage.algorithms.params import (
    INT32_MAX,
    INT32_MIN,
    Bool,
    Choice,
    Float,
    Int,
    IntList,
    Param,
    Rejected,
    StrList,
)
from opensage.algorithms.spec import AlgorithmSpec, MetricDefinition

NAME = "xgboost"
MODEL_FILENAME = "xgboost-model"
CHECKPOINT_PREFIX = "xgboost-checkpoint"

# Metrics as the container knows them (XGBoost's own plus the ones the container computes).
MAXIMIZE_METRICS = (
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map",
    "ndcg", "precision", "precision_macro", "precision_micro", "r2", "recall", "recall_macro",
    "recall_micro",
)
MINIMIZE_METRICS = (
    "aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik",
    "interval-regression-accuracy", "logloss", "mae", "mape", "merror", "mlogloss", "mphe",
    "mse", "poisson-nloglik", "rmse", "rmsle", "tweedie-nloglik",
)
# Computed by the container from predictions rather than by XGBoost.
CONTAINER_METRICS = frozenset({
    "accuracy", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "mse", "precision",
    "precision_macro", "precision_micro", "r2", "recall", "recall_macro", "recall_micro",
})
THRESHOLD_METRICS = ("error", "ndcg", "map")  # error@0.7, ndcg@5, map@10

OBJECTIVES = (
    "binary:hinge", "binary:logistic", "binary:logitraw", "count:poisson", "multi:softmax",
    "multi:softprob", "rank:map", "rank:ndcg", "rank:pairwise", "reg:absoluteerror",
    "reg:gamma", "reg:linear", "reg:logistic", "reg:pseudohubererror", "reg:squarederror",
    "reg:squaredlogerror", "reg:tweedie", "survival:aft", "survival:cox",
)
TREE_UPDATERS = (
    "grow_colmaker", "distcol", "grow_histmaker", "grow_local_histmaker", "grow_skmaker",
    "grow_quantile_histmaker", "sync", "refresh", "prune",
)
TREE_GROW_UPDATERS = frozenset({"grow_colmaker", "distcol", "grow_histmaker",
                                "grow_local_histmaker", "grow_skmaker",
                                "grow_quantile_histmaker"})
LINEAR_UPDATERS = ("shotgun", "coord_descent")

# Image tags (sagemaker-xgboost:<version>-<build>[-cpu-py3]) this algorithm answers for.
SUPPORTED_VERSIONS = ("0.90-1", "0.90-2", "1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1",
                      "1.7-1")
LEGACY_TAGS = ("1", "latest", "0.72")  # the old `xgboost` repository
_TAG = re.compile(r"(?P<major>\d+)\.(?P<minor>\d+)-(?P<build>\d+)(?:-[A-Za-z0-9.\-]+)?")


def metric_direction(metric: str) -> str:
    """"Maximize" or "Minimize" for a metric name (``ndcg@5`` counts as ``ndcg``)."""
    base = metric.split("@")[0].rstrip("-")
    return "Maximize" if base in MAXIMIZE_METRICS else "Minimize"


class EvalMetric(Param):
    """One ``eval_metric`` entry: a known metric, or error/ndcg/map with an ``@t`` threshold."""

    type_name = "FreeText"

    def _parse(self, raw: str) -> str:
        if raw in MAXIMIZE_METRICS or raw in MINIMIZE_METRICS:
            return raw
        if raw in ("ndcg-", "map-"):
            return raw
        if "@" in raw:
            base, _, threshold = raw.partition("@")
            if base not in THRESHOLD_METRICS:
                raise Rejected(f"only {', '.join(THRESHOLD_METRICS)} take an @ threshold")
            number = threshold[:-1] if base != "error" and threshold.endswith("-") else threshold
            try:
                float(number)
            except ValueError:
                raise Rejected(f"the threshold in '{raw}' must be a number") from None
            return raw
        raise Rejected(f"unknown metric {raw!r}")

    def accepted(self) -> str:
        return "an XGBoost or SageMaker evaluation metric"

    def invalid_examples(self) -> list[str]:
        return ["nope", "rmse@2", "error@x"]

    def valid_example(self) -> str:
        return "rmse"


def _metric_regex(channel: str, metric: str) -> str:
    number = r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
    return rf".*\[[0-9]+\].*#011{channel}-{metric}:({number}).*"


def _metrics() -> list[MetricDefinition]:
    out = []
    for channel in ("train", "validation"):
        for metric in sorted(MAXIMIZE_METRICS + MINIMIZE_METRICS):
            direction = metric_direction(metric) if channel == "validation" else None
            out.append(MetricDefinition(f"{channel}:{metric}", _metric_regex(channel, metric),
                                        direction))  # type: ignore[arg-type]
    return out


METRICS = tuple(_metrics())
VALIDATION_METRIC_NAMES = tuple(m.name for m in METRICS if m.name.startswith("validation:"))

HYPERPARAMETERS: dict[str, Param] = {
    "num_round": Int(min=1, required=True, tunable=True,
                     description="Number of boosting rounds."),
    "num_class": Int(min=2, description="Number of classes (multi:softmax/softprob)."),
    "csv_weights": Int(0, 1, default=0,
                       description="1: the second CSV column is the instance weight."),
    "early_stopping_rounds": Int(min=1, description="Stop when the validation metric has "
                                                    "not improved for this many rounds."),
    "booster": Choice(["gbtree", "gblinear", "dart"], default="gbtree"),
    "silent": Int(0, 1),
    "verbosity": Int(0, 3, default=1),
    "nthread": Int(min=1),
    "eta": Float(0, 1, default=0.3, tunable=True),
    "gamma": Float(min=0, default=0, tunable=True),
    "max_depth": Int(min=0, default=6, tunable=True),
    "min_child_weight": Float(min=0, default=1, tunable=True),
    "max_delta_step": Float(min=0, default=0, tunable=True),
    "subsample": Float(0, 1, closed="right", default=1, tunable=True),
    "colsample_bytree": Float(0, 1, closed="right", default=1, tunable=True),
    "colsample_bylevel": Float(0, 1, closed="right", default=1, tunable=True),
    "colsample_bynode": Float(0, 1, closed="right", default=1, tunable=True),
    "lambda": Float(min=0, default=1, tunable=True),
    "alpha": Float(min=0, default=0, tunable=True),
    "tree_method": Choice(["auto", "exact", "approx", "hist", "gpu_hist"], default="auto"),
    "sketch_eps": Float(0, 1, closed="neither", default=0.03),
    "scale_pos_weight": Float(min=0, closed="neither", default=1),
    "updater": StrList(Choice(TREE_UPDATERS + LINEAR_UPDATERS)),
    "dsplit": Choice(["row", "col"]),
    "refresh_leaf": Int(0, 1, default=1),
    "process_type": Choice(["default", "update"], default="default"),
    "grow_policy": Choice(["depthwise", "lossguide"], default="depthwise"),
    "max_leaves": Int(min=0, default=0),
    "max_bin": Int(min=0, default=256),
    "predictor": Choice(["auto", "cpu_predictor", "gpu_predictor"]),
    "monotone_constraints": IntList(-1, 1),
    "interaction_constraints": IntList(min=0, nested=True),
    "sample_type": Choice(["uniform", "weighted"], default="uniform"),
    "normalize_type": Choice(["tree", "forest"], default="tree"),
    "rate_drop": Float(0, 1, default=0),
    "one_drop": Int(0, 1, default=0),
    "skip_drop": Float(0, 1, default=0),
    "lambda_bias": Float(0, 1, default=0),
    "tweedie_variance_power": Float(1, 2, closed="neither", default=1.5),
    "objective": Choice(OBJECTIVES, default="reg:squarederror"),
    "base_score": Float(min=0, default=0.5),
    "eval_metric": StrList(EvalMetric(), description="Comma-separated evaluation metrics "
                                                     "(default according to objective)."),
    "seed": Int(INT32_MIN, INT32_MAX, closed="neither", default=0),
    "num_parallel_tree": Int(min=1, default=1),
    "save_model_on_termination": Bool(default=False),
    "aft_loss_distribution": Choice(["normal", "logistic", "extreme"]),
    "aft_loss_distribution_scale": Float(min=0),
    "deterministic_histogram": Bool(default=True),
    "single_precision_histogram": Bool(default=False),
    "sampling_method": Choice(["uniform", "gradient_based"]),
    "prob_buffer_row": Float(min=1, closed="neither"),
    "use_dask_gpu_training": Bool(default=False),
    "_tuning_objective_metric": Choice(VALIDATION_METRIC_NAMES),
    "_kfold": Int(min=2),
    "_num_cv_round": Int(min=1),
}

ALIASES = {"learning_rate": "eta", "min_split_loss": "gamma", "reg_lambda": "lambda",
           "reg_alpha": "alpha"}

_CSV = "csv"
_LIBSVM = "libsvm"
CONTENT_TYPES = {"text/csv": _CSV, "csv": _CSV, "text/libsvm": _LIBSVM, "libsvm": _LIBSVM,
                 "text/x-libsvm": _LIBSVM, "application/x-parquet": "parquet",
                 "application/x-recordio-protobuf": "recordio-protobuf"}
_INPUT_MODES = ("File", "FastFile", "Pipe")
# As in the container, the validation channel is read in the train channel's format.
CHANNELS = {
    "train": ChannelSpec(required=True, content_types=CONTENT_TYPES,
                         default_content_type="text/libsvm", parameters={"label_size": ("1",)},
                         input_modes=_INPUT_MODES, description="Training data"),
    "validation": ChannelSpec(required=False, content_types=CONTENT_TYPES,
                              default_content_type="text/libsvm",
                              parameters={"label_size": ("1",)}, input_modes=_INPUT_MODES,
                              description="Validation data (evaluation, early stopping)"),
}


# ------------------------------------------------------------------------------- cross-checks


def _check_objective(values: Mapping[str, Any], formats: Mapping[str, str]) -> Iterator[str]:
    objective = values.get("objective", "reg:squarederror")
    if objective.startswith("multi:") and "num_class" not in values:
        yield f"Hyperparameter 'num_class' is required with objective '{objective}'."
    metrics = set(values.get("eval_metric", ()))
    tuning = values.get("_tuning_objective_metric")
    if tuning:
        metrics.add(tuning.split(":", 1)[1])
    if "auc" in metrics and not objective.startswith(("binary:", "rank:")):
        yield (f"Metric 'auc' can only be used with classification (binary:) or ranking "
               f"(rank:) objectives, not '{objective}'.")
    if "aft-nloglik" in metrics and objective != "survival:aft":
        yield "Metric 'aft-nloglik' can only be used with objective 'survival:aft'."


def _check_tree_method(values: Mapping[str, Any], formats: Mapping[str, str]) -> Iterator[str]:
    method = values.get("tree_method")
    if method is None:
        return
    if "monotone_constraints" in values and method not in ("exact", "hist", "approx",
                                                           "gpu_hist"):
        yield ("monotone_constraints can be used only when tree_method is 'exact', 'hist' or "
               "'approx'.")
    if "interaction_constraints" in values and method not in ("exact", "hist", "approx",
                                                              "gpu_hist"):
        yield ("interaction_constraints can be used only when tree_method is 'exact', 'hist' "
               "or 'approx'.")


def _check_updater(values: Mapping[str, Any], formats: Mapping[str, str]) -> Iterator[str]:
    updater = values.get("updater")
    if not updater:
        return
    if values.get("booster") == "gblinear":
        if len(updater) != 1 or updater[0] not in LINEAR_UPDATERS:
            yield "With booster 'gblinear', updater must be one of 'shotgun', 'coord_descent'."
        return
    if values.get("process_type") == "update":
        if any(u not in ("refresh", "prune") for u in updater):
            yield "process_type 'update' can only be used with updaters 'refresh' and 'prune'."
        return
    linear = [u for u in updater if u in LINEAR_UPDATERS]
    if linear:
        yield (f"Updater '{linear[0]}' is for booster 'gblinear'; tree updaters are: "
               f"{', '.join(TREE_UPDATERS)}.")
    if sum(u in TREE_GROW_UPDATERS for u in updater) > 1:
        yield "Only one tree grow updater can be selected."


def _check_unsupported(values: Mapping[str, Any], formats: Mapping[str, str]) -> Iterator[str]:
    if "_kfold" in values or "_num_cv_round" in values:
        yield "Cross-validation training (_kfold, _num_cv_round) is not supported by opensage."
    if values.get("use_dask_gpu_training"):
        yield "use_dask_gpu_training is not supported by opensage (no GPU Dask training)."


SPEC = AlgorithmSpec(
    name=NAME,
    hyperparameters=HYPERPARAMETERS,
    channels=CHANNELS,
    metrics=METRICS,
    input_modes=_INPUT_MODES,
    aliases=ALIASES,
    checks=(_check_objective, _check_tree_method, _check_updater, _check_unsupported),
    supports_distributed_training=True,
    trains_across_hosts=True,
)


def check_image_tag(repository: str, tag: str | None) -> str:
    """The version an image tag names, or a SpecError saying which tags are supported."""
    if repository == "xgboost" and (tag is None or tag in LEGACY_TAGS):
        return tag or "latest"
    if tag is not None:
        match = _TAG.fullmatch(tag)
        if match:
            version = f"{match['major']}.{match['minor']}-{match['build']}"
            if version in SUPPORTED_VERSIONS or int(match["major"]) >= 2:
                return version
    shown = "latest" if tag is None else tag
    raise SpecError(
        f"Image tag '{shown}' of {repository} is not a supported XGBoost version; supported: "
        f"{', '.join(SUPPORTED_VERSIONS)} and 2.x and later (for example "
        f"{repository}:1.7-1).")
