"""Training jobs through boto3 against a real server: real subprocess jobs on small data."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import time
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/opensage"
BUCKET = "training-bucket"


def regression_csv(rows: int = 400, seed: int = 0) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    y = 3 * x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 2] + rng.normal(scale=0.1, size=rows)
    table = np.column_stack([y, x])
    buf = io.StringIO()
    np.savetxt(buf, table, delimiter=",", fmt="%.6f")
    return buf.getvalue().encode(), x, y


def job_request(name: str, **overrides: Any) -> dict[str, Any]:
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [
            {"ChannelName": channel, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/{channel}",
                "S3DataDistributionType": "FullyReplicated"}}}
            for channel in ("train", "validation")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": {"objective": "reg:squarederror", "num_round": "20",
                            "max_depth": "3", "eta": "0.3"},
    }
    request.update(overrides)
    return request


def wait_for(sm, name: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{name} did not finish: {job['TrainingJobStatus']}")


def test_xgboost_job_trains_and_uploads_a_model_that_predicts(sm, s3, client, data):
    import xgboost

    arn = sm.create_training_job(**job_request("xgb-1"))["TrainingJobArn"]
    assert arn.endswith(":training-job/xgb-1")
    job = wait_for(sm, "xgb-1")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all(t["StatusMessage"] for t in job["SecondaryStatusTransitions"])
    assert job["OutputDataConfig"]["KmsKeyId"] == ""
    assert job["TrainingTimeInSeconds"] >= 1 and job["BillableTimeInSeconds"] >= 1
    assert job["TrainingEndTime"] >= job["TrainingStartTime"]
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/output/xgb-1/output/model.tar.gz"

    blob = s3.get_object(Bucket=BUCKET, Key="output/xgb-1/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        assert "xgboost-model" in tar.getnames()
        raw = tar.extractfile("xgboost-model").read()
    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    predictions = booster.predict(xgboost.DMatrix(data["x_val"]))
    rmse = float(np.sqrt(np.mean((predictions - data["y_val"]) ** 2)))
    assert rmse < 0.6 * float(np.std(data["y_val"]))  # it learned the signal

    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert "validation:rmse" in metrics and "train:rmse" in metrics
    assert metrics["validation:rmse"] == pytest.approx(rmse, rel=1e-3)

    logs = client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix="xgb-1/")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith("xgb-1/algo-1-")
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"],
                                 startFromHead=True)["events"]
    assert any("validation-rmse" in e["message"] for e in events)

    series = client("cloudwatch").get_metric_statistics(
        Namespace="/aws/sagemaker/TrainingJobs", MetricName="validation:rmse",
        Dimensions=[{"Name": "TrainingJobName", "Value": "xgb-1"}],
        StartTime=job["CreationTime"] - dt.timedelta(minutes=1),
        EndTime=job["TrainingEndTime"] + dt.timedelta(minutes=1), Period=60,
        Statistics=["Minimum", "SampleCount"])["Datapoints"]
    assert sum(d["SampleCount"] for d in series) == 20  # one value per boosting round
    assert min(d["Minimum"] for d in series) <= metrics["validation:rmse"] + 1e-9

    listed = sm.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == ["xgb-1"]
    assert sm.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"] == []


def test_duplicate_name_is_resource_in_use(sm, data):
    sm.create_training_job(**job_request("twice"))
    with pytest.raises(ClientError) as exc:
        sm.create_training_job(**job_request("twice"))
    assert exc.value.response["Error"]["Code"] == "ResourceInUse"
    wait_for(sm, "twice")


@pytest.mark.parametrize("hyperparameters, fragment", [
    ({"num_round": "10", "max_depth": "-3"}, "max_depth"),
    ({"num_round": "10", "not_a_parameter": "1"}, "not_a_parameter"),
    ({"max_depth": "3"}, "num_round"),
    ({"num_round": "10", "objective": "reg:nonsense"}, "objective"),
])
def test_bad_hyperparameters_are_refused_before_anything_runs(sm, data, hyperparameters,
                                                              fragment):
    with pytest.raises(ClientError) as exc:
        sm.create_training_job(**job_request("bad-hp", HyperParameters=hyperparameters))
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert fragment in exc.value.response["Error"]["Message"]
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []


def test_missing_data_fails_the_job_with_a_reason_naming_it(sm, data):
    request = job_request("no-data")
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = (
        f"s3://{BUCKET}/data/nothing-here")
    sm.create_training_job(**request)
    job = wait_for(sm, "no-data")
    assert job["TrainingJobStatus"] == "Failed"
    assert f"s3://{BUCKET}/data/nothing-here" in job["FailureReason"]
    assert job["SecondaryStatusTransitions"][-1]["Status"] == "Failed"


def test_corrupt_csv_fails_the_job_readably(sm, s3, data):
    s3.put_object(Bucket=BUCKET, Key="bad/train/x.csv", Body=b"1,2,3\nnot,a,number\n\x00\x01")
    request = job_request("corrupt")
    request["InputDataConfig"] = [{
        "ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/bad/train"}}}]
    sm.create_training_job(**request)
    job = wait_for(sm, "corrupt")
    assert job["TrainingJobStatus"] == "Failed"
    assert "x.csv" in job["FailureReason"] or "csv" in job["FailureReason"].lower()
    assert "Traceback" not in job["FailureReason"]


def test_own_image_without_a_container_engine_is_refused_with_a_clear_reason(sm, s3, data):
    """The session's server has no container engine: an image that is neither a built-in nor
    a framework image is refused at once, by CreateTrainingJob and by CreateModel."""
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:latest"
    request = job_request("custom", AlgorithmSpecification={
        "TrainingImage": image, "TrainingInputMode": "File"}, HyperParameters={})
    with pytest.raises(ClientError) as exc:
        sm.create_training_job(**request)
    error = exc.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert image in error["Message"] and "no container engine is reachable" in error["Message"]
    assert "framework images" in error["Message"]  # what needs none
    with pytest.raises(ClientError):
        sm.describe_training_job(TrainingJobName="custom")  # no row was written
    with pytest.raises(ClientError) as exc:
        sm.create_model(ModelName="own", PrimaryContainer={"Image": image},
                        ExecutionRoleArn=ROLE)
    error = exc.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "no container engine is reachable" in error["Message"]
    # a built-in and a framework image need none
    sm.create_model(ModelName="builtin", PrimaryContainer={"Image": XGB_IMAGE},
                    ExecutionRoleArn=ROLE)


def test_stop_and_max_runtime(sm, data):
    slow = {"objective": "reg:squarederror", "num_round": "1000000", "max_depth": "10",
            "eta": "0.01"}
    sm.create_training_job(**job_request("to-stop", HyperParameters=slow))
    deadline = time.monotonic() + 30
    while sm.describe_training_job(TrainingJobName="to-stop")["SecondaryStatus"] != "Training":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sm.stop_training_job(TrainingJobName="to-stop")
    assert sm.describe_training_job(TrainingJobName="to-stop")["TrainingJobStatus"] in (
        "Stopping", "Stopped")
    job = wait_for(sm, "to-stop")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    with pytest.raises(ClientError) as exc:
        sm.stop_training_job(TrainingJobName="to-stop")
    assert exc.value.response["Error"]["Code"] == "ValidationException"

    sm.create_training_job(**job_request("too-long", HyperParameters=slow,
                                         StoppingCondition={"MaxRuntimeInSeconds": 1}))
    job = wait_for(sm, "too-long")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped",
                                                                 "MaxRuntimeExceeded")


def test_describe_missing_job(sm):
    with pytest.raises(ClientError) as exc:
        sm.describe_training_job(TrainingJobName="ghost")
    assert exc.value.response["Error"] == {"Code": "ValidationException",
                                           "Message": "Requested resource not found."}


def test_search_is_a_leaderboard_of_runs(sm, data):
    for depth in (1, 2, 4):
        sm.create_training_job(**job_request(
            f"depth-{depth}", Tags=[{"Key": "sweep", "Value": "depth" if depth > 1 else "x"}],
            HyperParameters={"objective": "reg:squarederror", "num_round": "10",
                             "max_depth": str(depth)}))
    for depth in (1, 2, 4):
        assert wait_for(sm, f"depth-{depth}")["TrainingJobStatus"] == "Completed"

    board = sm.search(Resource="TrainingJob", SortBy="Metrics.validation:rmse",
                      SortOrder="Ascending")["Results"]
    rmse = [next(m["Value"] for m in r["TrainingJob"]["FinalMetricDataList"]
                 if m["MetricName"] == "validation:rmse") for r in board]
    assert rmse == sorted(rmse) and len(rmse) == 3
    assert board[0]["TrainingJob"]["TrainingJobName"] == "depth-4"  # deeper fits this data best

    deep = sm.search(Resource="TrainingJob", SearchExpression={"Filters": [
        {"Name": "HyperParameters.max_depth", "Operator": "GreaterThanOrEqualTo", "Value": "2"},
        {"Name": "TrainingJobStatus", "Operator": "Equals", "Value": "Completed"},
        {"Name": "Tags.sweep", "Operator": "Equals", "Value": "depth"}]})["Results"]
    assert sorted(r["TrainingJob"]["TrainingJobName"] for r in deep) == ["depth-2", "depth-4"]
    assert deep[0]["TrainingJob"]["Tags"]

    either = sm.search(Resource="TrainingJob", SearchExpression={"Operator": "Or", "Filters": [
        {"Name": "TrainingJobName", "Operator": "Equals", "Value": "depth-1"},
        {"Name": "Metrics.validation:rmse", "Operator": "LessThan", "Value": "0"}]})["Results"]
    assert [r["TrainingJob"]["TrainingJobName"] for r in either] == ["depth-1"]

    first = sm.search(Resource="TrainingJob", MaxResults=2, SortBy="TrainingJobName",
                      SortOrder="Ascending")
    rest = sm.search(Resource="TrainingJob", MaxResults=2, SortBy="TrainingJobName",
                     SortOrder="Ascending", NextToken=first["NextToken"])
    names = [r["TrainingJob"]["TrainingJobName"] for r in first["Results"] + rest["Results"]]
    assert names == ["depth-1", "depth-2", "depth-4"] and "NextToken" not in rest
