"""Training for the linear-learner built-in: read the channels, train ``num_models`` models,
pick the best on validation (else train) data, calibrate its threshold, score, save.

Logs the container's metric lines: per epoch ``#quality_metric: host=algo-1, epoch=N, train
<objective>_objective <loss>=...`` (and ``validation <objective>_objective`` with a validation
channel), then ``validation <metric>`` / ``test <metric>`` for the final model.

With ``InstanceCount`` > 1 the hosts train the models together, data-parallel (``learner``'s
docstring, :mod:`opensage.algorithms.collective`), each on its shard of a ShardedByS3Key
train channel (every n-th row of a FullyReplicated one). A sharded validation or test channel
is gathered whole on every host (it picks the model and is scored as one host would);
algo-1 logs the metrics and saves the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from opensage.algorithms.collective import Collective, is_sharded, joined, own_rows
from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.firstparty.training import (
    check_labels,
    log_metric,
    read_channel,
    require_labels,
    save_model,
)
from opensage.algorithms.linear_learner.learner import (
    F64,
    OBJECTIVE_NAMES,
    Config,
    Features,
    evaluate,
    fit,
    is_sparse,
    select,
)
from opensage.algorithms.linear_learner.spec import DEFAULT_LOSS, METRIC_NAMES, NAME, SPEC


def config(hps: dict[str, Any]) -> Config:
    predictor = hps["predictor_type"]
    loss = DEFAULT_LOSS[predictor] if hps["loss"] == "auto" else hps["loss"]
    optimizer = "adam" if hps["optimizer"] == "auto" else hps["optimizer"]
    return Config(
        predictor_type=predictor, loss=loss, num_classes=hps.get("num_classes") or 2,
        epochs=hps["epochs"], mini_batch_size=hps["mini_batch_size"],
        num_models=hps["num_models"], optimizer=optimizer,
        learning_rate=hps["learning_rate"], wd=hps["wd"], l1=hps["l1"],
        momentum=hps["momentum"], beta_1=hps["beta_1"], beta_2=hps["beta_2"],
        bias_lr_mult=hps["bias_lr_mult"], bias_wd_mult=hps["bias_wd_mult"],
        use_bias=hps["use_bias"], use_lr_scheduler=hps["use_lr_scheduler"],
        lr_scheduler_step=hps["lr_scheduler_step"],
        lr_scheduler_factor=hps["lr_scheduler_factor"],
        lr_scheduler_minimum_lr=hps["lr_scheduler_minimum_lr"],
        init_method=hps["init_method"], init_scale=hps["init_scale"],
        init_sigma=hps["init_sigma"], init_bias=hps["init_bias"],
        normalize_data=hps["normalize_data"], normalize_label=hps["normalize_label"],
        unbias_data=hps["unbias_data"], unbias_label=hps["unbias_label"],
        num_point_for_scaler=hps["num_point_for_scaler"],
        positive_example_weight_mult=hps["positive_example_weight_mult"],
        balance_multiclass_weights=hps["balance_multiclass_weights"],
        margin=hps["margin"], quantile=hps["quantile"],
        loss_insensitivity=hps["loss_insensitivity"], huber_delta=hps["huber_delta"],
        early_stopping_patience=hps["early_stopping_patience"],
        early_stopping_tolerance=hps["early_stopping_tolerance"],
        selection_criterion=hps["binary_classifier_model_selection_criteria"],
        target_recall=hps["target_recall"], target_precision=hps["target_precision"],
        f_beta=hps["f_beta"], num_calibration_samples=hps["num_calibration_samples"],
        accuracy_top_k=hps["accuracy_top_k"])


def _features(features: Features, channel: str) -> Features:
    if is_sparse(features):
        features = features.tocsr().astype(np.float32)
    else:
        features = np.ascontiguousarray(features, dtype=np.float32)
    return features


def check_target(labels: npt.NDArray[Any], channel: str, cfg: Config) -> F64:
    """Labels valid for the predictor type, or a UserError naming the first bad record."""
    if cfg.predictor_type == "binary_classifier":
        check_labels(labels, channel, allowed="0 or 1 for predictor_type binary_classifier",
                     ok=(labels == 0) | (labels == 1))
    elif cfg.predictor_type == "multiclass_classifier":
        check_labels(labels, channel,
                     allowed=f"integers in [0, {cfg.num_classes - 1}] for predictor_type "
                             f"multiclass_classifier with num_classes {cfg.num_classes}",
                     ok=(labels == np.round(labels)) & (labels >= 0)
                     & (labels < cfg.num_classes))
    return labels.astype(np.float64)


def _channel(env: TrainingEnv, name: str, formats: dict[str, str], dim: int | None,
             cfg: Config, required: bool = False) -> tuple[Features, F64] | None:
    data = read_channel(env, name, formats.get(name, ""), default_label_size=1,
                        feature_dim=dim, required=required)
    if data is None:
        return None
    x = _features(data.features, name)
    y = check_target(require_labels(data, name), name, cfg)
    if len(y) != x.shape[0]:
        raise UserError(f"The {name} channel has {x.shape[0]} records but {len(y)} labels.")
    return x, y


def _whole(env: TrainingEnv, name: str, data: tuple[Features, F64] | None,
           group: Collective) -> tuple[Features, F64] | None:
    """A sharded channel's rows from every host (the others: as read)."""
    if data is None or group.size == 1 or not is_sharded(env, name):
        return data
    x, y = data
    rows = group.gather_rows(np.column_stack([x.toarray() if is_sparse(x) else x, y]))
    features = rows[:, :-1].astype(np.float32)
    if is_sparse(x):
        import scipy.sparse

        return scipy.sparse.csr_matrix(features), rows[:, -1]
    return features, rows[:, -1]


def train(env: TrainingEnv) -> None:
    with joined(env) as group:
        _train(env, group)


def _train(env: TrainingEnv, group: Collective) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    dim = None if hps["feature_dim"] == "auto" else hps["feature_dim"]
    cfg = config(hps)
    if "_tuning_objective_metric" in hps:
        cfg.num_models = 1  # SageMaker turns the internal tuning off under a tuning job
    objective = OBJECTIVE_NAMES[cfg.loss]
    if group.is_root:
        cfg.log = lambda epoch, channel, value: log_metric(
            channel, f"{objective}_objective", value, loss=True, epoch=epoch)
    train_data = _channel(env, "train", formats, dim, cfg, required=True)
    assert train_data is not None
    rows = own_rows(env, "train", group)
    x, y = train_data[0][rows], train_data[1][rows]
    dim = int(x.shape[1])
    validation = _whole(env, "validation", _channel(env, "validation", formats, dim, cfg),
                        group)
    test = _whole(env, "test", _channel(env, "test", formats, dim, cfg), group)
    host = f", host {group.rank + 1} of {group.size}" if group.size > 1 else ""
    print(f"Training linear-learner ({cfg.predictor_type}, loss {cfg.loss}, optimizer "
          f"{cfg.optimizer}): {x.shape[0]} records, feature_dim {dim}{host}.", flush=True)
    fitted = fit(x, y, cfg, validation=validation, group=group)
    try:
        chosen, threshold = (select(fitted, *validation) if validation is not None
                             else select(fitted, x, y, group))
    except FloatingPointError:
        raise UserError("Training diverged for every model (the loss became infinite); "
                        "lower learning_rate or normalize the data.") from None
    model = fitted.model(chosen, threshold)
    print(f"Trained {fitted.pop.size} models for {fitted.epochs_run} epochs; model {chosen} "
          f"selected ({model.hyperparameters}), threshold {threshold:.6g}.", flush=True)
    if not group.is_root:
        return  # algo-1 reports the metrics and saves the model (the one the runner uploads)
    names = METRIC_NAMES[cfg.predictor_type]
    for channel, data in (("validation", validation), ("test", test)):
        if data is None:
            continue
        for metric, value in evaluate(model, data[0], data[1], cfg).items():
            log_metric(channel, metric, value, loss=names[metric] == "Minimize")
    save_model(env.model_dir, {"weights": model.weights.astype(np.float32),
                               "bias": model.bias.astype(np.float32)},
               {"algorithm": NAME, "predictor_type": cfg.predictor_type, "loss": cfg.loss,
                "feature_dim": dim, "num_classes": cfg.num_classes,
                "threshold": threshold, "selected": model.hyperparameters})
