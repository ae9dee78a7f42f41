"""Built-in XGBoost with InstanceCount 2: one model trained by both hosts (XGBoost's
collective, the tracker on algo-1), each host reading its shard of a ShardedByS3Key
channel, of the same quality as the same data on one host."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import numpy as np
import pytest

from tests.integration.test_training_jobs import BUCKET, job_request, wait_for


def _classification(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    logit = 1.5 * x[:, 0] - x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + rng.normal(scale=0.8, size=rows)
    return x, (logit > 0).astype(float)


def _csv(x: np.ndarray, y: np.ndarray) -> bytes:
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([y, x]), delimiter=",", fmt="%.6f")
    return buf.getvalue().encode()


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _model(s3: Any, name: str) -> Any:
    import xgboost

    blob = s3.get_object(Bucket=BUCKET, Key=f"output/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        member = tar.extractfile("xgboost-model")
        assert member is not None
        booster = xgboost.Booster()
        booster.load_model(bytearray(member.read()))
    return booster


def _job(name: str, count: int, distribution: str) -> dict[str, Any]:
    channels = [{"ChannelName": channel, "ContentType": "text/csv", "DataSource": {
        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/dist/{channel}/",
                         "S3DataDistributionType": distribution if channel == "train"
                         else "FullyReplicated"}}} for channel in ("train", "validation")]
    return job_request(name, InputDataConfig=channels, ResourceConfig={
        "InstanceType": "ml.m5.large", "InstanceCount": count, "VolumeSizeInGB": 5},
        HyperParameters={"objective": "binary:logistic", "num_round": "30",
                         "max_depth": "4", "eta": "0.3", "eval_metric": "auc"})


@pytest.mark.parametrize("distribution", ["ShardedByS3Key", "FullyReplicated"])
def test_two_hosts_train_one_model_as_good_as_one_host(sm, s3, client, distribution):
    x, y = _classification(4000, seed=3)
    for part in range(2):  # one object per host for ShardedByS3Key
        s3.put_object(Bucket=BUCKET, Key=f"dist/train/part-{part}.csv",
                      Body=_csv(x[part::2], y[part::2]))
    x_val, y_val = _classification(2000, seed=4)
    s3.put_object(Bucket=BUCKET, Key="dist/validation/part-0.csv", Body=_csv(x_val, y_val))

    sm.create_training_job(**_job("xgb-one-host", 1, "FullyReplicated"))
    sm.create_training_job(**_job("xgb-two-hosts", 2, distribution))
    single, double = wait_for(sm, "xgb-one-host", 120), wait_for(sm, "xgb-two-hosts", 120)
    assert single["TrainingJobStatus"] == "Completed", single.get("FailureReason")
    assert double["TrainingJobStatus"] == "Completed", double.get("FailureReason")

    import xgboost

    matrix = xgboost.DMatrix(x_val)
    auc_one = _auc(_model(s3, "xgb-one-host").predict(matrix), y_val)
    auc_two = _auc(_model(s3, "xgb-two-hosts").predict(matrix), y_val)
    assert auc_one > 0.8
    assert abs(auc_two - auc_one) <= 0.002, (auc_one, auc_two)
    # the job's reported metric is the whole validation set's, from algo-1 only
    reported = {m["MetricName"]: m["Value"] for m in double["FinalMetricDataList"]}
    assert reported["validation:auc"] == pytest.approx(auc_two, abs=1e-4)
    logs = client("logs")
    streams = [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamNamePrefix="xgb-two-hosts/")["logStreams"]]
    assert sorted(s.split("/")[1].rsplit("-", 1)[0] for s in streams) == ["algo-1", "algo-2"]
    second = next(s for s in streams if "/algo-2-" in s)
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=second, startFromHead=True)["events"]
    assert any("as rank 1" in e["message"] for e in events)


def test_a_bad_shard_on_one_host_fails_the_job_with_that_hosts_reason(sm, s3):
    x, y = _classification(600, seed=5)
    s3.put_object(Bucket=BUCKET, Key="dist/train/part-0.csv", Body=_csv(x[:300], y[:300]))
    s3.put_object(Bucket=BUCKET, Key="dist/train/part-1.csv",  # labels 0..2: not binary
                  Body=_csv(x[300:], np.arange(300) % 3))
    s3.put_object(Bucket=BUCKET, Key="dist/validation/part-0.csv", Body=_csv(x[:100], y[:100]))
    sm.create_training_job(**_job("xgb-bad-shard", 2, "ShardedByS3Key"))
    job = wait_for(sm, "xgb-bad-shard", 120)
    assert job["TrainingJobStatus"] == "Failed"
    assert "label must be in (0, 1)" in job["FailureReason"], job["FailureReason"]
    assert "PeerFailure" not in job["FailureReason"]
