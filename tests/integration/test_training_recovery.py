"""kill -9 of the server mid-job, then a restart: the job runs again and completes; no job
stays InProgress forever and its job process did not outlive the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import boto3
import sqlalchemy as sa
from alembic import command
from botocore.config import Config

from opensage.store.db import _alembic_config
from opensage.testing import VENV_BIN, server_process
from tests.integration.test_training_jobs import BUCKET, job_request, regression_csv


def clients(url: str):
    kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "k",
              "aws_secret_access_key": "s", "config": Config(retries={"max_attempts": 1})}
    return boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs)


def job_processes(name: str, under: Path | None = None) -> list[int]:
    """PIDs of processes running in the job's directory (of the server whose data directory
    is ``under``, when given)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if cwd.endswith(f"/jobs/training/{name}") and (
                    under is None or cwd.startswith(f"{under.resolve()}/")):
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


def test_a_job_whose_runner_state_was_moved_to_internal_by_the_upgrade_runs_again(
        tmp_path: Path):
    """A data directory written before revision 0004 (the runner's state inside the
    document), upgraded on restart: 0004 moves that state to ``internal``, and recovery must
    still find the module to run there."""
    with server_process(tmp_path) as (url, _proc):
        sm, s3 = clients(url)
        s3.create_bucket(Bucket=BUCKET)
        for channel, seed in (("train", 1), ("validation", 2)):
            s3.put_object(Bucket=BUCKET, Key=f"data/{channel}/part.csv",
                          Body=regression_csv(2000, seed)[0])
        sm.create_training_job(**job_request("upgraded", HyperParameters={
            "objective": "reg:squarederror", "num_round": "400", "max_depth": "8",
            "eta": "0.05"}))
        deadline = time.monotonic() + 30
        while sm.describe_training_job(TrainingJobName="upgraded")["SecondaryStatus"] != \
                "Training":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    # The server stopped with the job InProgress. Take the database back to 0003, as an
    # older opensage left it: the runner's state goes back into the document.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'opensage.db'}")
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0003")
        body = json.loads(conn.execute(sa.text(
            "SELECT body FROM resources WHERE name = 'upgraded'")).scalar_one())
    engine.dispose()
    assert body["TrainingJobStatus"] == "InProgress" and body["OpensageRunner"]["module"]
    subprocess.run([str(VENV_BIN / "opensage"), "db", "upgrade", "--data-dir", str(tmp_path)],
                   check=True, capture_output=True)  # as its user does: 0004 moves it out

    with server_process(tmp_path) as (url, _proc):
        sm, _ = clients(url)
        deadline = time.monotonic() + 90
        while True:
            job = sm.describe_training_job(TrainingJobName="upgraded")
            if job["TrainingJobStatus"] != "InProgress":
                break
            assert time.monotonic() < deadline, job["SecondaryStatus"]
            time.sleep(0.1)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        assert "Restarting" in [t["Status"] for t in job["SecondaryStatusTransitions"]]
        assert "OpensageRunner" not in job
