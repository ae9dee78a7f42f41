"""kill -9 of the server mid-job, then a restart: the job runs again and completes; no job
stays InProgress forever and its job process did not outlive the server."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import boto3
from botocore.config import Config

from opensage.testing import server_process
from tests.integration.test_training_jobs import BUCKET, job_request, regression_csv


def clients(url: str):
    kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "k",
              "aws_secret_access_key": "s", "config": Config(retries={"max_attempts": 1})}
    return boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs)


def job_processes(name: str) -> list[int]:
    """PIDs of processes running in the job's directory."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if cwd.endswith(f"/jobs/training/{name}"):
                found.append(int(pid))
    return found


def test_kill_9_mid_job_then_restart_completes_the_job(tmp_path: Path):
    with server_process(tmp_path) as (url, proc):
        sm, s3 = clients(url)
        s3.create_bucket(Bucket=BUCKET)
        for channel, seed in (("train", 1), ("validation", 2)):
            s3.put_object(Bucket=BUCKET, Key=f"data/{channel}/part.csv",
                          Body=regression_csv(2000, seed)[0])
        sm.create_training_job(**job_request("survivor", HyperParameters={
            "objective": "reg:squarederror", "num_round": "400", "max_depth": "8",
            "eta": "0.05"}))
        deadline = time.monotonic() + 30
        while sm.describe_training_job(TrainingJobName="survivor")["SecondaryStatus"] != \
                "Training":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while not job_processes("survivor"):  # Training is recorded just before the start
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 10
    while job_processes("survivor"):  # the job dies with the server (PR_SET_PDEATHSIG)
        assert time.monotonic() < deadline, "the job outlived the server"
        time.sleep(0.05)

    with server_process(tmp_path) as (url, _proc):
        sm, _ = clients(url)
        deadline = time.monotonic() + 90
        while True:
            job = sm.describe_training_job(TrainingJobName="survivor")
            if job["TrainingJobStatus"] != "InProgress":
                break
            assert time.monotonic() < deadline, job["SecondaryStatus"]
            time.sleep(0.1)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
        assert "Restarting" in statuses and statuses[-1] == "Completed"
