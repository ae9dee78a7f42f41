"""Training for the k-means built-in: read the channels, fit, score, save ``model_algo-1``.

Logs the containers' metric lines: ``#quality_metric: host=algo-1, train msd <loss>=...``
and, with a test channel, ``test msd`` / ``test ssd`` (as ``eval_metrics`` asks).
"""

from __future__ import annotations

import numpy as np

from opensage.algorithms.contract import TrainingEnv
from opensage.algorithms.firstparty.training import (
    as_dense,
    log_metric,
    read_channel,
    save_model,
)
from opensage.algorithms.kmeans.clustering import assign, fit
from opensage.algorithms.kmeans.spec import NAME, SPEC


def train(env: TrainingEnv) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    dim = hps["feature_dim"]
    data = read_channel(env, "train", formats["train"], default_label_size=0, feature_dim=dim)
    assert data is not None
    x = as_dense(data.features)
    k = hps["k"]
    print(f"Training k-means: {len(x)} records, feature_dim {dim}, k {k}.", flush=True)
    centers = fit(
        x, k, epochs=hps["epochs"], batch_size=hps["mini_batch_size"],
        extra_center_factor=None if hps["extra_center_factor"] == "auto"
        else hps["extra_center_factor"],
        init=hps["init_method"], local_init=hps["local_lloyd_init_method"],
        local_max_iter=hps["local_lloyd_max_iter"], local_tol=hps["local_lloyd_tol"],
        local_trials=None if hps["local_lloyd_num_trials"] == "auto"
        else hps["local_lloyd_num_trials"],
        half_life=hps["half_life_time_size"])
    _, train_dist = assign(x, centers)
    log_metric("train", "msd", float(train_dist.mean()), loss=True)
    test = read_channel(env, "test", formats.get("test", ""), default_label_size=0,
                        feature_dim=dim, required=False)
    if test is not None:
        tx = as_dense(test.features)
        _, dist = assign(tx, centers)
        for metric in hps["eval_metrics"]:
            value = dist.mean() if metric == "msd" else dist.sum()
            log_metric("test", metric, float(value), loss=True)
    save_model(env.model_dir, {"centers": centers.astype(np.float32)},
               {"algorithm": NAME, "k": k, "feature_dim": dim})
