"""Fencing: a server whose run lease of a job was taken over by another server (this one was
cut from the database, or stalled, past the lease's time to live) stops the job here and
never records its end. The other server is played by the test: it writes the lease row as
another server's takeover would (its owner, renewed far ahead), in the server's own SQLite
database."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from opensage.testing import server_process
from tests.integration.test_multiserver import (
    deploy,
    invoke,
    quick_job,
    upload_data,
    wait_ended,
    wait_status,
)
from tests.integration.test_training_jobs import BUCKET, job_request
from tests.integration.test_training_recovery import clients, job_processes

OTHER = "another-host:0123456789abcdef"  # the server that took the job over


def long_job(name: str) -> dict[str, Any]:
    return job_request(name, HyperParameters={"objective": "reg:squarederror",
                                              "num_round": "100000", "max_depth": "8"})


def start_long_job(url: str, name: str) -> None:
    """A training job that runs until killed, with its process up."""
    upload_data(url)
    sm, _ = clients(url)
    sm.create_training_job(**long_job(name))
    wait_status(sm, name, "Training")


def wait_processes(name: str, under: Path, *, running: bool) -> None:
    deadline = time.monotonic() + 60
    while bool(job_processes(name, under=under)) != running:
        assert time.monotonic() < deadline, f"job processes of {name}: running={not running}"
        time.sleep(0.05)


def steal_run_lease(data_dir: Path, name: str) -> None:
    steal(data_dir, f"training-job/{name}/run")


def steal(data_dir: Path, key: str) -> None:
    """What another server's takeover writes: the lease is its own, renewed ahead (so this
    server's takeover loop does not take it back)."""
    with sqlite3.connect(data_dir / "opensage.db") as db:
        taken = db.execute("UPDATE leases SET owner = ?, expires = ? WHERE key = ?",
                           (OTHER, time.time() + 3600, key)).rowcount
    assert taken == 1


def lease_holder(data_dir: Path, name: str) -> str | None:
    with sqlite3.connect(data_dir / "opensage.db") as db:
        row = db.execute("SELECT owner FROM leases WHERE key = ?",
                         (f"training-job/{name}/run",)).fetchone()
    return None if row is None else str(row[0])


def wait_logged(output: list[str], *fragments: str) -> None:
    deadline = time.monotonic() + 60
    while not any(all(f in line for f in fragments) for line in list(output)):
        assert time.monotonic() < deadline, f"no log line with {fragments}"
        time.sleep(0.05)


def test_a_job_whose_run_lease_was_taken_over_is_killed_here_and_its_end_not_recorded(
        tmp_path: Path):
    """The lease keeper's next beat (a third of the 3 s time to live) finds the run lease
    another server's: the job's process is killed at once, nothing of its end is written."""
    output: list[str] = []
    name = "fenced-by-the-beat"
    with server_process(tmp_path, output=output,
                        env={"OPENSAGE_LEASE_TTL_SECONDS": "3"}) as (url, _proc):
        start_long_job(url, name)
        wait_processes(name, tmp_path, running=True)
        steal_run_lease(tmp_path, name)
        wait_processes(name, tmp_path, running=False)  # killed without being asked
        wait_logged(output, f"training job {name} ended here", "not recorded")
        sm, s3 = clients(url)
        job = sm.describe_training_job(TrainingJobName=name)
        assert job["TrainingJobStatus"] == "InProgress"  # as the other server has it
        assert job["SecondaryStatus"] == "Training"
        assert "TrainingEndTime" not in job
        assert lease_holder(tmp_path, name) == OTHER  # never given back nor taken back
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"output/{name}/")
        assert listed.get("KeyCount", 0) == 0  # no output of the killed run uploaded


def test_an_end_reached_after_the_lease_was_taken_over_is_not_recorded(tmp_path: Path):
    """The fence at the write: the lease is taken over between two beats (the time to live
    is long: no beat comes during the test) and the run ends here (asked to stop): before
    recording the end the server reads the lease, finds it another's, and drops the end."""
    output: list[str] = []
    name = "fenced-at-the-write"
    with server_process(tmp_path, output=output,
                        env={"OPENSAGE_LEASE_TTL_SECONDS": "600"}) as (url, _proc):
        start_long_job(url, name)
        wait_processes(name, tmp_path, running=True)
        steal_run_lease(tmp_path, name)
        sm, _ = clients(url)
        sm.stop_training_job(TrainingJobName=name)
        wait_processes(name, tmp_path, running=False)
        wait_logged(output, f"training job {name} ended here (Stopped)", "not recorded")
        job = sm.describe_training_job(TrainingJobName=name)
        assert job["TrainingJobStatus"] == "Stopping"  # the other server records Stopped
        assert "TrainingEndTime" not in job
        assert lease_holder(tmp_path, name) == OTHER


def test_an_endpoint_whose_serving_lease_was_taken_over_is_no_longer_served_here(
        tmp_path: Path):
    """The beat finds the serving lease another server's: the fleet here is retired (its
    workers drained, its directory removed) and the endpoint is no longer routed here."""
    name = "fenced-endpoint"
    with server_process(tmp_path, env={"OPENSAGE_LEASE_TTL_SECONDS": "3"}) as (url, _proc):
        upload_data(url)
        sm, _ = clients(url)
        sm.create_training_job(**quick_job(name))
        job = wait_ended(sm, name)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        deploy(sm, job, name)
        assert invoke(url, name)[1] == "AllTraffic"
        served = tmp_path / "endpoints" / name
        assert any(served.iterdir())
        steal(tmp_path, f"endpoint:{name}")
        deadline = time.monotonic() + 60
        while served.exists() and any(served.iterdir()):  # drained, then removed
            assert time.monotonic() < deadline, "the fleet still serves here"
            time.sleep(0.05)
        with pytest.raises(ClientError, match="not found"):
            invoke(url, name)  # the row names this server: the other one would forward
        assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"
        with sqlite3.connect(tmp_path / "opensage.db") as db:
            owner = db.execute("SELECT owner FROM leases WHERE key = ?",
                               (f"endpoint:{name}",)).fetchone()
        assert owner == (OTHER,)
