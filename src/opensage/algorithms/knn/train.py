"""Training for the k-NN built-in: read the labeled train channel, sample, project and index
it, score the test channel, save ``model_algo-1``.

Logs ``#quality_metric: host=algo-1, test accuracy <score>=...`` (classifier) or
``test mse <loss>=...`` (regressor) when there is a test channel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.firstparty.training import (
    as_dense,
    check_labels,
    log_metric,
    read_channel,
    require_labels,
    save_model,
)
from opensage.algorithms.knn.neighbors import KNN, fit
from opensage.algorithms.knn.spec import NAME, SPEC


def _labels(data: Any, channel: str, predictor_type: str) -> NDArray[Any]:
    labels = require_labels(data, channel)
    if predictor_type == "classifier":
        check_labels(labels, channel, allowed="non-negative integers for predictor_type "
                                              "classifier",
                     ok=(labels >= 0) & (labels == np.round(labels)))
    return np.asarray(labels, dtype=np.float32)


def evaluate(model: KNN, x: NDArray[Any], labels: NDArray[Any], batch: int) -> float:
    """Accuracy (classifier) or mean squared error (regressor) over ``x`` in batches."""
    predicted = np.concatenate([model.query(x[i:i + batch])[0]
                                for i in range(0, len(x), batch)])
    if model.predictor_type == "classifier":
        return float(np.mean(predicted == labels))
    return float(np.mean((predicted - labels.astype(np.float64)) ** 2))


def train(env: TrainingEnv) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    dim, k, predictor = hps["feature_dim"], hps["k"], hps["predictor_type"]
    data = read_channel(env, "train", formats["train"], default_label_size=1, feature_dim=dim)
    assert data is not None
    x = as_dense(data.features)
    labels = _labels(data, "train", predictor)
    size = min(len(x), hps["sample_size"])
    if k > size:
        raise UserError(f"k ({k}) is larger than the number of points in the index ({size}: "
                        f"the smaller of sample_size and the train channel's records).")
    reduction = hps.get("dimension_reduction_type")
    nlists = hps["faiss_index_ivf_nlists"]
    print(f"Training k-NN ({predictor}): {len(x)} records, feature_dim {dim}, k {k}, "
          f"sample_size {hps['sample_size']}, index {hps['index_type']} "
          f"({hps['index_metric']}), dimension reduction "
          f"{reduction or 'none'}.", flush=True)
    model = fit(x, labels, k=k, predictor_type=predictor, sample_size=hps["sample_size"],
                index_type=hps["index_type"], index_metric=hps["index_metric"],
                reduction=reduction,
                reduction_target=hps.get("dimension_reduction_target") if reduction else None,
                nlists=None if nlists == "auto" else nlists, pq_m=hps.get("faiss_index_pq_m"))
    print(f"Indexed {model.index.size} points.", flush=True)
    test = read_channel(env, "test", formats.get("test", ""), default_label_size=1,
                        feature_dim=dim, required=False)
    if test is not None:
        tx = as_dense(test.features)
        ty = _labels(test, "test", predictor)
        value = evaluate(model, tx, ty, hps["mini_batch_size"])
        if predictor == "classifier":
            log_metric("test", "accuracy", value, loss=False)
        else:
            log_metric("test", "mse", value, loss=True)
    arrays = dict(model.index.arrays())
    if model.projection is not None:
        arrays.update(model.projection.arrays())
    save_model(env.model_dir, arrays, {
        "algorithm": NAME, "feature_dim": dim, "k": k, "predictor_type": predictor,
        "index_type": model.index.kind, "index_metric": model.index.metric,
        "nprobe": model.index.nprobe,
        "dimension_reduction_type": reduction if model.projection is not None else None})
