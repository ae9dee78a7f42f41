"""The kmeans built-in through the API: trains on RecordIO-protobuf or CSV, matches
scikit-learn's inertia, logs its metrics, serves closest_cluster / distance_to_cluster."""

from __future__ import annotations

import json

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

from opensage.algorithms.kmeans.serve import load
from opensage.data.recordio import encode_dense, iter_records
from tests.integration.builtins import RECORDIO, deploy, invoke, metrics, model_dir, train


def csv(rows: np.ndarray) -> bytes:
    return ("\n".join(",".join(f"{v:.6g}" for v in row) for row in rows) + "\n").encode()


def test_kmeans_matches_sklearn_inertia_and_serves(sm, s3, client, tmp_path):
    x = load_digits().data.astype(np.float32)
    train_x, test_x = x[:1400], x[1400:]
    job = train(sm, s3, "kmeans", {"k": 10, "feature_dim": 64, "mini_batch_size": 500,
                                   "epochs": 3, "eval_metrics": '["msd", "ssd"]'},
                {"train": (encode_dense(train_x), None), "test": (csv(test_x), "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    ours = model.predict(test_x, False)["distance_to_cluster"].astype(np.float64) ** 2
    reference = KMeans(10, n_init=1, random_state=0).fit(train_x)
    theirs = -reference.score(test_x)
    assert ours.sum() <= theirs * 1.01
    found = metrics(job)
    assert found["test:msd"] == pytest.approx(ours.mean(), rel=1e-3)
    assert found["test:ssd"] == pytest.approx(ours.sum(), rel=1e-3)
    assert "train:msd" in found

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "kmeans", job)
    body, content_type = invoke(runtime, endpoint, csv(test_x[:3]), "text/csv",
                                "application/json")
    assert content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    expected = model.predict(test_x[:3], False)
    assert [p["closest_cluster"] for p in predictions] == expected["closest_cluster"].tolist()
    assert [p["distance_to_cluster"] for p in predictions] == pytest.approx(
        expected["distance_to_cluster"].tolist(), rel=1e-5)
    body, content_type = invoke(runtime, endpoint, encode_dense(test_x[:2]), RECORDIO, RECORDIO)
    records = list(iter_records(body))
    assert content_type == RECORDIO and len(records) == 2
    assert records[0].label["closest_cluster"].values[0] == expected["closest_cluster"][0]
    lines = invoke(runtime, endpoint, csv(test_x[:2]), "text/csv",
                   "application/jsonlines")[0].decode().splitlines()
    assert [json.loads(line)["closest_cluster"] for line in lines] == \
        expected["closest_cluster"][:2].tolist()
    with pytest.raises(runtime.exceptions.ModelError, match="feature_dim 64"):
        invoke(runtime, endpoint, csv(test_x[:2, :10]), "text/csv")


def test_kmeans_bad_input_fails_the_job_with_a_reason(sm, s3):
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    x[7, 2] = np.nan
    job = train(sm, s3, "kmeans", {"k": 3, "feature_dim": 4}, {"train": (encode_dense(x), None)})
    assert job["TrainingJobStatus"] == "Failed"
    assert "record 8" in job["FailureReason"] and "feature 3" in job["FailureReason"]
    job = train(sm, s3, "kmeans", {"k": 3, "feature_dim": 5},
                {"train": (encode_dense(np.nan_to_num(x)), None)})
    assert job["TrainingJobStatus"] == "Failed" and "feature_dim" in job["FailureReason"]


def test_kmeans_rejects_bad_hyperparameters_up_front(sm, s3):
    with pytest.raises(sm.exceptions.ClientError, match="'k'"):
        train(sm, s3, "kmeans", {"k": 1, "feature_dim": 4},
              {"train": (encode_dense(np.ones((4, 4), np.float32)), None)})
    with pytest.raises(sm.exceptions.ClientError, match="init_methd"):
        train(sm, s3, "kmeans", {"k": 2, "feature_dim": 4, "init_methd": "random"},
              {"train": (encode_dense(np.ones((4, 4), np.float32)), None)})


def test_kmeans_trains_in_pipe_mode(sm, s3):
    x = np.random.default_rng(1).normal(size=(300, 3)).astype(np.float32)
    x[:150] += 10
    job = train(sm, s3, "kmeans", {"k": 2, "feature_dim": 3}, {"train": (encode_dense(x), None)},
                input_mode="Pipe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert metrics(job)["train:msd"] < 4  # two well-separated unit blobs: msd ~ 3
