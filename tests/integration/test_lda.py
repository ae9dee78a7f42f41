"""The LDA built-in: trains on word-count documents (RecordIO-protobuf or CSV), recovers the
topics of a corpus drawn from an LDA model better than scikit-learn's batch variational fit
scores on held-out documents, logs test:pwll, serves topic_mixture, batch-transforms, and
works through the SDK's own ``sagemaker.LDA`` estimator (record_set -> fit -> deploy ->
predict)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from opensage.algorithms.lda.serve import load
from opensage.algorithms.lda.topics import LdaModel, per_word_bound
from opensage.data.recordio import encode_dense, iter_records
from opensage.sdk import fast_polling
from tests.integration.builtins import RECORDIO, deploy, invoke, metrics, model_dir, train
from tests.integration.conftest import ROLE, NetworkGuard

K, V = 3, 40


def corpus(docs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Documents drawn from LDA: three topics over disjoint-ish word blocks."""
    rng = np.random.default_rng(seed)
    beta = np.full((K, V), 0.002)
    for topic in range(K):
        beta[topic, topic * 12:(topic + 1) * 12 + 4] = 1.0
    beta /= beta.sum(axis=1, keepdims=True)
    theta = rng.dirichlet(np.full(K, 0.2), size=docs)
    x = np.stack([rng.multinomial(n, t @ beta) for n, t in
                  zip(rng.integers(20, 60, size=docs), theta)]).astype(np.float32)
    return x, theta, beta


def csv(rows: np.ndarray) -> bytes:
    return ("\n".join(",".join(f"{v:g}" for v in row) for row in rows) + "\n").encode()


def test_lda_beats_sklearn_on_held_out_words_and_serves(sm, s3, client, tmp_path):
    from sklearn.decomposition import LatentDirichletAllocation

    x, theta, beta = corpus(500)
    train_x, test_x = x[:400], x[400:]
    job = train(sm, s3, "lda", {"num_topics": K, "feature_dim": V, "mini_batch_size": 400},
                {"train": (encode_dense(train_x), None), "test": (csv(test_x), "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    served = load(model_dir(s3, job, tmp_path / "model"))
    ours = per_word_bound(sp.csr_matrix(test_x, dtype=np.float64), served.model)
    assert metrics(job)["test:pwll"] == pytest.approx(ours, rel=1e-6)
    reference = LatentDirichletAllocation(K, learning_method="batch", random_state=0).fit(train_x)
    theirs = per_word_bound(sp.csr_matrix(test_x, dtype=np.float64), LdaModel(
        alpha=np.full(K, 1.0 / K),
        beta=reference.components_ / reference.components_.sum(axis=1, keepdims=True)))
    assert ours >= theirs - 0.01
    # every true topic is found: some learnt topic is close to it in total variation
    distance = np.abs(served.model.beta[:, None, :] - beta[None, :, :]).sum(axis=2) / 2
    assert distance.min(axis=0).max() < 0.15

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "lda", job)
    body, content_type = invoke(runtime, endpoint, csv(test_x[:4]), "text/csv",
                                "application/json")
    assert content_type == "application/json"
    mixtures = [p["topic_mixture"] for p in json.loads(body)["predictions"]]
    expected = served.predict(test_x[:4], False)["topic_mixture"]
    assert np.asarray(mixtures) == pytest.approx(expected, abs=1e-6)
    assert np.allclose(np.sum(mixtures, axis=1), 1, atol=1e-5)
    # the mixture follows the document's true one, up to the topics' order
    order = distance.argmin(axis=0)
    assert np.abs(np.asarray(mixtures)[:, order] - theta[400:404]).sum(axis=1).mean() < 0.5
    records = list(iter_records(invoke(runtime, endpoint, encode_dense(test_x[:2]), RECORDIO,
                                       RECORDIO)[0]))
    assert list(records[1].label["topic_mixture"].values) == pytest.approx(
        expected[1].tolist(), abs=1e-6)
    body, _ = invoke(runtime, endpoint, json.dumps(
        {"instances": [{"features": test_x[0].tolist()}]}), "application/json")
    assert json.loads(body)["predictions"][0]["topic_mixture"] == pytest.approx(
        expected[0].tolist(), abs=1e-6)
    with pytest.raises(runtime.exceptions.ModelError, match="feature_dim 40"):
        invoke(runtime, endpoint, csv(test_x[:2, :10]), "text/csv")


def test_lda_bad_input_fails_the_job_naming_the_record(sm, s3):
    x, _, _ = corpus(30, seed=1)
    x[6, 3] = -2
    job = train(sm, s3, "lda", {"num_topics": K, "feature_dim": V, "mini_batch_size": 30},
                {"train": (csv(x), "text/csv")})
    assert job["TrainingJobStatus"] == "Failed"
    assert "record 7" in job["FailureReason"] and "negative" in job["FailureReason"]
    job = train(sm, s3, "lda", {"num_topics": K, "feature_dim": V, "mini_batch_size": 30},
                {"train": (b"not,a,number\n", "text/csv")})
    assert job["TrainingJobStatus"] == "Failed" and "ClientError" in job["FailureReason"]
    with pytest.raises(sm.exceptions.ClientError, match="num_topics"):
        train(sm, s3, "lda", {"feature_dim": V, "mini_batch_size": 30},
              {"train": (csv(np.abs(x)), "text/csv")})
    with pytest.raises(sm.exceptions.ClientError, match="application/jsonlines"):
        train(sm, s3, "lda", {"num_topics": K, "feature_dim": V, "mini_batch_size": 30},
              {"train": (csv(np.abs(x)), "application/jsonlines")})


def test_sdk_lda_estimator_fits_deploys_predicts_and_transforms(sdk_env: NetworkGuard):
    import sagemaker

    x, _, _ = corpus(300, seed=2)
    session = sagemaker.Session()
    estimator = sagemaker.LDA(role=ROLE, instance_type="ml.m5.large", num_topics=K,
                              sagemaker_session=session)
    records = estimator.record_set(x[:250], channel="train")
    with fast_polling(factor=100):
        estimator.fit(records, mini_batch_size=250, logs=False)
        predictor = estimator.deploy(1, "ml.m5.large")
    try:
        answers = predictor.predict(x[250:255])
    finally:
        with fast_polling(factor=100):
            predictor.delete_endpoint()
    mixtures = np.array([list(r.label["topic_mixture"].float32_tensor.values) for r in answers])
    assert mixtures.shape == (5, K) and np.allclose(mixtures.sum(axis=1), 1, atol=1e-5)

    bucket = session.default_bucket()
    source = session.upload_string_as_file_body(csv(x[250:]).decode(), bucket,
                                                "lda-transform/in/docs.csv")
    transformer = estimator.transformer(1, "ml.m5.large", accept="application/jsonlines",
                                        strategy="MultiRecord", assemble_with="Line",
                                        output_path=f"s3://{bucket}/lda-transform/out")
    with fast_polling(factor=100):
        transformer.transform(source.rsplit("/", 1)[0] + "/", content_type="text/csv",
                              split_type="Line", wait=True, logs=False)
    out = session.read_s3_file(bucket, "lda-transform/out/docs.csv.out")
    rows = [json.loads(line)["topic_mixture"] for line in out.splitlines() if line.strip()]
    assert len(rows) == 50 and np.allclose(np.sum(rows, axis=1), 1, atol=1e-5)
    assert np.asarray(rows[:5]) == pytest.approx(mixtures, abs=1e-5)
