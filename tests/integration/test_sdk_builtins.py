"""The SDK's first-party estimators, unchanged: ``record_set()`` uploads RecordIO-protobuf and a
manifest, ``fit`` trains the built-in, ``deploy`` serves it and the estimator's own predictor
(RecordIO-protobuf both ways) gets answers computed by the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from opensage.sdk import fast_polling
from tests.integration.conftest import ROLE, NetworkGuard

RNG = np.random.default_rng(7)
X = np.vstack([RNG.normal(0, 1, (150, 4)), RNG.normal(4, 1, (150, 4))]).astype(np.float32)
Y = np.repeat([0.0, 1.0], 150).astype(np.float32)


def _label(record: Any, key: str) -> list[float]:
    return list(record.label[key].float32_tensor.values)


CASES = {
    "LinearLearner": ({"predictor_type": "binary_classifier", "epochs": 5}, True,
                      lambda records: [_label(r, "predicted_label")[0] for r in records]),
    "KMeans": ({"k": 2}, False, lambda records: [_label(r, "closest_cluster")[0]
                                                  for r in records]),
    "PCA": ({"num_components": 2}, False, lambda records: [len(_label(r, "projection"))
                                                           for r in records]),
    "KNN": ({"k": 3, "sample_size": 300, "predictor_type": "classifier"}, True,
            lambda records: [_label(r, "predicted_label")[0] for r in records]),
    "FactorizationMachines": ({"num_factors": 2, "predictor_type": "binary_classifier",
                               "epochs": 20, "linear_lr": 0.05, "factors_lr": 0.01,
                               "bias_lr": 0.05},
                              True, lambda records: [_label(r, "predicted_label")[0]
                                                     for r in records]),
    "RandomCutForest": ({"num_samples_per_tree": 64, "num_trees": 50}, False,
                        lambda records: [_label(r, "score")[0] for r in records]),
}


@pytest.mark.parametrize("estimator_name", sorted(CASES))
def test_first_party_estimator_fits_deploys_and_predicts(sdk_env: NetworkGuard,
                                                          estimator_name: str):
    import sagemaker

    hyperparameters, labelled, read = CASES[estimator_name]
    session = sagemaker.Session()
    cls = getattr(sagemaker, estimator_name)
    estimator = cls(role=ROLE, instance_count=1, instance_type="ml.m5.large",
                    sagemaker_session=session, **hyperparameters)
    records = estimator.record_set(X, labels=Y if labelled else None)
    with fast_polling(factor=100):
        estimator.fit(records, logs=False)
        predictor = estimator.deploy(1, "ml.m5.large")
    try:
        probe = np.vstack([X[:3], X[-3:]])
        answers = read(predictor.predict(probe))
    finally:
        with fast_polling(factor=100):
            predictor.delete_endpoint()
    if estimator_name in ("LinearLearner", "KNN", "FactorizationMachines"):
        assert answers == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    elif estimator_name == "KMeans":
        assert len(set(answers[:3])) == 1 and len(set(answers[3:])) == 1
        assert answers[0] != answers[-1]
    elif estimator_name == "PCA":
        assert answers == [2] * 6
    else:
        assert all(np.isfinite(answers)) and len(answers) == 6


def test_linear_learner_serves_csv_json_and_recordio_and_transforms(sdk_env: NetworkGuard,
                                                                     tmp_path):
    """Predictions through every serializer, and batch transform, equal the model loaded
    directly from its artifact."""
    import io
    import json
    import tarfile

    import sagemaker
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import CSVSerializer, JSONSerializer

    from opensage.algorithms.linear_learner.serve import load

    session = sagemaker.Session()
    estimator = sagemaker.LinearLearner(role=ROLE, instance_count=1,
                                        instance_type="ml.m5.large", sagemaker_session=session,
                                        predictor_type="regressor", epochs=5)
    y = (X @ np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)).astype(np.float32)
    with fast_polling(factor=100):
        estimator.fit(estimator.record_set(X, labels=y), logs=False)
    bucket, key = estimator.model_data[5:].split("/", 1)
    blob = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        archive.extractall(tmp_path / "model", filter="data")
    direct = load(tmp_path / "model").predict(X[:5], False)["score"].tolist()

    with fast_polling(factor=100):
        predictor = estimator.deploy(1, "ml.m5.large")
    try:
        by_recordio = [r.label["score"].float32_tensor.values[0] for r in predictor.predict(X[:5])]
        predictor.serializer, predictor.deserializer = CSVSerializer(), JSONDeserializer()
        by_csv = [p["score"] for p in predictor.predict(X[:5])["predictions"]]
        predictor.serializer = JSONSerializer()
        by_json = [p["score"] for p in predictor.predict(
            {"instances": [{"features": row} for row in X[:5].tolist()]})["predictions"]]
    finally:
        with fast_polling(factor=100):
            predictor.delete_endpoint()
    assert by_csv == pytest.approx(direct, rel=1e-5)
    assert by_json == pytest.approx(direct, rel=1e-5)
    assert by_recordio == pytest.approx(direct, rel=1e-5)

    rows = "\n".join(",".join(repr(float(v)) for v in row) for row in X[:50])
    source = session.upload_string_as_file_body(rows, bucket, "ll-transform/in/data.csv")
    transformer = estimator.transformer(1, "ml.m5.large", accept="application/jsonlines",
                                        strategy="MultiRecord", assemble_with="Line",
                                        output_path=f"s3://{bucket}/ll-transform/out")
    with fast_polling(factor=100):
        transformer.transform(source.rsplit("/", 1)[0] + "/", content_type="text/csv",
                              split_type="Line", wait=True, logs=False)
    out = session.read_s3_file(bucket, "ll-transform/out/data.csv.out")
    scores = [json.loads(line)["score"] for line in out.splitlines() if line.strip()]
    expected = load(tmp_path / "model").predict(X[:50], False)["score"].tolist()
    assert scores == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("estimator_name", ["KMeans", "PCA", "LinearLearner"])
def test_first_party_estimator_on_two_instances_equals_one(sdk_env: NetworkGuard,
                                                           estimator_name: str, tmp_path):
    """``instance_count=2``: ``record_set`` writes one file per instance and a manifest read
    ShardedByS3Key, the two hosts train one model, the same as one instance's."""
    import io
    import tarfile

    import boto3
    import sagemaker

    from opensage.algorithms.firstparty.training import load_model

    hyperparameters, labelled, _ = CASES[estimator_name]
    session = sagemaker.Session()
    models = []
    for count in (1, 2):
        estimator = getattr(sagemaker, estimator_name)(
            role=ROLE, instance_count=count, instance_type="ml.m5.large",
            sagemaker_session=session, **hyperparameters)
        records = estimator.record_set(X, labels=Y if labelled else None)
        assert records.distribution == "ShardedByS3Key"
        with fast_polling(factor=100):
            estimator.fit(records, logs=False)
        job = estimator.latest_training_job.describe()
        assert job["ResourceConfig"]["InstanceCount"] == count
        bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"][5:].split("/", 1)
        blob = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(tmp_path / str(count), filter="data")
        models.append(load_model(tmp_path / str(count), {
            "KMeans": "kmeans", "PCA": "pca", "LinearLearner": "linear-learner"}[
                estimator_name]))
    (one, _), (two, _) = models
    if estimator_name == "KMeans":
        a, b = sorted(one["centers"].tolist()), sorted(two["centers"].tolist())
        np.testing.assert_allclose(b, a, atol=1e-4)
    elif estimator_name == "PCA":
        np.testing.assert_allclose(np.abs(np.sum(one["v"] * two["v"], axis=0)), 1.0,
                                   atol=1e-5)
    else:  # both separate the two classes of X perfectly
        for model in (one, two):
            scores = X @ model["weights"][:, 0] + model["bias"][0]
            assert np.array_equal(scores > 0, Y == 1)
