"""The factorization-machines built-in through the API: trains on sparse RecordIO-protobuf,
beats a linear model on interaction data, matches Ridge on diabetes, logs its metrics and
serves JSON / JSON lines / RecordIO-protobuf (no CSV)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss

from opensage.algorithms.factorization_machines.serve import load
from opensage.data.recordio import encode_dense, encode_sparse, iter_records
from tests.integration.builtins import RECORDIO, deploy, invoke, metrics, model_dir, train

FM = "factorization-machines"


def interactions(n: int = 4000, users: int = 100, items: int = 60, k: int = 4,
                 seed: int = 1) -> tuple[sp.csr_matrix, np.ndarray]:
    """One-hot (user, item) rows whose click probability is a user-item factor product: a
    linear model on the one-hot features cannot see it, a factorization machine can."""
    rng = np.random.default_rng(seed)
    u_factors, i_factors = rng.normal(size=(users, k)), rng.normal(size=(items, k))
    u, i = rng.integers(0, users, n), rng.integers(0, items, n)
    logit = 1.5 * np.sum(u_factors[u] * i_factors[i], axis=1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    x = sp.csr_matrix((np.ones(2 * n, np.float32), np.stack([u, users + i], 1).ravel(),
                       np.arange(0, 2 * n + 1, 2)), shape=(n, users + items))
    return x, y


def test_fm_binary_beats_logistic_regression_on_interactions_and_serves(sm, s3, client,
                                                                        tmp_path):
    x, y = interactions()
    train_x, train_y, test_x, test_y = x[:3000], y[:3000], x[3000:], y[3000:]
    job = train(sm, s3, FM, {
        "feature_dim": x.shape[1], "num_factors": 8, "predictor_type": "binary_classifier",
        "epochs": 10, "mini_batch_size": 500, "factors_lr": 0.05, "factors_wd": 0.001,
        "factors_init_sigma": 0.1, "linear_lr": 0.01},
        {"train": (encode_sparse(train_x, train_y), None),
         "test": (encode_sparse(test_x, test_y), RECORDIO)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    reference = LogisticRegression(max_iter=1000).fit(train_x, train_y)
    linear_accuracy = reference.score(test_x, test_y)
    linear_loss = log_loss(test_y, reference.predict_proba(test_x)[:, 1])
    # The signal is pure interaction: the linear model stays near chance, the FM learns it.
    assert found["test:binary_classification_accuracy"] >= linear_accuracy + 0.15
    assert found["test:binary_classification_cross_entropy"] < linear_loss
    assert 0 < found["test:binary_f_beta"] <= 1

    model = load(model_dir(s3, job, tmp_path / "model"))
    expected = model.predict(test_x[:3], False)
    accuracy = np.mean(model.predict(test_x, False)["predicted_label"] == test_y)
    assert found["test:binary_classification_accuracy"] == pytest.approx(accuracy, abs=1e-6)

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, FM, job)
    instances = [{"data": {"features": {"keys": test_x[r].indices.tolist(),
                                        "shape": [x.shape[1]],
                                        "values": test_x[r].data.tolist()}}} for r in range(3)]
    body, content_type = invoke(runtime, endpoint, json.dumps({"instances": instances}),
                                "application/json")
    assert content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    assert [p["score"] for p in predictions] == pytest.approx(expected["score"].tolist(),
                                                              rel=1e-5)
    assert [p["predicted_label"] for p in predictions] == \
        expected["predicted_label"].tolist()
    assert all(isinstance(p["predicted_label"], int) for p in predictions)
    lines = invoke(runtime, endpoint, "\n".join(json.dumps(i) for i in instances),
                   "application/jsonlines", "application/jsonlines")[0].decode().splitlines()
    assert [json.loads(line)["score"] for line in lines] == pytest.approx(
        expected["score"].tolist(), rel=1e-5)
    body, content_type = invoke(runtime, endpoint, encode_sparse(test_x[:3]), RECORDIO,
                                RECORDIO)
    records = list(iter_records(body))
    assert content_type == RECORDIO and len(records) == 3
    assert records[0].label["score"].values[0] == pytest.approx(expected["score"][0], rel=1e-5)
    assert records[0].label["predicted_label"].values[0] == expected["predicted_label"][0]
    dense = test_x[:2].toarray()
    body, _ = invoke(runtime, endpoint, json.dumps({"instances": [{"features": r.tolist()}
                                                                  for r in dense]}),
                     "application/json")
    assert [p["score"] for p in json.loads(body)["predictions"]] == pytest.approx(
        expected["score"][:2].tolist(), rel=1e-5)
    with pytest.raises(runtime.exceptions.ClientError, match="415|not supported"):
        invoke(runtime, endpoint, "1,0,1", "text/csv")
    with pytest.raises(runtime.exceptions.ModelError, match="feature_dim"):
        invoke(runtime, endpoint, json.dumps({"instances": [{"features": [1.0, 0.0]}]}),
               "application/json")
    bad = dense[:1].copy()
    bad[0, 5] = np.nan
    with pytest.raises(runtime.exceptions.ModelError, match="finite"):
        invoke(runtime, endpoint, encode_dense(bad.astype(np.float32)), RECORDIO)


def test_fm_regressor_matches_ridge_on_diabetes(sm, s3, tmp_path):
    x, y = load_diabetes(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order].astype(np.float32), y[order].astype(np.float32)
    train_x, train_y, test_x, test_y = x[:350], y[:350], x[350:], y[350:]
    job = train(sm, s3, FM, {
        "feature_dim": 10, "num_factors": 4, "predictor_type": "regressor", "epochs": 60,
        "mini_batch_size": 32, "bias_lr": 2.0, "bias_wd": 0, "linear_lr": 0.1,
        "factors_wd": 0.001},
        {"train": (encode_sparse(sp.csr_matrix(train_x), train_y), None),
         "test": (encode_dense(test_x, test_y), None)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    ridge = Ridge(1.0).fit(train_x, train_y)
    ridge_rmse = float(np.sqrt(np.mean((ridge.predict(test_x) - test_y) ** 2)))
    assert found["test:rmse"] <= ridge_rmse * 1.02
    assert "test:binary_classification_accuracy" not in found
    model = load(model_dir(s3, job, tmp_path / "model"))
    out = model.predict(sp.csr_matrix(test_x), False)
    assert set(out) == {"score"}
    rmse = float(np.sqrt(np.mean((out["score"].astype(np.float64) - test_y) ** 2)))
    assert found["test:rmse"] == pytest.approx(rmse, rel=1e-4)


def test_fm_bad_input_fails_the_job_with_a_reason(sm, s3):
    x, y = interactions(n=200)
    labels = y.copy()
    labels[12] = 2.0
    hps = {"feature_dim": x.shape[1], "num_factors": 4, "predictor_type": "binary_classifier"}
    job = train(sm, s3, FM, hps, {"train": (encode_sparse(x, labels), None)})
    assert job["TrainingJobStatus"] == "Failed"
    assert "record 13" in job["FailureReason"] and "0 or 1" in job["FailureReason"]
    values = x.copy()
    values.data[2 * 7] = np.inf
    job = train(sm, s3, FM, hps, {"train": (encode_sparse(values, y), None)})
    assert job["TrainingJobStatus"] == "Failed" and "record 8" in job["FailureReason"]
    job = train(sm, s3, FM, hps, {"train": (encode_sparse(x), None)})
    assert job["TrainingJobStatus"] == "Failed" and "no labels" in job["FailureReason"]


def test_fm_rejects_bad_hyperparameters_and_csv_up_front(sm, s3):
    x, y = interactions(n=20)
    channel = {"train": (encode_sparse(x, y), None)}
    with pytest.raises(sm.exceptions.ClientError, match="predictor_type"):
        train(sm, s3, FM, {"feature_dim": x.shape[1], "num_factors": 4,
                           "predictor_type": "multiclass_classifier"}, channel)
    with pytest.raises(sm.exceptions.ClientError, match="num_factors"):
        train(sm, s3, FM, {"feature_dim": x.shape[1], "predictor_type": "regressor"}, channel)
    with pytest.raises(sm.exceptions.ClientError, match="factors_lr"):
        train(sm, s3, FM, {"feature_dim": x.shape[1], "num_factors": 4,
                           "predictor_type": "regressor", "factors_lr": -1}, channel)
    with pytest.raises(sm.exceptions.ClientError, match="text/csv"):
        train(sm, s3, FM, {"feature_dim": x.shape[1], "num_factors": 4,
                           "predictor_type": "regressor"},
              {"train": (b"1,0,1\n", "text/csv")})
