"""Managed spot training: an interrupted job resumes from its checkpoints and reaches the same
quality as an uninterrupted one; MaxWaitTimeInSeconds is checked; billing shows the saving."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_training_jobs import BUCKET, job_request, regression_csv, wait_for

PARAMS = {"objective": "reg:squarederror", "num_round": "800", "max_depth": "6", "eta": "0.1"}


@pytest.fixture
def bigger_data(s3):
    for channel, seed in (("train", 1), ("validation", 2)):
        s3.put_object(Bucket=BUCKET, Key=f"data/{channel}/part.csv",
                      Body=regression_csv(3000, seed)[0])


def validation_rmse(job) -> float:
    return next(m["Value"] for m in job["FinalMetricDataList"]
                if m["MetricName"] == "validation:rmse")


def spot_request(name: str) -> dict:
    return job_request(name, HyperParameters=PARAMS, EnableManagedSpotTraining=True,
                       StoppingCondition={"MaxRuntimeInSeconds": 300,
                                          "MaxWaitTimeInSeconds": 600},
                       CheckpointConfig={"S3Uri": f"s3://{BUCKET}/checkpoints/{name}"})


def test_interrupted_spot_job_resumes_from_checkpoint(sm, s3, client, endpoint, bigger_data):
    sm.create_training_job(**job_request("on-demand", HyperParameters=PARAMS))
    reference = wait_for(sm, "on-demand", timeout=120)
    assert reference["TrainingJobStatus"] == "Completed"

    sm.create_training_job(**spot_request("spot"))
    deadline = time.monotonic() + 60
    while not s3.list_objects_v2(Bucket=BUCKET, Prefix="checkpoints/spot/").get("KeyCount"):
        assert time.monotonic() < deadline, "no checkpoint reached S3"
        time.sleep(0.1)
    hook = urllib.request.Request(f"{endpoint}/_opensage/training-jobs/spot/interrupt",
                                  method="POST")
    assert urllib.request.urlopen(hook).status == 200

    job = wait_for(sm, "spot", timeout=120)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses.index("Interrupted") < statuses.index("Restarting") < len(statuses) - 1
    assert validation_rmse(job) == pytest.approx(validation_rmse(reference), rel=0.02)
    assert job["BillableTimeInSeconds"] < job["TrainingTimeInSeconds"] or \
        job["TrainingTimeInSeconds"] == 1

    logs = client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix="spot/")["logStreams"]
    messages = [e["message"] for s in streams for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"],
        startFromHead=True)["events"]]
    assert any("Resuming from checkpoint" in m for m in messages)


def test_spot_needs_max_wait(sm, data):
    request = job_request("no-wait", EnableManagedSpotTraining=True,
                          StoppingCondition={"MaxRuntimeInSeconds": 600})
    with pytest.raises(ClientError) as exc:
        sm.create_training_job(**request)
    assert "MaxWaitTimeInSeconds" in exc.value.response["Error"]["Message"]
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []


def test_interrupt_hook_refuses_on_demand_jobs(sm, endpoint, data):
    sm.create_training_job(**job_request("plain"))
    hook = urllib.request.Request(f"{endpoint}/_opensage/training-jobs/plain/interrupt",
                                  method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(hook)
    assert exc.value.code == 400
    wait_for(sm, "plain")
