"""Training for the Random Cut Forest built-in: sample, grow the trees, score, save
``model_algo-1``.

The train channel's scores give the anomaly threshold AWS uses (mean + 3 standard deviations,
the three-sigma rule). With a labelled test channel (label 1 = anomaly) the job logs
``test f1`` (the tuning objective) and, as ``eval_metrics`` asks, ``test accuracy`` and ``test
precision`` / ``test recall`` as ``#quality_metric`` lines.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.contract import TrainingEnv
from opensage.algorithms.firstparty.scoring import binary_scores
from opensage.algorithms.firstparty.training import (
    as_dense,
    check_labels,
    log_metric,
    read_channel,
    require_labels,
    save_model,
)
from opensage.algorithms.randomcutforest.forest import fit, score
from opensage.algorithms.randomcutforest.spec import NAME, SPEC

THRESHOLD_SAMPLE = 500_000  # train records scored for the threshold (a sample beyond this)


def classification_metrics(labels: NDArray[Any], predicted: NDArray[Any]) -> dict[str, float]:
    """Accuracy and the positive class's (anomalies') precision, recall and F1."""
    found = binary_scores(predicted, labels > 0.5)
    return {"accuracy": found["accuracy"], "precision": found["precision"],
            "recall": found["recall"], "f1": found["f_beta"]}


def train(env: TrainingEnv) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    dim = hps["feature_dim"]
    data = read_channel(env, "train", formats["train"], default_label_size=0, feature_dim=dim)
    assert data is not None
    x = as_dense(data.features)
    trees, samples = hps["num_trees"], hps["num_samples_per_tree"]
    print(f"Training Random Cut Forest: {len(x)} records, feature_dim {dim}, {trees} trees of "
          f"{min(samples, len(x))} samples.", flush=True)
    started = time.perf_counter()
    forest = fit(x, num_trees=trees, num_samples_per_tree=samples)
    print(f"Built {trees} trees ({len(forest.left)} nodes) in "
          f"{time.perf_counter() - started:.2f} s.", flush=True)
    if len(x) > THRESHOLD_SAMPLE:
        rng = np.random.default_rng(1)
        x = x[np.sort(rng.choice(len(x), THRESHOLD_SAMPLE, replace=False))]
    started = time.perf_counter()
    train_scores = score(forest, x, threads=env.num_cpus)
    mean, std = float(train_scores.mean()), float(train_scores.std())
    threshold = mean + 3 * std
    print(f"Scored {len(x)} train records in {time.perf_counter() - started:.2f} s: mean "
          f"score {mean:.6g}, std {std:.6g}; anomaly threshold (mean + 3 std) "
          f"{threshold:.6g}.", flush=True)
    test = read_channel(env, "test", formats.get("test", ""), default_label_size=1,
                        feature_dim=dim, required=False)
    if test is not None:
        tx = as_dense(test.features)
        labels = require_labels(test, "test")
        check_labels(labels, "test", allowed="0 (normal) or 1 (anomaly)",
                     ok=(labels == 0) | (labels == 1))
        found = classification_metrics(labels, score(forest, tx, threads=env.num_cpus)
                                       > threshold)
        log_metric("test", "f1", found["f1"], loss=False)
        if "accuracy" in hps["eval_metrics"]:
            log_metric("test", "accuracy", found["accuracy"], loss=False)
        if "precision_recall_fscore" in hps["eval_metrics"]:
            log_metric("test", "precision", found["precision"], loss=False)
            log_metric("test", "recall", found["recall"], loss=False)
    save_model(env.model_dir, forest.arrays(),
               {"algorithm": NAME, "feature_dim": dim, "num_trees": trees,
                "num_samples_per_tree": samples, "score_mean": mean, "score_std": std})
