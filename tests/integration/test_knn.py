"""The knn built-in through the API: a Flat index matches scikit-learn's k-nearest-neighbor
classifier and regressor, IVF indexes find the true neighbors, inference answers
predicted_label (and, verbose, distances and labels) in every format; bad input fails."""

from __future__ import annotations

import json

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_diabetes, load_digits
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from opensage.algorithms.knn.neighbors import fit
from opensage.algorithms.knn.serve import load
from opensage.data.recordio import encode_dense, iter_records
from tests.integration.builtins import RECORDIO, deploy, invoke, metrics, model_dir, train

K = 5


def csv(rows: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    if labels is not None:
        rows = np.column_stack([labels, rows])
    return ("\n".join(",".join(f"{v:.9g}" for v in row) for row in rows) + "\n").encode()


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    x, y = data.data[order].astype(np.float32), data.target[order].astype(np.float32)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def test_knn_classifier_matches_sklearn_and_serves(sm, s3, client, tmp_path):
    train_x, train_y, test_x, test_y = digits()
    job = train(sm, s3, "knn", {"k": K, "feature_dim": 64, "predictor_type": "classifier",
                                "sample_size": 5000},
                {"train": (csv(train_x, train_y), "text/csv"),
                 "test": (encode_dense(test_x, test_y), None)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    reference = KNeighborsClassifier(K).fit(train_x, train_y)
    theirs = float(np.mean(reference.predict(test_x) == test_y))
    ours_pred = model.predict(test_x, False)["predicted_label"]
    ours = float(np.mean(ours_pred == test_y))
    assert abs(ours - theirs) <= 0.01
    assert metrics(job)["test:accuracy"] == pytest.approx(ours, abs=1e-6)

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "knn", job)
    body, content_type = invoke(runtime, endpoint, csv(test_x[:4]), "text/csv",
                                "application/json")
    assert content_type == "application/json"
    assert json.loads(body) == {"predictions": [{"predicted_label": float(v)}
                                                for v in ours_pred[:4]]}
    body, _ = invoke(runtime, endpoint, json.dumps({"instances": [
        {"features": test_x[0].tolist()}, {"data": {"features": {"values": test_x[1].tolist()}}}
    ]}), "application/json", "application/json; verbose=true")
    predictions = json.loads(body)["predictions"]
    distances, neighbors = reference.kneighbors(test_x[:2])
    for p, d, n in zip(predictions, distances, neighbors, strict=True):
        assert p["distances"] == sorted(p["distances"]) and len(p["labels"]) == K
        assert p["distances"] == pytest.approx((d ** 2).tolist(), rel=1e-4, abs=1e-3)
        assert sorted(p["labels"]) == sorted(train_y[n].tolist())
    lines = invoke(runtime, endpoint, csv(test_x[:3]), "text/csv",
                   "application/jsonlines")[0].decode().splitlines()
    assert [json.loads(line)["predicted_label"] for line in lines] == ours_pred[:3].tolist()
    rows = invoke(runtime, endpoint, csv(test_x[:3]), "text/csv", "text/csv")[0].decode()
    assert [float(v) for v in rows.split()] == ours_pred[:3].tolist()
    body, content_type = invoke(runtime, endpoint, encode_dense(test_x[:2]), RECORDIO,
                                RECORDIO + "; verbose=true")
    records = list(iter_records(body))
    assert content_type == RECORDIO and len(records) == 2
    assert records[0].label["predicted_label"].values[0] == ours_pred[0]
    assert len(records[0].label["distances"].values) == K
    assert len(records[0].label["labels"].values) == K
    with pytest.raises(runtime.exceptions.ModelError, match="feature_dim 64"):
        invoke(runtime, endpoint, csv(test_x[:2, :10]), "text/csv")
    with pytest.raises(runtime.exceptions.ModelError, match="finite"):
        invoke(runtime, endpoint, "1," * 63 + "inf\n", "text/csv")


def test_knn_regressor_matches_sklearn(sm, s3, tmp_path):
    data = load_diabetes()
    x, y = data.data.astype(np.float32), data.target.astype(np.float32)
    job = train(sm, s3, "knn", {"k": 7, "feature_dim": 10, "predictor_type": "regressor",
                                "sample_size": 1000, "_tuning_objective_metric": "test:mse"},
                {"train": (encode_dense(x[:350], y[:350]), None),
                 "test": (csv(x[350:], y[350:]), "text/csv;label_size=1")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    reference = KNeighborsRegressor(7).fit(x[:350], y[:350])
    theirs = float(np.mean((reference.predict(x[350:]) - y[350:]) ** 2))
    assert metrics(job)["test:mse"] == pytest.approx(theirs, rel=0.01)
    model = load(model_dir(s3, job, tmp_path / "model"))
    np.testing.assert_allclose(model.predict(x[350:360], False)["predicted_label"],
                               reference.predict(x[350:360]), rtol=1e-5)


def test_knn_ivfflat_recall_through_the_api(sm, s3, tmp_path):
    train_x, train_y, test_x, test_y = digits()
    job = train(sm, s3, "knn", {"k": 10, "feature_dim": 64, "predictor_type": "classifier",
                                "sample_size": 5000, "index_type": "faiss.IVFFlat",
                                "faiss_index_ivf_nlists": 20},
                {"train": (encode_dense(train_x, train_y), None),
                 "test": (encode_dense(test_x, test_y), None)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert metrics(job)["test:accuracy"] >= 0.95
    model = load(model_dir(s3, job, tmp_path / "model")).model
    assert len(model.index.centroids) == 20
    _, positions = model.index.search(model.transform(test_x), 10)
    found = model.index.ids[positions]
    _, truth = KNeighborsClassifier(10).fit(train_x, train_y).kneighbors(test_x)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
    assert recall >= 0.9


@pytest.mark.parametrize("options, accuracy", [
    ({"index_type": "faiss.IVFPQ", "pq_m": 16}, 0.9),
    ({"index_metric": "COSINE"}, 0.95),
    ({"index_metric": "INNER_PRODUCT"}, 0.5),
    ({"reduction": "sign", "reduction_target": 32}, 0.93),
    ({"reduction": "fjlt", "reduction_target": 32}, 0.93),
    ({"index_type": "faiss.IVFFlat", "reduction": "fjlt", "reduction_target": 24,
      "index_metric": "COSINE"}, 0.9),
])
def test_knn_index_and_projection_options(options, accuracy):
    train_x, train_y, test_x, test_y = digits()
    model = fit(train_x, train_y, k=K, predictor_type="classifier", sample_size=5000,
                **{"index_type": "faiss.Flat", **options})
    predicted, distances, labels = model.query(test_x)
    assert np.mean(predicted == test_y) >= accuracy
    assert distances.shape == labels.shape == (len(test_x), K)
    assert np.all(np.diff(distances, axis=1) >= -1e-5)


def test_knn_random_projections_preserve_distances():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 300)).astype(np.float32)
    truth = np.linalg.norm(x[:100] - x[100:], axis=1)
    for kind in ("sign", "fjlt"):
        model = fit(x, np.zeros(200, np.float32), k=1, predictor_type="regressor",
                    sample_size=200, reduction=kind, reduction_target=128)
        y = model.transform(x)
        ratio = np.linalg.norm(y[:100] - y[100:], axis=1) / truth
        assert abs(float(np.median(ratio)) - 1) < 0.05 and ratio.min() > 0.6, kind


def test_knn_sample_size_keeps_a_uniform_sample():
    x = np.arange(1000, dtype=np.float32)[:, None]
    model = fit(x, x[:, 0], k=3, predictor_type="regressor", sample_size=100)
    assert model.index.size == 100
    assert 300 < float(model.index.points.mean()) < 700


def test_knn_bad_input_fails_the_job_with_a_reason(sm, s3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50).astype(np.float32)
    hps = {"k": 3, "feature_dim": 4, "predictor_type": "classifier", "sample_size": 100}
    bad_y = y.copy()
    bad_y[6] = 1.5
    job = train(sm, s3, "knn", hps, {"train": (encode_dense(x, bad_y), None)})
    assert job["TrainingJobStatus"] == "Failed" and "record 7" in job["FailureReason"]
    bad_x = x.copy()
    bad_x[11, 3] = np.nan
    job = train(sm, s3, "knn", hps, {"train": (encode_dense(bad_x, y), None)})
    assert job["TrainingJobStatus"] == "Failed"
    assert "record 12" in job["FailureReason"] and "feature 4" in job["FailureReason"]
    job = train(sm, s3, "knn", hps, {"train": (encode_dense(x), None)})
    assert job["TrainingJobStatus"] == "Failed" and "labels" in job["FailureReason"]
    job = train(sm, s3, "knn", {**hps, "k": 60}, {"train": (encode_dense(x, y), None)})
    assert job["TrainingJobStatus"] == "Failed" and "k (60)" in job["FailureReason"]


def test_knn_rejects_bad_hyperparameters_up_front(sm, s3):
    data = {"train": (encode_dense(np.ones((4, 8), np.float32), np.zeros(4, np.float32)),
                      None)}
    hps = {"k": 2, "feature_dim": 8, "predictor_type": "classifier", "sample_size": 4}
    bad = [({"dimension_reduction_type": "sign"}, "dimension_reduction_target"),
           ({"dimension_reduction_type": "fjlt", "dimension_reduction_target": 8},
            "dimension_reduction_target"),
           ({"index_type": "faiss.IVFPQ", "faiss_index_pq_m": 5}, "faiss_index_pq_m"),
           ({"index_type": "faiss.IVFPQ", "faiss_index_pq_m": 3}, "faiss_index_pq_m"),
           ({"index_type": "faiss.HNSW"}, "index_type"),
           ({"index_metric": "l1"}, "index_metric"),
           ({"faiss_index_ivf_nlists": "0"}, "faiss_index_ivf_nlists"),
           ({"_tuning_objective_metric": "test:mse"}, "objective"),
           ({"k": 0}, "'k'")]
    for extra, message in bad:
        with pytest.raises(sm.exceptions.ClientError, match=message):
            train(sm, s3, "knn", {**hps, **extra}, data)
    with pytest.raises(sm.exceptions.ClientError, match="predictor_type"):
        train(sm, s3, "knn", {"k": 2, "feature_dim": 8, "sample_size": 4}, data)


def test_knn_ivfpq_with_fjlt_saves_and_serves(sm, s3, tmp_path):
    train_x, train_y, test_x, test_y = digits()
    job = train(sm, s3, "knn", {"k": K, "feature_dim": 64, "predictor_type": "classifier",
                                "sample_size": 1000, "index_type": "faiss.IVFPQ",
                                "faiss_index_pq_m": 8, "dimension_reduction_type": "fjlt",
                                "dimension_reduction_target": 32, "index_metric": "COSINE"},
                {"train": (encode_dense(train_x, train_y), None),
                 "test": (encode_dense(test_x, test_y), None)}, input_mode="Pipe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    accuracy = metrics(job)["test:accuracy"]
    assert accuracy >= 0.85
    served = load(model_dir(s3, job, tmp_path / "model"))
    assert served.model.index.codes.shape == (1000, 8)
    assert served.model.index.points is None
    out = json.loads(served.invoke(csv(test_x), "text/csv", "application/json")[0])
    predicted = np.array([p["predicted_label"] for p in out["predictions"]])
    assert float(np.mean(predicted == test_y)) == pytest.approx(accuracy, abs=1e-6)
