"""Training for the SageMaker XGBoost algorithm, following the training container contract.

``train(env)`` is the I/O: validate the job's hyperparameters and channels against
:data:`~opensage.algorithms.xgboost.spec.SPEC`, read the channels, resume from the latest
``xgboost-checkpoint.<round>``, train, save ``model/xgboost-model`` with ``Booster.save_model``.
``fit`` is the training itself, on DMatrix objects. Per round it prints the container's line,
``[<round>]\\ttrain-rmse:0.12345\\tvalidation-rmse:0.23456`` (CloudWatch shows the tab as
``#011``, which is what the metric regexes match).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.collective import Collective, joined, own_rows
from opensage.algorithms.contract import PeerFailure, TrainingEnv, UserError
from opensage.algorithms.xgboost.spec import (
    CHECKPOINT_PREFIX,
    CONTAINER_METRICS,
    MODEL_FILENAME,
    SPEC,
    metric_direction,
)
from opensage.data import LabeledData, data_files, read_labeled

if TYPE_CHECKING:
    import xgboost  # for annotations; the module itself is imported on use

log = logging.getLogger("opensage.algorithms.xgboost")

# Hyperparameters the container consumes itself; never passed to XGBoost.
CONTAINER_ONLY = frozenset({
    "num_round", "csv_weights", "early_stopping_rounds", "save_model_on_termination",
    "_tuning_objective_metric", "_kfold", "_num_cv_round", "use_dask_gpu_training",
    "eval_metric",
})
# Accepted for compatibility with the 1.x containers; current XGBoost has no such parameter.
RETIRED = frozenset({"silent", "predictor", "dsplit", "lambda_bias",
                     "single_precision_histogram", "deterministic_histogram",
                     "prob_buffer_row"})
KEEP_CHECKPOINTS = 5


def _import_xgboost() -> Any:
    try:
        import xgboost
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("the xgboost algorithm needs XGBoost: install opensage with the "
                           "'algorithms' extra (pip install 'opensage[algorithms]')") from e
    return xgboost


# ------------------------------------------------------------------------------- parameters


def xgboost_params(hps: Mapping[str, Any], nthread: int | None) -> dict[str, Any]:
    """XGBoost's ``params`` from typed hyperparameters (container-only and retired ones out)."""
    params: dict[str, Any] = {}
    for name, value in hps.items():
        if name in CONTAINER_ONLY:
            continue
        if name in RETIRED:
            log.info("Hyperparameter %s is not used by this XGBoost version; ignored.", name)
            continue
        if name == "monotone_constraints":
            value = "(" + ",".join(map(str, value)) + ")"
        elif name == "interaction_constraints":
            value = "[" + ",".join("[" + ",".join(map(str, g)) + "]" for g in value) + "]"
        elif name == "updater":
            value = ",".join(value)
        elif name == "tree_method" and value == "gpu_hist":
            log.warning("tree_method gpu_hist: no GPU here, training with 'hist' on the CPU.")
            value = "hist"
        elif name == "objective" and value == "reg:linear":
            value = "reg:squarederror"  # the same objective under its current name
        params[name] = value
    if nthread is not None and "nthread" not in params:
        params["nthread"] = nthread
    builtin, _custom = split_metrics(hps)
    if builtin:
        params["eval_metric"] = builtin
    return params


def requested_metrics(hps: Mapping[str, Any]) -> list[str]:
    """``eval_metric`` in the order given, plus the tuning objective's metric."""
    metrics = list(dict.fromkeys(hps.get("eval_metric", ())))
    tuning = hps.get("_tuning_objective_metric")
    if tuning:
        name = tuning.split(":", 1)[1]
        if name not in metrics:
            metrics.append(name)
    return metrics


def split_metrics(hps: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(metrics XGBoost computes, metrics the container computes)."""
    metrics = requested_metrics(hps)
    return ([m for m in metrics if m not in CONTAINER_METRICS],
            [m for m in metrics if m in CONTAINER_METRICS])


def early_stopping_metric(hps: Mapping[str, Any]) -> str | None:
    """The metric early stopping watches: the tuning objective's, else the last eval_metric,
    else None (XGBoost's last metric)."""
    tuning = hps.get("_tuning_objective_metric")
    if tuning:
        return str(tuning.split(":", 1)[1])
    metrics = list(hps.get("eval_metric", ()))
    return metrics[-1] if metrics else None


# -------------------------------------------------------------------- container-side metrics


def _predicted_labels(preds: NDArray[Any]) -> NDArray[Any]:
    labels: NDArray[Any] = (np.argmax(preds, axis=1).astype(np.float64) if preds.ndim == 2
                            else np.rint(preds))
    return labels


def _ratio(num: Any, den: Any) -> Any:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def _per_class(preds: NDArray[Any], labels: NDArray[Any]) -> tuple[NDArray[Any], ...]:
    """(true positives, predicted, actual) counts per class seen in labels or predictions."""
    predicted = _predicted_labels(preds)
    n = len(labels)
    _, inverse = np.unique(np.concatenate([labels, predicted]), return_inverse=True)
    true_i, pred_i = inverse[:n], inverse[n:]
    k = int(inverse.max()) + 1 if n else 0
    tp = np.bincount(true_i[true_i == pred_i], minlength=k)
    return tp, np.bincount(pred_i, minlength=k), np.bincount(true_i, minlength=k)


def _positive(preds: NDArray[Any], labels: NDArray[Any]) -> tuple[float, float, float]:
    """(true positives, predicted positives, actual positives) for class 1."""
    predicted = _predicted_labels(preds)
    tp = float(np.sum((predicted == 1) & (labels == 1)))
    return tp, float(np.sum(predicted == 1)), float(np.sum(labels == 1))


def _accuracy(p: NDArray[Any], y: NDArray[Any]) -> float:
    return float(np.mean(_predicted_labels(p) == y))


def _balanced_accuracy(p: NDArray[Any], y: NDArray[Any]) -> float:
    tp, _, actual = _per_class(p, y)
    return float(np.mean(_ratio(tp[actual > 0], actual[actual > 0])))


def _f1_macro(p: NDArray[Any], y: NDArray[Any]) -> float:
    tp, predicted, actual = _per_class(p, y)
    return float(np.mean(_ratio(2 * tp, predicted + actual)))


def _precision_macro(p: NDArray[Any], y: NDArray[Any]) -> float:
    tp, predicted, _ = _per_class(p, y)
    return float(np.mean(_ratio(tp, predicted)))


def _recall_macro(p: NDArray[Any], y: NDArray[Any]) -> float:
    tp, _, actual = _per_class(p, y)
    return float(np.mean(_ratio(tp, actual)))


def _f1_binary(p: NDArray[Any], y: NDArray[Any]) -> float:
    tp, predicted, actual = _positive(p, y)
    return float(_ratio(2 * tp, predicted + actual))


def _precision(p: NDArray[Any], y: NDArray[Any]) -> float:
    tp, predicted, _ = _positive(p, y)
    return float(_ratio(tp, predicted))


def _recall(p: NDArray[Any], y: NDArray[Any]) -> float:
    tp, _, actual = _positive(p, y)
    return float(_ratio(tp, actual))


def _mse(p: NDArray[Any], y: NDArray[Any]) -> float:
    return float(np.mean((y - p.reshape(y.shape)) ** 2))


def _r2(p: NDArray[Any], y: NDArray[Any]) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - p.reshape(y.shape)) ** 2)) / total if total else 0.0


# The container computes these from predictions ("accuracy", "f1", "mse", ...): f1 is macro,
# precision/recall/f1_binary are for the positive class 1, micro averages equal accuracy.
CUSTOM_METRICS: dict[str, Callable[[NDArray[Any], NDArray[Any]], float]] = {
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "f1": _f1_macro,
    "f1_macro": _f1_macro,
    "f1_binary": _f1_binary,
    "precision": _precision,
    "recall": _recall,
    "precision_macro": _precision_macro,
    "recall_macro": _recall_macro,
    "precision_micro": _accuracy,
    "recall_micro": _accuracy,
    "mse": _mse,
    "r2": _r2,
}


def custom_metric(names: Sequence[str]) -> Callable[[NDArray[Any], Any], list[tuple[str, float]]]:
    """An XGBoost ``custom_metric`` that computes the container metrics ``names``."""
    chosen = [(name, CUSTOM_METRICS[name]) for name in names]

    def evaluate(preds: NDArray[Any], dmatrix: Any) -> list[tuple[str, float]]:
        labels = np.asarray(dmatrix.get_label(), dtype=np.float64)
        values = np.asarray(preds, dtype=np.float64)
        return [(name, fn(values, labels)) for name, fn in chosen]

    return evaluate


# -------------------------------------------------------------------------------- callbacks


def _atomic_save(booster: Any, path: Path) -> None:
    """``booster.save_model`` to ``path`` via a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".ubj")
    os.close(fd)
    try:
        booster.save_model(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def make_callbacks(xgb: Any) -> dict[str, type]:
    """Callback classes, built once XGBoost is imported (they subclass its base)."""
    base = xgb.callback.TrainingCallback

    class LogEvaluation(base):  # type: ignore[misc, valid-type]
        """Print ``[round]\\t<data>-<metric>:<value>...`` each round, as the container does."""

        def __init__(self, start_round: int = 0, stream: Any = None) -> None:
            super().__init__()
            self.start_round = start_round
            self.stream = stream

        def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Any]) -> bool:
            parts = [f"[{self.start_round + epoch}]"]
            for data, metrics in evals_log.items():
                for metric, scores in metrics.items():
                    score = scores[-1]
                    if isinstance(score, tuple):
                        score = score[0]
                    parts.append(f"{data}-{metric}:{score:.5f}")
            print("\t".join(parts), file=self.stream or sys.stdout, flush=True)
            return False

    class SaveCheckpoints(base):  # type: ignore[misc, valid-type]
        """Save ``xgboost-checkpoint.<round>`` every ``interval`` rounds, keep the last few."""

        def __init__(self, directory: Path, start_round: int = 0, interval: int = 1,
                     keep: int = KEEP_CHECKPOINTS) -> None:
            super().__init__()
            self.directory = directory
            self.start_round = start_round
            self.interval = max(1, interval)
            self.keep = keep

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            round_ = self.start_round + epoch
            if (round_ + 1) % self.interval == 0:
                _atomic_save(model, self.directory / f"{CHECKPOINT_PREFIX}.{round_}")
                self._prune()
            return False

        def _prune(self) -> None:
            rounds = sorted(checkpoint_rounds(self.directory))
            for old in rounds[: -self.keep]:
                path = self.directory / f"{CHECKPOINT_PREFIX}.{old}"
                uploading = Path(f"{path}.sagemaker-uploading")
                uploaded = Path(f"{path}.sagemaker-uploaded")
                if uploading.exists() and not uploaded.exists():
                    continue  # still being uploaded: try again after the next round
                path.unlink(missing_ok=True)

    class SaveModel(base):  # type: ignore[misc, valid-type]
        """Keep ``model/xgboost-model`` current after each round (save_model_on_termination)."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            _atomic_save(model, self.path)
            return False

    return {"LogEvaluation": LogEvaluation, "SaveCheckpoints": SaveCheckpoints,
            "SaveModel": SaveModel}


_CHECKPOINT = re.compile(rf"{re.escape(CHECKPOINT_PREFIX)}\.(\d+)")


def checkpoint_rounds(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return [int(m.group(1)) for p in directory.iterdir()
            if (m := _CHECKPOINT.fullmatch(p.name))]


def load_checkpoint(xgb: Any, directory: Path | None) -> tuple[Any, int]:
    """(booster, rounds done) from the newest loadable ``xgboost-checkpoint.<round>``."""
    if directory is None:
        return None, 0
    for round_ in sorted(checkpoint_rounds(directory), reverse=True):
        path = directory / f"{CHECKPOINT_PREFIX}.{round_}"
        try:
            booster = xgb.Booster()
            booster.load_model(bytearray(path.read_bytes()))  # UBJ or JSON, detected
        except (xgb.core.XGBoostError, OSError):
            log.warning("Checkpoint %s cannot be loaded; trying an older one.", path.name)
            continue
        return booster, round_ + 1
    return None, 0


# ------------------------------------------------------------------------------------ train


def to_dmatrix(xgb: Any, data: LabeledData, nthread: int | None = None,
               num_features: int | None = None) -> xgboost.DMatrix:
    features = data.features
    if num_features is not None and hasattr(features, "tocsr") and \
            features.shape[1] < num_features:
        features = features.copy()
        features.resize((features.shape[0], num_features))
    kwargs: dict[str, Any] = {"label": data.labels, "weight": data.weights}
    if data.qid is not None:
        kwargs["qid"] = data.qid
    if nthread is not None:
        kwargs["nthread"] = nthread
    matrix: xgboost.DMatrix = xgb.DMatrix(features, **kwargs)
    return matrix


def fit(params: Mapping[str, Any], dtrain: xgboost.DMatrix, dvalidation: xgboost.DMatrix | None,
        num_round: int, *, early_stopping_rounds: int | None = None,
        stopping_metric: str | None = None, custom_metrics: Sequence[str] = (),
        xgb_model: Any = None, start_round: int = 0, checkpoint_dir: Path | None = None,
        model_path_each_round: Path | None = None, log_rounds: bool = True) -> xgboost.Booster:
    """Train ``num_round - start_round`` more rounds, printing each round's metrics (not on
    the other hosts of a distributed job: their metrics are algo-1's)."""
    xgb = _import_xgboost()
    cbs = make_callbacks(xgb)
    callbacks: list[Any] = [cbs["LogEvaluation"](start_round)] if log_rounds else []
    evals = [(dtrain, "train")]
    if dvalidation is not None:
        evals.append((dvalidation, "validation"))
        if early_stopping_rounds:
            callbacks.append(xgb.callback.EarlyStopping(
                rounds=early_stopping_rounds, data_name="validation",
                metric_name=stopping_metric,
                maximize=(metric_direction(stopping_metric) == "Maximize"
                          if stopping_metric else None),
                save_best=params.get("booster") != "gblinear"))
    if checkpoint_dir is not None:
        callbacks.append(cbs["SaveCheckpoints"](checkpoint_dir, start_round))
    if model_path_each_round is not None:
        callbacks.append(cbs["SaveModel"](model_path_each_round))
    booster: xgboost.Booster = xgb.train(
        dict(params), dtrain, num_boost_round=num_round - start_round, evals=evals,
        verbose_eval=False, callbacks=callbacks, xgb_model=xgb_model,
        custom_metric=custom_metric(custom_metrics) if custom_metrics else None)
    return booster


def _read_channel(env: TrainingEnv, name: str, data_format: str,
                  csv_weights: bool) -> LabeledData:
    location = env.channel_data(name)
    if not location.exists() or not data_files(location):
        raise UserError(f"No data in the {name} channel (input/data/{name}).")
    options = {"weight_column": csv_weights} if data_format == "csv" else {}
    return read_labeled(location, data_format, **options)


def _xgboost_message(error: Exception) -> str:
    """XGBoost's own reason, without its timestamp, source location and stack trace."""
    text = str(error).split("Stack trace:")[0]
    text = re.sub(r"\[\d\d:\d\d:\d\d\] [^\s]+:\d+: ", "", text)
    text = re.sub(r"Check failed: [^:]+: ", "", text)
    return " ".join(text.split())


def _train_on(xgb: Any, env: TrainingEnv, hps: Mapping[str, Any], train_data: LabeledData,
              validation_data: LabeledData | None, nthread: int | None,
              rank: int = 0) -> Any:
    width = max(train_data.num_features,
                validation_data.num_features if validation_data is not None else 0)
    dtrain = to_dmatrix(xgb, train_data, nthread, width)
    dvalidation = (to_dmatrix(xgb, validation_data, nthread, width)
                   if validation_data is not None else None)
    log.info("Train matrix has %d rows and %d columns", dtrain.num_row(), dtrain.num_col())
    if dvalidation is not None:
        log.info("Validation matrix has %d rows", dvalidation.num_row())

    early_stopping_rounds = hps.get("early_stopping_rounds")
    if early_stopping_rounds and dvalidation is None:
        log.warning("early_stopping_rounds needs a validation channel; training all rounds.")
    num_round = hps["num_round"]
    checkpoint_dir = env.checkpoint_dir
    booster, start_round = load_checkpoint(xgb, checkpoint_dir)
    if booster is not None:
        log.info("Resuming from checkpoint %s.%d", CHECKPOINT_PREFIX, start_round - 1)
    if start_round >= num_round:
        return booster
    _builtin, custom = split_metrics(hps)
    save_each_round = hps.get("save_model_on_termination")
    return fit(xgboost_params(hps, nthread), dtrain, dvalidation, num_round,
               early_stopping_rounds=early_stopping_rounds,
               stopping_metric=early_stopping_metric(hps), custom_metrics=custom,
               xgb_model=booster, start_round=start_round, checkpoint_dir=checkpoint_dir,
               model_path_each_round=env.model_dir / MODEL_FILENAME if save_each_round else None,
               log_rounds=rank == 0)


def _own_rows(env: TrainingEnv, data: LabeledData, group: Collective) -> LabeledData:
    """This host's rows of the train channel (:func:`own_rows`); ranking data (query groups)
    is kept whole."""
    rows = own_rows(env, "train", group)
    if data.qid is not None or rows == slice(None):
        return data
    return LabeledData(data.features[rows], data.labels[rows],
                       None if data.weights is None else data.weights[rows], None)


def train(env: TrainingEnv) -> None:
    """Run the training job laid out at ``env`` (the container's ``train`` command)."""
    xgb = _import_xgboost()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[%(asctime)s:%(levelname)s] %(message)s",
                        datefmt="%Y-%m-%d:%H:%M:%S")
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config)
    data_format = formats["train"]  # the container reads validation in train's format too
    csv_weights = hps.get("csv_weights", 0) == 1
    sm_cpus = env.environ.get("SM_NUM_CPUS")
    nthread = hps.get("nthread") or (env.num_cpus if sm_cpus else None)

    train_data = _read_channel(env, "train", data_format, csv_weights)
    validation_data = None
    if "validation" in env.input_data_config:
        validation_data = _read_channel(env, "validation", data_format, csv_weights)
        if data_format == "csv" and validation_data.num_features != train_data.num_features:
            raise UserError(f"The validation data has {validation_data.num_features} feature "
                            f"columns but the train data has {train_data.num_features}.")
    try:
        # A job of several hosts trains one model, as SageMaker's container does with
        # Rabit: XGBoost allreduces the histograms and the evaluation metrics through the
        # hosts' collective (opensage.algorithms.collective).
        with joined(env) as group:
            train_data = _own_rows(env, train_data, group)
            booster = _train_on(xgb, env, hps, train_data, validation_data, nthread,
                                group.rank)
    except xgb.core.XGBoostError as e:
        if len(env.hosts) > 1 and "/collective/" in str(e):  # another host ended first
            raise PeerFailure("another host of the job ended, breaking the hosts' collective "
                              f"(its log says why): {_xgboost_message(e)[:300]}") from None
        raise UserError(f"XGBoost could not train on this input: {_xgboost_message(e)}") \
            from e
    model_path = env.model_dir / MODEL_FILENAME
    _atomic_save(booster, model_path)
    log.info("Saved the model to %s", model_path)


__all__ = ["CUSTOM_METRICS", "early_stopping_metric", "fit", "load_checkpoint",
           "split_metrics", "train", "xgboost_params"]
