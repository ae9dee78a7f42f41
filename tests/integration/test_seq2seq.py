"""The seq2seq built-in, in the builtin-torch environment, through boto3: it learns to reverse
token sequences from RecordIO-protobuf token ids and the vocab channel, logs validation
perplexity/accuracy/bleu per epoch, answers held-out sentences by beam search (JSON and
RecordIO-protobuf) with near-perfect BLEU, batch-transforms, and fails a job on a missing
vocabulary or a token id outside it, naming the file or record."""

from __future__ import annotations

import json
import math
import time
from collections import Counter

import numpy as np

from opensage.data.recordio import Record, Tensor, encode_records, iter_records
from tests.integration.builtins import BUCKET, deploy, invoke, metrics, train

WORDS = [f"w{i}" for i in range(12)]
VOCAB = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
VOCAB_FILES = {"vocab.src.json": json.dumps(VOCAB).encode(),
               "vocab.trg.json": json.dumps(VOCAB).encode()}


def sentences(n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(4, 4 + len(WORDS), rng.integers(3, 8))]
            for _ in range(n)]


def records(sources: list[list[int]], targets: list[list[int]] | None = None) -> bytes:
    return encode_records(
        Record(features={"values": Tensor(np.asarray(s, dtype=np.int64), kind="int32")},
               label={} if targets is None else
               {"values": Tensor(np.asarray(t, dtype=np.int64), kind="int32")})
        for s, t in zip(sources, targets or [[]] * len(sources), strict=True))


def bleu(hypotheses: list[list[str]], references: list[list[str]]) -> float:
    """Corpus BLEU-4 with brevity penalty, in [0, 1]."""
    matches, totals = [0] * 4, [0] * 4
    for hyp, ref in zip(hypotheses, references, strict=True):
        for n in range(1, 5):
            h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            r = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if min(matches) == 0:
        return 0.0
    hyp_len, ref_len = sum(map(len, hypotheses)), sum(map(len, references))
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals,
                                                                     strict=True)) / 4)


HPS = {"rnn_num_hidden": 64, "num_embed_source": 32, "num_embed_target": 32,
       "rnn_attention_type": "mlp", "rnn_cell_type": "lstm", "batch_size": 32,
       # 1000 training sentences, 7 epochs: the best (epoch 6) has validation accuracy 0.999,
       # BLEU 0.996, perplexity 1.014, held-out BLEU 0.992 (2000 sentences, 12 epochs: 0.998,
       # 0.997, 1.007, in twice the time)
       "learning_rate": 0.005, "max_num_epochs": 7, "checkpoint_frequency_num_batches": 1000,
       "checkpoint_threshold": 4, "bleu_sample_size": 100, "beam_size": 3,
       "max_seq_len_source": 10, "max_seq_len_target": 10}


def _channels(train_src, validation_src):
    return {"train": (records(train_src, [s[::-1] for s in train_src]),
                      "application/x-recordio-protobuf"),
            "validation": (records(validation_src, [s[::-1] for s in validation_src]),
                           "application/x-recordio-protobuf"),
            "vocab": (VOCAB_FILES, "application/json")}


def words(ids: list[int]) -> str:
    return " ".join(WORDS[i - 4] for i in ids)


def test_seq2seq_learns_to_reverse_serves_beam_search_and_batch_transforms(sm, s3, client):
    job = train(sm, s3, "seq2seq", HPS, _channels(sentences(1000, 1), sentences(200, 2)),
                timeout=600)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    print(f"seq2seq final metrics: {found}")
    assert found["validation:accuracy"] >= 0.9, found
    assert found["validation:bleu"] >= 0.9, found
    assert found["validation:perplexity"] < 1.5, found
    logs = client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=job["TrainingJobName"])
    text = "\n".join(e["message"] for s in streams["logStreams"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"])["events"])
    for metric in ("perplexity <loss>", "accuracy <score>", "bleu <score>"):
        assert f"#quality_metric: host=algo-1, epoch=0, validation {metric}=" in text

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "seq2seq", job, timeout=120)
    held_out = sentences(60, 3)
    body, content_type = invoke(runtime, endpoint, json.dumps(
        {"instances": [{"data": words(s)} for s in held_out]}), "application/json")
    assert content_type == "application/json"
    answers = [p["target"].split() for p in json.loads(body)["predictions"]]
    references = [words(s[::-1]).split() for s in held_out]
    score = bleu(answers, references)
    print(f"seq2seq held-out BLEU (reverse task, 60 sentences): {score:.4f}")
    assert score >= 0.9
    body, _ = invoke(runtime, endpoint, json.dumps(
        {"instances": [{"data": words(held_out[0])}],
         "configuration": {"attention_matrix": "true"}}), "application/json")
    [first] = json.loads(body)["predictions"]
    assert first["target"].split() == references[0]
    matrix = np.array(first["matrix"])
    assert matrix.shape == (len(held_out[0]) + 1, len(held_out[0]))  # + </s>
    assert np.allclose(matrix.sum(axis=1), 1.0, atol=1e-4)
    body, content_type = invoke(runtime, endpoint, records(held_out[:10]),
                                "application/x-recordio-protobuf")
    assert content_type == "application/x-recordio-protobuf"
    targets = [r.features["target"].values.tolist() for r in iter_records(body)]
    assert words_match(targets, held_out[:10]) >= 9
    try:
        invoke(runtime, endpoint, records([[4, 99]]), "application/x-recordio-protobuf")
        raise AssertionError("a token outside the vocabulary was accepted")
    except runtime.exceptions.ModelError as e:
        assert "record 1" in str(e) and "99" in str(e)

    # batch transform of a JSON document (SplitType None)
    name = job["TrainingJobName"]
    s3.put_object(Bucket=BUCKET, Key=f"{name}/transform/in/batch.json", Body=json.dumps(
        {"instances": [{"data": words(s)} for s in held_out[:20]]}).encode())
    sm.create_transform_job(
        TransformJobName=name, ModelName=name,
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{name}/transform/in/"}},
            "ContentType": "application/json", "SplitType": "None"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/{name}/transform/out/",
                         "Accept": "application/json"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    status = sm.describe_transform_job(TransformJobName=name)
    while status["TransformJobStatus"] in ("InProgress", "Stopping"):
        time.sleep(0.1)
        status = sm.describe_transform_job(TransformJobName=name)
    assert status["TransformJobStatus"] == "Completed", status.get("FailureReason")
    out = s3.get_object(Bucket=BUCKET, Key=f"{name}/transform/out/batch.json.out")["Body"]
    transformed = [p["target"] for p in json.loads(out.read())["predictions"]]
    assert transformed == [" ".join(a) for a in answers[:20]]


def words_match(targets: list[list[int]], sources: list[list[int]]) -> int:
    return sum(t == s[::-1] for t, s in zip(targets, sources, strict=True))


def test_seq2seq_bad_inputs_fail_the_job_naming_the_file_or_record(sm, s3):
    few = sentences(20, 4)
    channels = _channels(few, few)
    job = train(sm, s3, "seq2seq", {**HPS, "max_num_epochs": 1},
                {**channels, "vocab": ({"vocab.src.json": VOCAB_FILES["vocab.src.json"]},
                                       "application/json")})
    assert job["TrainingJobStatus"] == "Failed"
    assert "vocab.trg.json" in job["FailureReason"], job["FailureReason"]
    bad = [list(s) for s in few]
    bad[6] = [5, 40]
    job = train(sm, s3, "seq2seq", {**HPS, "max_num_epochs": 1},
                {**channels, "train": (records(bad, [s[::-1] for s in bad]),
                                       "application/x-recordio-protobuf")})
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert "record 7" in reason and "token id 40" in reason and "vocab.src.json" in reason


def test_seq2seq_bleu_sample_size_zero_decodes_nothing_unless_bleu_is_optimized(sm, s3, client):
    """SageMaker's ``bleu_sample_size`` is how many validation sentences are decoded for BLEU:
    0 (the default) decodes none, neither at checkpoints nor for the final metrics (it used to
    beam-search the whole validation set at the end); with ``optimized_metric`` bleu it decodes
    them all."""
    channels = _channels(sentences(200, 5), sentences(40, 6))
    plain = {**HPS, "max_num_epochs": 1, "bleu_sample_size": 0}
    job = train(sm, s3, "seq2seq", plain, channels)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    assert "validation:perplexity" in found and "validation:accuracy" in found, found
    assert "validation:bleu" not in found, found
    logs = client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=job["TrainingJobName"])
    text = "\n".join(e["message"] for s in streams["logStreams"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"])["events"])
    assert "validation perplexity <loss>=" in text
    assert "validation bleu" not in text

    job = train(sm, s3, "seq2seq", {**plain, "optimized_metric": "bleu"}, channels)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert 0.0 <= metrics(job)["validation:bleu"] <= 1.0
