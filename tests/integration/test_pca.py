"""The pca built-in through the API: trains (regular and randomized, dense and sparse) to
scikit-learn's explained variance and projections, serves ``projections`` in every format."""

from __future__ import annotations

import json

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
import scipy.sparse
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from opensage.algorithms.pca.serve import load
from opensage.data.recordio import encode_dense, encode_sparse, iter_records
from tests.integration.builtins import RECORDIO, deploy, invoke, model_dir, train

K = 8


def csv(rows: np.ndarray) -> bytes:
    return ("\n".join(",".join(f"{v:.9g}" for v in row) for row in rows) + "\n").encode()


def digits() -> tuple[np.ndarray, np.ndarray]:
    x = load_digits().data.astype(np.float32)
    return x[:1400], x[1400:]


def aligned(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Our projections (principal component last, as AWS orders them) in scikit-learn's
    order with scikit-learn's signs."""
    ours = ours[:, ::-1]
    return ours * np.sign(np.sum(ours * theirs, axis=0))


@pytest.mark.parametrize("mode", ["regular", "randomized"])
def test_pca_matches_sklearn_and_serves(sm, s3, client, tmp_path, mode):
    train_x, test_x = digits()
    job = train(sm, s3, "pca", {"num_components": K, "feature_dim": 64, "mini_batch_size": 500,
                                "algorithm_mode": mode},
                {"train": (encode_dense(train_x), None), "test": (csv(test_x), "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    reference = PCA(K, svd_solver="full").fit(train_x)
    variance = np.asarray(model.components @ np.cov(train_x.T) @ model.components.T).diagonal()
    assert variance[::-1] == pytest.approx(reference.explained_variance_, rel=0.01)
    ours = model.predict(test_x, False)["projection"].astype(np.float64)
    theirs = reference.transform(test_x)
    np.testing.assert_allclose(aligned(ours, theirs), theirs, atol=1e-2 * np.abs(theirs).max())

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "pca", job)
    body, content_type = invoke(runtime, endpoint, csv(test_x[:3]), "text/csv",
                                "application/json")
    assert content_type == "application/json"
    projections = json.loads(body)["projections"]
    assert len(projections) == 3 and len(projections[0]["projection"]) == K
    np.testing.assert_allclose([p["projection"] for p in projections], ours[:3], rtol=1e-4,
                               atol=1e-3)
    lines = invoke(runtime, endpoint, json.dumps({"instances": [
        {"features": test_x[0].tolist()}, {"data": {"features": {"values": test_x[1].tolist()}}}
    ]}), "application/json", "application/jsonlines")[0].decode().splitlines()
    assert len(lines) == 2
    np.testing.assert_allclose(json.loads(lines[1])["projection"], ours[1], rtol=1e-4,
                               atol=1e-3)
    body, content_type = invoke(runtime, endpoint, encode_dense(test_x[:2]), RECORDIO, RECORDIO)
    records = list(iter_records(body))
    assert content_type == RECORDIO and len(records) == 2
    np.testing.assert_allclose(records[0].label["projection"].values, ours[0], rtol=1e-4,
                               atol=1e-3)
    rows = invoke(runtime, endpoint, csv(test_x[:2]), "text/csv", "text/csv")[0]
    parsed = np.loadtxt(rows.decode().splitlines(), delimiter=",", ndmin=2)
    np.testing.assert_allclose(parsed, ours[:2], rtol=1e-4, atol=1e-3)
    with pytest.raises(runtime.exceptions.ModelError, match="feature_dim 64"):
        invoke(runtime, endpoint, csv(test_x[:2, :10]), "text/csv")
    with pytest.raises(runtime.exceptions.ModelError, match="finite"):
        invoke(runtime, endpoint, "1," * 63 + "nan\n", "text/csv")


def test_pca_sparse_without_mean_matches_uncentered_svd(sm, s3, tmp_path):
    rng = np.random.default_rng(0)
    dense = scipy.sparse.random(600, 40, density=0.1, random_state=rng, dtype=np.float32)
    job = train(sm, s3, "pca", {"num_components": 5, "feature_dim": 40, "mini_batch_size": 100,
                                "subtract_mean": "false", "algorithm_mode": "randomized"},
                {"train": (encode_sparse(dense.tocsr()), None)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    singular = np.linalg.svd(dense.toarray(), compute_uv=False)[:5]
    x = dense.toarray().astype(np.float64)
    ours = np.linalg.norm(x @ model.components.T, axis=0)[::-1]
    assert ours == pytest.approx(singular, rel=0.01)
    out = model.invoke(encode_sparse(dense.tocsr()[:3]), RECORDIO, "application/json")[0]
    np.testing.assert_allclose([p["projection"] for p in json.loads(out)["projections"]],
                               x[:3] @ model.components.T, rtol=1e-4, atol=1e-4)


def test_pca_sparse_centered_matches_sklearn(sm, s3, tmp_path):
    train_x, _ = digits()
    job = train(sm, s3, "pca", {"num_components": K, "feature_dim": 64,
                                "mini_batch_size": 500},
                {"train": (encode_sparse(scipy.sparse.csr_matrix(train_x)), None)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    reference = PCA(K).fit(train_x)
    np.testing.assert_allclose(model.mean, reference.mean_, rtol=1e-4, atol=1e-4)
    ours = model.predict(scipy.sparse.csr_matrix(train_x[:50]), False)["projection"]
    theirs = reference.transform(train_x[:50])
    np.testing.assert_allclose(aligned(ours.astype(np.float64), theirs), theirs,
                               atol=1e-2 * np.abs(theirs).max())


def test_pca_bad_input_fails_the_job_with_a_reason(sm, s3):
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    x[9, 1] = np.inf
    job = train(sm, s3, "pca", {"num_components": 2, "feature_dim": 4, "mini_batch_size": 10},
                {"train": (encode_dense(x), None)})
    assert job["TrainingJobStatus"] == "Failed"
    assert "record 10" in job["FailureReason"] and "feature 2" in job["FailureReason"]
    job = train(sm, s3, "pca", {"num_components": 2, "feature_dim": 5, "mini_batch_size": 10},
                {"train": (encode_dense(np.nan_to_num(x, posinf=0)), None)})
    assert job["TrainingJobStatus"] == "Failed" and "feature_dim" in job["FailureReason"]
    job = train(sm, s3, "pca", {"num_components": 2, "feature_dim": 4, "mini_batch_size": 10},
                {"train": (b"", "text/csv")})
    assert job["TrainingJobStatus"] == "Failed"


def test_pca_rejects_bad_hyperparameters_up_front(sm, s3):
    data = {"train": (encode_dense(np.ones((4, 4), np.float32)), None)}
    with pytest.raises(sm.exceptions.ClientError, match="num_components"):
        train(sm, s3, "pca", {"num_components": 0, "feature_dim": 4, "mini_batch_size": 2}, data)
    with pytest.raises(sm.exceptions.ClientError, match="num_components"):
        train(sm, s3, "pca", {"num_components": 5, "feature_dim": 4, "mini_batch_size": 2}, data)
    with pytest.raises(sm.exceptions.ClientError, match="algorithm_mode"):
        train(sm, s3, "pca", {"num_components": 2, "feature_dim": 4, "mini_batch_size": 2,
                              "algorithm_mode": "fast"}, data)
    with pytest.raises(sm.exceptions.ClientError, match="extra_components"):
        train(sm, s3, "pca", {"num_components": 2, "feature_dim": 4, "mini_batch_size": 2,
                              "extra_components": -2}, data)
    with pytest.raises(sm.exceptions.ClientError, match="mini_batch_size"):
        train(sm, s3, "pca", {"num_components": 2, "feature_dim": 4}, data)


def test_pca_trains_in_pipe_mode_from_csv(sm, s3, tmp_path):
    train_x, _ = digits()
    job = train(sm, s3, "pca", {"num_components": 3, "feature_dim": 64, "mini_batch_size": 100,
                                "algorithm_mode": "randomized", "extra_components": 5},
                {"train": (csv(train_x), "text/csv")}, input_mode="Pipe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    reference = PCA(3).fit(train_x)
    variance = np.diag(model.components @ np.cov(train_x.T) @ model.components.T)[::-1]
    assert variance == pytest.approx(reference.explained_variance_, rel=0.01)
