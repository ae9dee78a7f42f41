"""Training for the factorization-machines built-in: read the channels (RecordIO-protobuf),
fit, score, save ``model_algo-1``.

Logs ``#quality_metric: host=algo-1, epoch=N, train <objective> <loss>=...`` per epoch, the
final ``train`` metrics and, with a test channel, ``test rmse`` (regressor) or ``test
binary_classification_accuracy`` / ``binary_classification_cross_entropy`` /
``binary_f_beta`` (binary classifier).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from opensage.algorithms.contract import TrainingEnv
from opensage.algorithms.factorization_machines.machine import Group, fit, scores
from opensage.algorithms.factorization_machines.spec import NAME, SPEC
from opensage.algorithms.firstparty.training import (
    check_labels,
    is_sparse,
    log_metric,
    read_channel,
    require_labels,
    save_model,
)

LOSS_METRICS = ("rmse", "binary_classification_cross_entropy")


def _group(hps: dict[str, Any], name: str) -> Group:
    return Group(lr=hps[f"{name}_lr"], wd=hps[f"{name}_wd"],
                 init_method=hps[f"{name}_init_method"],
                 init_sigma=hps[f"{name}_init_sigma"],
                 init_scale=hps.get(f"{name}_init_scale"),
                 init_value=hps.get(f"{name}_init_value"))


def _channel(env: TrainingEnv, name: str, fmt: str, dim: int, binary: bool,
             required: bool) -> tuple[sp.csr_matrix, NDArray[Any]] | None:
    data = read_channel(env, name, fmt, default_label_size=1, feature_dim=dim,
                        required=required)
    if data is None:
        return None
    x = data.features
    x = x.tocsr() if is_sparse(x) else sp.csr_matrix(np.asarray(x, dtype=np.float32))
    y = require_labels(data, name)
    if binary:
        check_labels(y, name, allowed="0 or 1 for predictor_type binary_classifier",
                     ok=(y == 0) | (y == 1))
    return x, np.asarray(y, dtype=np.float64)


def train(env: TrainingEnv) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    dim = hps["feature_dim"]
    binary = hps["predictor_type"] == "binary_classifier"
    loaded = _channel(env, "train", formats["train"], dim, binary, True)
    assert loaded is not None
    x, y = loaded
    objective = "binary_classification_cross_entropy_objective" if binary else "rmse_objective"
    print(f"Training factorization machine ({hps['predictor_type']}): {x.shape[0]} records, "
          f"feature_dim {dim}, {x.nnz} non-zeros, num_factors {hps['num_factors']}.",
          flush=True)

    def on_epoch(epoch: int, loss: float) -> None:
        log_metric("train", objective, loss if binary else float(np.sqrt(loss)), loss=True,
                   epoch=epoch)

    params = fit(x, y, num_factors=hps["num_factors"], binary=binary,
                 bias=_group(hps, "bias"), linear=_group(hps, "linear"),
                 factors=_group(hps, "factors"), epochs=hps["epochs"],
                 batch_size=hps["mini_batch_size"], eps=hps.get("eps"),
                 clip_gradient=hps.get("clip_gradient"), rescale_grad=hps.get("rescale_grad"),
                 on_epoch=on_epoch)
    for metric, value in scores(params, x, y, binary).items():
        log_metric("train", metric, value, loss=metric in LOSS_METRICS)
    test = _channel(env, "test", formats.get("test", ""), dim, binary, False)
    if test is not None:
        for metric, value in scores(params, test[0], test[1], binary).items():
            log_metric("test", metric, value, loss=metric in LOSS_METRICS)
    save_model(env.model_dir, {"w0": np.array([params.w0], dtype=np.float32),
                               "w": params.w.astype(np.float32),
                               "v": params.v.astype(np.float32)},
               {"algorithm": NAME, "predictor_type": hps["predictor_type"],
                "feature_dim": dim, "num_factors": hps["num_factors"]})
