"""Training for the k-means built-in: read the channels, fit, score, save ``model_algo-1``.

Logs the containers' metric lines: ``#quality_metric: host=algo-1, train msd <loss>=...``
and, with a test channel, ``test msd`` / ``test ssd`` (as ``eval_metrics`` asks).

With ``InstanceCount`` > 1 the hosts fit one model together (``clustering``'s docstring,
:mod:`opensage.algorithms.collective`), each on its shard of a ShardedByS3Key train channel
(every n-th row of a FullyReplicated one); the train metric sums over the hosts, as does the
test metric of a sharded test channel; algo-1 logs the metrics and saves the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.collective import LOCAL, Collective, is_sharded, joined, own_rows
from opensage.algorithms.contract import TrainingEnv
from opensage.algorithms.firstparty.training import (
    as_dense,
    log_metric,
    read_channel,
    save_model,
)
from opensage.algorithms.kmeans.clustering import assign, fit
from opensage.algorithms.kmeans.spec import NAME, SPEC


def _mean_and_sum(dist: NDArray[Any], group: Collective) -> tuple[float, float]:
    """(mean, sum) of the squared distances over this host's rows (or ``group``'s)."""
    total = group.sum(np.array([dist.sum(), len(dist)]))
    return float(total[0] / max(total[1], 1.0)), float(total[0])


def train(env: TrainingEnv) -> None:
    with joined(env) as group:
        _train(env, group)


def _train(env: TrainingEnv, group: Collective) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    dim = hps["feature_dim"]
    data = read_channel(env, "train", formats["train"], default_label_size=0, feature_dim=dim)
    assert data is not None
    x = as_dense(data.features)[own_rows(env, "train", group)]
    k = hps["k"]
    host = f", host {group.rank + 1} of {group.size}" if group.size > 1 else ""
    print(f"Training k-means: {len(x)} records, feature_dim {dim}, k {k}{host}.", flush=True)
    centers = fit(
        x, k, epochs=hps["epochs"], batch_size=hps["mini_batch_size"],
        extra_center_factor=None if hps["extra_center_factor"] == "auto"
        else hps["extra_center_factor"],
        init=hps["init_method"], local_init=hps["local_lloyd_init_method"],
        local_max_iter=hps["local_lloyd_max_iter"], local_tol=hps["local_lloyd_tol"],
        local_trials=None if hps["local_lloyd_num_trials"] == "auto"
        else hps["local_lloyd_num_trials"],
        half_life=hps["half_life_time_size"], group=group)
    _, train_dist = assign(x, centers)
    train_msd, _ = _mean_and_sum(train_dist, group)
    if group.is_root:
        log_metric("train", "msd", train_msd, loss=True)
    test = read_channel(env, "test", formats.get("test", ""), default_label_size=0,
                        feature_dim=dim, required=False)
    if test is not None:
        tx = as_dense(test.features)
        _, dist = assign(tx, centers)
        msd, ssd = _mean_and_sum(dist, group if is_sharded(env, "test") else LOCAL)
        for metric in hps["eval_metrics"]:
            if group.is_root:
                log_metric("test", metric, msd if metric == "msd" else ssd, loss=True)
    if not group.is_root:
        return  # algo-1 saves the model (the only host's model the runner uploads)
    save_model(env.model_dir, {"centers": centers.astype(np.float32)},
               {"algorithm": NAME, "k": k, "feature_dim": dim})
