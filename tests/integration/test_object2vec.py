"""The Object2Vec built-in, in the builtin-torch environment, through boto3: it learns a pair
relation from JSON lines token sequences, logs validation/test accuracy, serves pair scores and
encoder embeddings, and fails a job on a token outside the vocabulary naming the line."""

from __future__ import annotations

import json

import numpy as np

from opensage.sdk import fast_polling
from tests.integration.builtins import deploy, invoke, metrics, train
from tests.integration.conftest import ROLE, NetworkGuard

VOCAB, GROUPS = 40, 4  # tokens 1..39; group g owns tokens g*10 .. g*10+9 (0 is padding)


def pairs(n: int, seed: int) -> list[dict]:
    """label 1 when in0 and in1 are drawn from the same token group."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = int(rng.integers(GROUPS))
        same = bool(rng.integers(2))
        b = a if same else int((a + rng.integers(1, GROUPS)) % GROUPS)

        def seq(g: int) -> list[int]:
            return [int(t) for t in rng.integers(max(g * 10, 1), g * 10 + 10,
                                                 rng.integers(3, 8))]
        out.append({"label": int(same), "in0": seq(a), "in1": seq(b)})
    return out


def lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


HPS = {"enc0_max_seq_len": 10, "enc0_vocab_size": VOCAB, "enc0_network": "pooled_embedding",
       "enc0_token_embedding_dim": 16, "enc_dim": 16, "mlp_dim": 32, "mlp_activation": "relu",
       "epochs": 15, "learning_rate": 0.01, "mini_batch_size": 32,
       "early_stopping_patience": 5}


def test_object2vec_learns_pairs_serves_scores_and_embeddings(sm, s3, client):
    job = train(sm, s3, "object2vec", HPS,
                {"train": (lines(pairs(600, 1)), "application/jsonlines"),
                 "validation": (lines(pairs(100, 2)), "application/jsonlines"),
                 "test": (lines(pairs(100, 3)), "application/jsonlines")}, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    assert found["test:accuracy"] >= 0.9, found
    assert "validation:cross_entropy" in found and "train:loss" in found

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "object2vec", job, timeout=120)
    probe = pairs(20, 4)
    body, content_type = invoke(runtime, endpoint, json.dumps(
        {"instances": [{"in0": p["in0"], "in1": p["in1"]} for p in probe]}), "application/json")
    assert content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    assert all(abs(sum(p["scores"]) - 1) < 1e-5 for p in predictions)
    correct = sum(p["predicted_label"] == q["label"] for p, q in zip(predictions, probe,
                                                                      strict=True))
    assert correct >= 18
    body, _ = invoke(runtime, endpoint, lines([{"in0": p["in0"]} for p in probe[:3]]),
                     "application/jsonlines", "application/jsonlines")
    embeddings = [json.loads(line)["embeddings"] for line in body.decode().splitlines()]
    assert len(embeddings) == 3 and all(len(e) == 16 for e in embeddings)


def test_object2vec_token_outside_the_vocabulary_fails_naming_the_line(sm, s3):
    records = pairs(30, 5)
    records[6]["in1"] = [3, 99]
    job = train(sm, s3, "object2vec", {**HPS, "epochs": 1},
                {"train": (lines(records), "application/jsonlines")})
    assert job["TrainingJobStatus"] == "Failed"
    assert "line 7" in job["FailureReason"] and "token id 99" in job["FailureReason"]


def test_sdk_object2vec_estimator_fits_deploys_predicts_and_batch_transforms(
        sdk_env: NetworkGuard):
    import sagemaker
    from sagemaker.amazon.amazon_estimator import RecordSet
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import JSONSerializer

    session = sagemaker.Session()
    bucket = session.default_bucket()
    uris = {}
    for channel, (n, seed) in {"train": (600, 11), "validation": (100, 12)}.items():
        uris[channel] = session.upload_string_as_file_body(
            lines(pairs(n, seed)).decode(), bucket, f"o2v-sdk/{channel}/pairs.jsonl")
    assert sagemaker.image_uris.retrieve("object2vec", "us-east-1").endswith("/object2vec:1")
    estimator = sagemaker.Object2Vec(
        role=ROLE, instance_count=1, instance_type="ml.m5.large", sagemaker_session=session,
        epochs=15, enc0_max_seq_len=10, enc0_vocab_size=VOCAB,
        enc0_network="pooled_embedding", enc0_token_embedding_dim=16, enc_dim=16, mlp_dim=32,
        mlp_activation="relu", learning_rate=0.01, early_stopping_patience=5)
    with fast_polling(factor=100):
        # RecordSets (what the SDK's first-party fit takes); no ContentType: JSON lines
        estimator.fit([RecordSet(uri.rsplit("/", 1)[0] + "/", num_records=600,
                                 feature_dim=VOCAB, s3_data_type="S3Prefix", channel=channel,
                                 distribution="FullyReplicated")
                       for channel, uri in uris.items()], mini_batch_size=32, logs=False)
        predictor = estimator.deploy(1, "ml.m5.large", serializer=JSONSerializer(),
                                     deserializer=JSONDeserializer())
    probe = pairs(20, 13)
    try:
        answer = predictor.predict({"instances": [{"in0": p["in0"], "in1": p["in1"]}
                                                  for p in probe]})
    finally:
        with fast_polling(factor=100):
            predictor.delete_endpoint()
    labels = [p["predicted_label"] for p in answer["predictions"]]
    assert sum(a == p["label"] for a, p in zip(labels, probe, strict=True)) >= 18

    source = session.upload_string_as_file_body(
        lines([{"in0": p["in0"], "in1": p["in1"]} for p in probe]).decode(), bucket,
        "o2v-sdk/transform/in/pairs.jsonl")
    transformer = estimator.transformer(1, "ml.m5.large", accept="application/jsonlines",
                                        strategy="MultiRecord", assemble_with="Line",
                                        output_path=f"s3://{bucket}/o2v-sdk/transform/out")
    with fast_polling(factor=100):
        transformer.transform(source.rsplit("/", 1)[0] + "/",
                              content_type="application/jsonlines", split_type="Line",
                              wait=True, logs=False)
    out = session.read_s3_file(bucket, "o2v-sdk/transform/out/pairs.jsonl.out")
    transformed = [json.loads(line)["predicted_label"] for line in out.splitlines()
                   if line.strip()]
    assert transformed == labels
