"""PCA, k-means and linear learner with InstanceCount 2 through the API: both hosts train one
model (opensage.algorithms.collective), each on its file of a ShardedByS3Key channel, and the
model algo-1 uploads equals the one a single host trains on the same rows (within the
algorithm's tolerance)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from opensage.data.recordio import encode_dense
from tests.integration.builtins import metrics, model_dir, train


def halves(x: np.ndarray, y: np.ndarray | None = None) -> dict[str, bytes]:
    """Two files (one per host under ShardedByS3Key), unequal in size."""
    cut = len(x) * 3 // 5
    return {f"part-{i}": encode_dense(x[rows], None if y is None else y[rows])
            for i, rows in enumerate((slice(None, cut), slice(cut, None)))}


def host_logs(client, job: dict[str, Any]) -> dict[str, str]:
    """Each host's log stream of the job, by host name."""
    logs = client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=(
        job["TrainingJobName"] + "/"))["logStreams"]
    return {s["logStreamName"].split("/")[1].rsplit("-", 1)[0]: "\n".join(
        e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=s[
            "logStreamName"], startFromHead=True)["events"]) for s in streams}


def pair(sm, s3, algorithm: str, hyperparameters: dict[str, Any],
         channels: dict[str, dict[str, bytes]], sharded: tuple[str, ...] = ("train",),
         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same job on one host and on two (``sharded`` channels ShardedByS3Key there): both
    Completed."""
    one = train(sm, s3, algorithm, hyperparameters,
                {name: (files, None) for name, files in channels.items()})
    two = train(sm, s3, algorithm, hyperparameters,
                {name: (files, None) for name, files in channels.items()},
                instance_count=2, sharded=sharded)
    assert one["TrainingJobStatus"] == "Completed", one.get("FailureReason")
    assert two["TrainingJobStatus"] == "Completed", two.get("FailureReason")
    return one, two


@pytest.mark.parametrize("mode", ["regular", "randomized"])
def test_pca_on_two_hosts_equals_one_host(sm, s3, client, tmp_path, mode):
    from opensage.algorithms.pca.serve import load

    rng = np.random.default_rng(11)
    x = (rng.normal(size=(2000, 10)) * np.linspace(3, 0.3, 10) @ rng.normal(size=(10, 10))
         + 20).astype(np.float32)
    one, two = pair(sm, s3, "pca", {"num_components": 3, "feature_dim": 10,
                                    "mini_batch_size": 200, "algorithm_mode": mode},
                    {"train": halves(x)})
    logs = host_logs(client, two)
    assert "1200 dense records" in logs["algo-1"] and "host 1 of 2" in logs["algo-1"]
    assert "800 dense records" in logs["algo-2"] and "host 2 of 2" in logs["algo-2"]
    assert "The 2 hosts fitted 2000 records together." in logs["algo-1"]
    a = load(model_dir(s3, one, tmp_path / "one"))
    b = load(model_dir(s3, two, tmp_path / "two"))
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(a.components * b.components, axis=1)), 1.0,
                               atol=1e-6)


@pytest.mark.parametrize("distribution", ["ShardedByS3Key", "FullyReplicated"])
def test_kmeans_on_two_hosts_equals_one_host(sm, s3, client, tmp_path, distribution):
    from scipy.optimize import linear_sum_assignment

    from opensage.algorithms.kmeans.serve import load

    rng = np.random.default_rng(12)
    truth = rng.uniform(-10, 10, size=(4, 5))
    x = (truth[rng.integers(0, 4, 2000)] + rng.normal(scale=0.6, size=(2000, 5))).astype(
        np.float32)
    test = truth[rng.integers(0, 4, 300)] + rng.normal(scale=0.6, size=(300, 5))
    one, two = pair(sm, s3, "kmeans", {"k": 4, "feature_dim": 5, "mini_batch_size": 300,
                                       "epochs": 2, "init_method": "kmeans++"},
                    {"train": halves(x), "test": {"part-0": encode_dense(test)}},
                    sharded=("train",) if distribution == "ShardedByS3Key" else ())
    logs = host_logs(client, two)
    # sharded: each host its file; replicated: each host every other row
    rows = (1200, 800) if distribution == "ShardedByS3Key" else (1000, 1000)
    assert f"{rows[0]} records" in logs["algo-1"]
    assert f"{rows[1]} records, feature_dim 5, k 4, host 2 of 2" in logs["algo-2"]
    assert "#quality_metric" not in logs["algo-2"]  # algo-1 reports the job's metrics
    a = load(model_dir(s3, one, tmp_path / "one")).centers
    b = load(model_dir(s3, two, tmp_path / "two")).centers
    _, order = linear_sum_assignment(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(b[order], a, rtol=1e-5, atol=1e-5)
    m1, m2 = metrics(one), metrics(two)
    assert m2["train:msd"] == pytest.approx(m1["train:msd"], rel=1e-5)
    assert m2["test:msd"] == pytest.approx(m1["test:msd"], rel=1e-5)


def test_linear_learner_on_two_hosts_matches_one_host(sm, s3, client, tmp_path):
    from opensage.algorithms.linear_learner.serve import load

    rng = np.random.default_rng(13)

    def data(rows: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(loc=2.0, size=(rows, 6)).astype(np.float32)
        logit = (x - 2.0) @ np.array([1.5, -1.0, 0.8, 0.0, 0.5, -0.3])
        return x, (logit + rng.normal(scale=0.5, size=rows) > 0).astype(np.float32)

    x, y = data(3000)
    x_test, y_test = data(1000)
    hyperparameters = {"predictor_type": "binary_classifier", "feature_dim": 6, "epochs": 5,
                       "mini_batch_size": 200, "num_models": 4}
    one, two = pair(sm, s3, "linear-learner", hyperparameters,
                    {"train": halves(x, y), "test": {"part-0": encode_dense(x_test, y_test)}})
    logs = host_logs(client, two)
    assert "1800 records, feature_dim 6, host 1 of 2" in logs["algo-1"]
    assert "1200 records, feature_dim 6, host 2 of 2" in logs["algo-2"]
    assert "#quality_metric" not in logs["algo-2"]
    m1, m2 = metrics(one), metrics(two)
    assert m1["test:binary_classification_accuracy"] > 0.85
    for name in ("test:binary_classification_accuracy", "test:roc_auc_score"):
        assert abs(m2[name] - m1[name]) <= 0.01, (name, m1[name], m2[name])
    assert m2["test:objective_loss"] == pytest.approx(m1["test:objective_loss"], rel=0.05)
    model = load(model_dir(s3, two, tmp_path / "two"))
    predicted = model.predict(x_test, False)["predicted_label"]
    assert np.mean(predicted == y_test) == pytest.approx(
        m2["test:binary_classification_accuracy"], abs=1e-6)


def test_a_bad_shard_on_one_host_fails_the_job_with_its_reason(sm, s3):
    rng = np.random.default_rng(14)
    good = rng.normal(size=(400, 5)).astype(np.float32)
    bad = rng.normal(size=(300, 4)).astype(np.float32)  # algo-2's file: one feature short
    job = train(sm, s3, "kmeans", {"k": 3, "feature_dim": 5, "mini_batch_size": 100},
                {"train": ({"part-0": encode_dense(good), "part-1": encode_dense(bad)}, None)},
                instance_count=2, sharded=("train",))
    assert job["TrainingJobStatus"] == "Failed"
    assert "feature_dim" in job["FailureReason"], job["FailureReason"]


def test_linear_learner_regressor_replicated_train_sharded_validation(sm, s3, client):
    """FullyReplicated train: each host takes every other row; a ShardedByS3Key validation
    channel is gathered whole on every host, so the model is picked on all of it."""
    rng = np.random.default_rng(15)

    def data(rows: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(loc=-1.0, scale=3.0, size=(rows, 5)).astype(np.float32)
        y = x @ np.array([0.5, -2.0, 1.0, 0.0, 0.25]) + 4 + rng.normal(scale=0.3, size=rows)
        return x, y.astype(np.float32)

    x, y = data(2400)
    x_val, y_val = data(600)
    hyperparameters = {"predictor_type": "regressor", "feature_dim": 5, "epochs": 6,
                       "mini_batch_size": 100, "num_models": 4}
    channels = {"train": ({"part-0": encode_dense(x, y)}, None),
                "validation": (halves(x_val, y_val), None)}
    one = train(sm, s3, "linear-learner", hyperparameters, channels)
    two = train(sm, s3, "linear-learner", hyperparameters, channels, instance_count=2,
                sharded=("validation",))
    assert one["TrainingJobStatus"] == "Completed", one.get("FailureReason")
    assert two["TrainingJobStatus"] == "Completed", two.get("FailureReason")
    logs = host_logs(client, two)
    assert "1200 records, feature_dim 5, host 2 of 2" in logs["algo-2"]
    m1, m2 = metrics(one), metrics(two)
    assert m1["validation:mse"] < 0.15
    assert m2["validation:mse"] == pytest.approx(m1["validation:mse"], rel=0.05)
