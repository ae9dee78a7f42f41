"""The NTM built-in, in the builtin-torch environment, through boto3 and the unchanged SDK: it
trains on CSV and RecordIO-protobuf word counts, logs per-epoch and test metrics in the
containers' format, serves ``topic_weights`` in every format, batch-transforms, and fails a job
on bad input with a reason naming the record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from opensage.sdk import fast_polling
from tests.integration.builtins import deploy as deploy_model
from tests.integration.builtins import invoke, metrics, train
from tests.integration.conftest import ROLE, NetworkGuard

TOPICS, VOCABULARY = 4, 40


def corpus(documents: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Word counts from TOPICS topics with disjoint words (10 each); each document mostly one
    topic. (counts, dominant topic)."""
    rng = np.random.default_rng(seed)
    beta = np.full((TOPICS, VOCABULARY), 0.002)
    for k in range(TOPICS):
        beta[k, k * 10:(k + 1) * 10] = 1.0
    beta /= beta.sum(axis=1, keepdims=True)
    dominant = rng.integers(0, TOPICS, documents)
    theta = np.full((documents, TOPICS), 0.05)
    theta[np.arange(documents), dominant] = 1.0
    theta /= theta.sum(axis=1, keepdims=True)
    counts = np.stack([rng.multinomial(60, t @ beta) for t in theta]).astype(np.float32)
    return counts, dominant


def csv(rows: np.ndarray) -> bytes:
    return ("\n".join(",".join(str(int(v)) for v in row) for row in rows) + "\n").encode()


HPS = {"feature_dim": VOCABULARY, "num_topics": TOPICS, "epochs": 40, "optimizer": "adam",
       "learning_rate": 0.02, "mini_batch_size": 32, "tolerance": 1e-6,
       "num_patience_epochs": 10}


def _purity(weights: np.ndarray, dominant: np.ndarray) -> float:
    """How well the documents' argmax topic agrees with the true dominant topic, under the
    best one-to-one mapping of learned topics to true ones (greedy is enough here)."""
    chosen = weights.argmax(axis=1)
    table = np.zeros((TOPICS, TOPICS))
    np.add.at(table, (chosen, dominant), 1)
    return float(table.max(axis=1).sum() / len(dominant))


def test_ntm_trains_on_csv_serves_topic_weights_and_logs_metrics(sm, s3, client):
    x, _ = corpus(300, seed=1)
    x_val, _ = corpus(60, seed=2)
    x_test, dominant = corpus(80, seed=3)
    job = train(sm, s3, "ntm", HPS, {"train": (csv(x), "text/csv"),
                                     "validation": (csv(x_val), "text/csv"),
                                     "test": (csv(x_test), "text/csv")}, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    for name in ("train:total_loss", "validation:total_loss", "test:total_loss",
                 "test:perplexity"):
        assert name in found, found
    # far better than the uniform model (perplexity = vocabulary size)
    assert found["test:perplexity"] < 0.6 * VOCABULARY
    logs = client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=job["TrainingJobName"])
    text = "\n".join(e["message"] for s in streams["logStreams"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"])["events"])
    assert "#quality_metric: host=algo-1, epoch=0, train total_loss <loss>=" in text
    assert "#quality_metric: host=algo-1, epoch=39, validation total_loss <loss>=" in text

    runtime = client("sagemaker-runtime")
    endpoint = deploy_model(sm, "ntm", job, timeout=120)
    body, content_type = invoke(runtime, endpoint, csv(x_test), "text/csv", "application/json")
    assert content_type == "application/json"
    weights = np.array([p["topic_weights"] for p in json.loads(body)["predictions"]])
    assert weights.shape == (80, TOPICS)
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert _purity(weights, dominant) >= 0.9
    as_json, _ = invoke(runtime, endpoint, json.dumps(
        {"instances": [{"features": row} for row in x_test[:5].tolist()]}), "application/json",
        "application/jsonlines")
    lines = [json.loads(line)["topic_weights"] for line in as_json.decode().splitlines()]
    assert np.allclose(lines, weights[:5], atol=1e-6)
    with pytest.raises(runtime.exceptions.ModelError, match="feature_dim"):
        invoke(runtime, endpoint, b"1,2,3\n", "text/csv")


def test_ntm_bad_inputs_fail_the_job_naming_the_record(sm, s3):
    x, _ = corpus(20, seed=4)
    x[13, 5] = -2
    job = train(sm, s3, "ntm", {**HPS, "epochs": 1}, {"train": (csv(x), "text/csv")})
    assert job["TrainingJobStatus"] == "Failed"
    assert "record 14" in job["FailureReason"] and "negative" in job["FailureReason"]
    assert job["FailureReason"].startswith("ClientError:")
    x, _ = corpus(20, seed=5)
    job = train(sm, s3, "ntm", {**HPS, "epochs": 1},
                {"train": (csv(x), "text/csv"),
                 "auxiliary": (b"alpha\nbeta\n", "text/plain")})
    assert job["TrainingJobStatus"] == "Failed"
    assert "2 words but feature_dim is 40" in job["FailureReason"]
    wrong = csv(x[:, :30])
    job = train(sm, s3, "ntm", {**HPS, "epochs": 1}, {"train": (wrong, "text/csv")})
    assert job["TrainingJobStatus"] == "Failed"
    assert "30 features per record but feature_dim is 40" in job["FailureReason"]


def test_sdk_ntm_estimator_fits_recordio_deploys_and_batch_transforms(sdk_env: NetworkGuard):
    import sagemaker

    x, _ = corpus(300, seed=6)
    probe, dominant = corpus(40, seed=7)
    session = sagemaker.Session()
    estimator = sagemaker.NTM(role=ROLE, instance_count=1, instance_type="ml.m5.large",
                              sagemaker_session=session, num_topics=TOPICS, epochs=40,
                              optimizer="adam", learning_rate=0.02, tolerance=1e-6,
                              num_patience_epochs=10, encoder_layers=[16, 8])
    assert sagemaker.image_uris.retrieve("ntm", "us-east-1").endswith("/ntm:1")
    records = estimator.record_set(x)  # RecordIO-protobuf, feature_dim from the data
    with fast_polling(factor=100):
        estimator.fit(records, mini_batch_size=32, logs=False)
        predictor = estimator.deploy(1, "ml.m5.large")
    try:
        answers = predictor.predict(probe)  # RecordIO-protobuf both ways
    finally:
        with fast_polling(factor=100):
            predictor.delete_endpoint()
    weights = np.array([list(r.label["topic_weights"].float32_tensor.values) for r in answers])
    assert weights.shape == (40, TOPICS)
    assert _purity(weights, dominant) >= 0.8

    bucket = session.default_bucket()
    source = session.upload_string_as_file_body(csv(probe).decode(), bucket,
                                                "ntm-transform/in/docs.csv")
    transformer = estimator.transformer(1, "ml.m5.large", accept="application/jsonlines",
                                        strategy="MultiRecord", assemble_with="Line",
                                        output_path=f"s3://{bucket}/ntm-transform/out")
    with fast_polling(factor=100):
        transformer.transform(source.rsplit("/", 1)[0] + "/", content_type="text/csv",
                              split_type="Line", wait=True, logs=False)
    out = session.read_s3_file(bucket, "ntm-transform/out/docs.csv.out")
    transformed = np.array([json.loads(line)["topic_weights"] for line in out.splitlines()
                            if line.strip()])
    assert np.allclose(transformed, weights, atol=1e-5)
