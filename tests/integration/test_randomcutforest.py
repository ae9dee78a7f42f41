"""The randomcutforest built-in through the API: finds injected anomalies (AUC against the
injected labels, next to scikit-learn's IsolationForest on the same data), logs the test
channel's f1 / accuracy / precision / recall with AWS's three-sigma rule, serves ``score``."""

from __future__ import annotations

import json

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from opensage.algorithms.randomcutforest.serve import load
from opensage.algorithms.randomcutforest.train import classification_metrics
from opensage.data.recordio import encode_dense, iter_records
from tests.integration.builtins import RECORDIO, deploy, invoke, metrics, model_dir, train


def csv(rows: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    if labels is not None:
        rows = np.column_stack([labels, rows])
    return ("\n".join(",".join(f"{v:.7g}" for v in row) for row in rows) + "\n").encode()


def gaussian_with_outliers(seed: int, n: int = 2000, n_out: int = 40,
                           dim: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """``n`` standard normal points and ``n_out`` points 5 to 8 standard deviations out."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(n, dim))
    direction = rng.normal(size=(n_out, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    outliers = direction * rng.uniform(5, 8, size=(n_out, 1))
    order = rng.permutation(n + n_out)
    x = np.vstack([normal, outliers]).astype(np.float32)[order]
    y = np.r_[np.zeros(n), np.ones(n_out)][order]
    return x, y


def test_rcf_finds_injected_anomalies_logs_metrics_and_serves(sm, s3, client, tmp_path):
    x, y = gaussian_with_outliers(0)
    test_x, test_y = gaussian_with_outliers(1, n=1000, n_out=20)
    job = train(sm, s3, "randomcutforest",
                {"feature_dim": 5, "num_trees": 100, "num_samples_per_tree": 256,
                 "mini_batch_size": 1000, "eval_metrics": '["accuracy", '
                                                          '"precision_recall_fscore"]'},
                {"train": (encode_dense(x), None),
                 "test": (csv(test_x, test_y), "text/csv;label_size=1")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    scores = model.predict(test_x, False)["score"]
    ours = roc_auc_score(test_y, scores)
    reference = IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(x)
    theirs = roc_auc_score(test_y, -reference.score_samples(test_x))
    print(f"AUC (Gaussian + outliers): RCF {ours:.4f}, IsolationForest {theirs:.4f}")
    assert ours >= 0.9 and ours >= theirs - 0.02
    assert scores[test_y == 0].mean() < 1.2 < scores[test_y == 1].mean()
    assert roc_auc_score(y, model.predict(x, False)["score"]) >= 0.9  # in-sample too

    found = metrics(job)
    assert set(found) == {"test:f1", "test:accuracy", "test:precision", "test:recall"}
    train_scores = model.predict(x, False)["score"]
    threshold = train_scores.mean() + 3 * train_scores.std()
    expected = classification_metrics(test_y, scores > threshold)
    for name in ("f1", "accuracy", "precision", "recall"):
        assert found[f"test:{name}"] == pytest.approx(expected[name], abs=1e-6)
    assert found["test:f1"] >= 0.8

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "randomcutforest", job)
    body, content_type = invoke(runtime, endpoint, csv(test_x[:3]), "text/csv",
                                "application/json")
    assert content_type == "application/json"
    answer = json.loads(body)
    assert list(answer) == ["scores"]
    assert [s["score"] for s in answer["scores"]] == pytest.approx(scores[:3].tolist(),
                                                                    rel=1e-5)
    request = json.dumps({"instances": [{"features": row.tolist()} for row in test_x[:2]]})
    body, _ = invoke(runtime, endpoint, request, "application/json", "application/jsonlines")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [line["score"] for line in lines] == pytest.approx(scores[:2].tolist(), rel=1e-5)
    body, content_type = invoke(runtime, endpoint, encode_dense(test_x[:4]), RECORDIO, RECORDIO)
    records = list(iter_records(body))
    assert content_type == RECORDIO and len(records) == 4
    assert records[3].label["score"].values[0] == pytest.approx(scores[3], rel=1e-5)
    body, _ = invoke(runtime, endpoint, csv(test_x[:5]), "text/csv", "text/csv")
    assert [float(v) for v in body.decode().split()] == pytest.approx(scores[:5].tolist(),
                                                                     rel=1e-5)
    with pytest.raises(runtime.exceptions.ModelError, match="feature_dim 5"):
        invoke(runtime, endpoint, csv(test_x[:2, :4]), "text/csv")
    with pytest.raises(runtime.exceptions.ModelError, match="finite"):
        invoke(runtime, endpoint, "1,2,nan,4,5\n", "text/csv")


def test_rcf_finds_spikes_in_a_shingled_sine_wave(sm, s3, tmp_path):
    """The AWS notebook's use: a periodic series, shingled (each record is a window of 8
    consecutive values), with spikes injected; windows holding a spike are the anomalies."""
    rng = np.random.default_rng(3)
    t = np.arange(3000)
    series = np.sin(2 * np.pi * t / 100) + rng.normal(0, 0.05, len(t))
    spikes = rng.choice(np.arange(50, len(t) - 50), 15, replace=False)
    series[spikes] += rng.choice([-1, 1], 15) * rng.uniform(1.5, 2.5, 15)
    shingle = 8
    windows = np.lib.stride_tricks.sliding_window_view(series, shingle).astype(np.float32)
    labels = np.zeros(len(windows))
    for s in spikes:
        labels[max(0, s - shingle + 1): s + 1] = 1
    job = train(sm, s3, "randomcutforest", {"feature_dim": shingle, "num_trees": 50},
                {"train": (csv(windows), "text/csv")}, input_mode="Pipe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    scores = load(model_dir(s3, job, tmp_path / "model")).predict(windows, False)["score"]
    ours = roc_auc_score(labels, scores)
    theirs = roc_auc_score(labels, -IsolationForest(n_estimators=50, max_samples=256,
                                                    random_state=0).fit(windows)
                           .score_samples(windows))
    print(f"AUC (shingled sine + spikes): RCF {ours:.4f}, IsolationForest {theirs:.4f}")
    assert ours >= 0.9


def test_rcf_bad_input_fails_the_job_with_a_reason(sm, s3):
    x, y = gaussian_with_outliers(0, n=200, n_out=5, dim=4)
    bad = x.copy()
    bad[11, 3] = np.nan
    job = train(sm, s3, "randomcutforest", {"feature_dim": 4, "num_trees": 50},
                {"train": (encode_dense(bad), None)})
    assert job["TrainingJobStatus"] == "Failed"
    assert "record 12" in job["FailureReason"] and "feature 4" in job["FailureReason"]
    job = train(sm, s3, "randomcutforest", {"feature_dim": 5, "num_trees": 50},
                {"train": (encode_dense(x), None)})
    assert job["TrainingJobStatus"] == "Failed" and "feature_dim" in job["FailureReason"]
    labels = y.copy()
    labels[7] = 2
    job = train(sm, s3, "randomcutforest", {"feature_dim": 4, "num_trees": 50},
                {"train": (encode_dense(x), None),
                 "test": (csv(x, labels), "text/csv;label_size=1")})
    assert job["TrainingJobStatus"] == "Failed"
    assert "record 8" in job["FailureReason"] and "label" in job["FailureReason"]
    job = train(sm, s3, "randomcutforest", {"feature_dim": 4, "num_trees": 50},
                {"train": (encode_dense(x), None), "test": (encode_dense(x), None)})
    assert job["TrainingJobStatus"] == "Failed" and "no labels" in job["FailureReason"]


def test_rcf_rejects_bad_hyperparameters_up_front(sm, s3):
    data = {"train": (encode_dense(np.ones((4, 4), np.float32)), None)}
    with pytest.raises(sm.exceptions.ClientError, match="num_trees"):
        train(sm, s3, "randomcutforest", {"feature_dim": 4, "num_trees": 10}, data)
    with pytest.raises(sm.exceptions.ClientError, match="num_samples_per_tree"):
        train(sm, s3, "randomcutforest", {"feature_dim": 4, "num_samples_per_tree": 4096},
              data)
    with pytest.raises(sm.exceptions.ClientError, match="eval_metrics"):
        train(sm, s3, "randomcutforest", {"feature_dim": 4, "eval_metrics": '["f1"]'}, data)
    with pytest.raises(sm.exceptions.ClientError, match="feature_dim"):
        train(sm, s3, "randomcutforest", {"num_trees": 50}, data)
