"""Races between a job's end and the requests about it, and a slot that outlives a failed
final report: the real LocalExecutor and TrainingService on a tiny job module."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from opensage.errors import ValidationException
from opensage.runner import local
from opensage.runner.local import LocalExecutor, Outcome, TrainingSpec
from opensage.services import kinds
from opensage.services.training import definition
from opensage.services.wiring import Services, build_services
from opensage.settings import Settings
from opensage.store.resources import Resource

BUCKET = "race-bucket"
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
JOB = '''
import pathlib, sys, time
if sys.argv[1:] == ["train"]:
    time.sleep(0.5)
    pathlib.Path("model/model.txt").write_text("trained")
    print("done")
'''
TERMINAL = ("Completed", "Failed", "Stopped")


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    path = tmp_path / "mods"
    path.mkdir()
    (path / "quick_job.py").write_text(JOB)
    (path / "slow_job.py").write_text(JOB.replace("time.sleep(0.5)", "time.sleep(60)"))
    return path


@pytest.fixture
def backend(tmp_path: Path, modules: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """A real backend whose jobs run ``quick_job`` (0.5 s) in one slot."""
    backend = build_services(Settings(data_dir=tmp_path / "data", port=0, job_slots=1,
                                      stop_grace_seconds=1, preload_algorithms=False))
    backend.context.objects.create_bucket(BUCKET)

    def quick_spec(job: Resource) -> TrainingSpec:
        spec = definition.training_spec(job.body, job.internal,
                                        region=backend.context.settings.region)
        module = "slow_job" if job.name.startswith("slow") else "quick_job"
        return dataclasses.replace(spec, module=module, channels=[],
                                   environment={"PYTHONPATH": str(modules)})

    monkeypatch.setattr(backend.training, "_spec", quick_spec)
    monkeypatch.setattr(local, "REPORT_RETRY_DELAYS", (0.01, 0.02, 0.04), raising=False)
    backend.training.executor.start()
    yield backend
    backend.training.executor.shutdown()
    backend.context.db.dispose()


def request(name: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/opensage",
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "HyperParameters": {"objective": "reg:squarederror", "num_round": "1"},
    }


def wait_status(backend: Services, name: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = str(backend.training.describe(name)["TrainingJobStatus"])
        if status in TERMINAL:
            return status
        assert time.monotonic() < deadline, f"{name} is still {status}"
        time.sleep(0.02)


def ended(backend: Services, name: str) -> bool:
    row = backend.context.resources.get(kinds.TRAINING_JOB.name, name)
    return row is not None and str(row.status) in TERMINAL


class _Events:
    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str]] = []
        self.done = threading.Semaphore(0)

    def advance(self, name: str, status: str, message: str | None = None) -> None:
        pass

    def metrics(self, name: str, values: list[tuple[str, float, float]]) -> None:
        pass

    def logs(self, name: str, stream: str, events: list[tuple[int, str]]) -> None:
        pass

    def finished(self, name: str, outcome: Outcome) -> None:
        self.outcomes.append((name, outcome.status))
        self.done.release()

    def stop_requested(self, name: str) -> bool:
        return False


def test_a_stop_after_the_job_ended_does_not_reach_a_later_job_of_that_name(
        tmp_path: Path, modules: Path) -> None:
    store = build_services(Settings(data_dir=tmp_path / "data", port=0,
                                    preload_algorithms=False)).context.objects
    store.create_bucket(BUCKET)
    events = _Events()
    executor = LocalExecutor(tmp_path / "jobs", store, events, slots=1, stop_grace_seconds=1)
    spec = TrainingSpec(
        name="reused", arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/reused",
        module="quick_job", unsupported_reason=None, hyperparameters={}, channels=[],
        input_mode="File", output_path=f"s3://{BUCKET}/out/", instance_type="ml.m5.large",
        instance_count=1, max_runtime=60, region="us-east-1",
        environment={"PYTHONPATH": str(modules)})
    executor.start()
    try:
        executor.submit(spec)
        assert events.done.acquire(timeout=30)
        time.sleep(0.2)  # the slot has let go of the run
        executor.stop("reused")  # arrives after the run ended: there is nothing to stop
        executor.interrupt("reused")
        executor.submit(spec)  # the same name again (after a reset, say)
        assert events.done.acquire(timeout=30)
    finally:
        executor.shutdown()
    assert events.outcomes == [("reused", "Completed"), ("reused", "Completed")]


def wait_secondary(backend: Services, name: str, wanted: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while backend.training.describe(name)["SecondaryStatus"] != wanted:
        assert time.monotonic() < deadline, backend.training.describe(name)["SecondaryStatus"]
        time.sleep(0.01)


def test_a_stop_racing_the_end_of_a_job_wins_and_its_late_request_reaches_no_later_job(
        backend: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stop is recorded (InProgress -> Stopping) just as the job ends, and its request to
    the executor arrives only once a new job of the same name runs (after a reset): the first
    job reads Stopped, and the late request does not stop the new one."""
    service = backend.training
    real_nudge = service.executor.stop
    release = threading.Event()
    nudged: list[str] = []

    def late_nudge(name: str) -> None:
        assert release.wait(30)
        nudged.append(name)
        real_nudge(name)

    answers: list[str] = []

    def stop(name: str) -> None:
        try:
            service.stop(name)
            answers.append("accepted")
        except ValidationException as refused:
            answers.append(refused.message)

    stopper = threading.Thread(target=stop, args=("racer",))
    real_advance = service.advance

    def advance(name: str, status: str, message: str | None = None) -> None:
        real_advance(name, status, message)
        if status == "Uploading":  # the process has exited: the job is ending
            stopper.start()
            deadline = time.monotonic() + 10
            while backend.context.resources.get(kinds.TRAINING_JOB.name, name).status \
                    != "Stopping":  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the stop was not recorded"
                time.sleep(0.01)

    monkeypatch.setattr(service.executor, "stop", late_nudge)
    monkeypatch.setattr(service, "advance", advance)  # the slot reports through the service
    service.create(request("racer"))
    assert wait_status(backend, "racer") == "Stopped"
    assert [to for _, to, _ in backend.context.resources.transitions(
        kinds.TRAINING_JOB.name, "racer")] == ["Stopping", "Stopped"]

    monkeypatch.setattr(service, "advance", real_advance)
    backend.reset()  # the name is free again
    backend.context.objects.create_bucket(BUCKET)
    service.create(request("racer"))
    wait_secondary(backend, "racer", "Training")
    release.set()  # the first stop's request reaches the executor only now
    stopper.join(10)
    assert answers == ["accepted"] and nudged == ["racer"]
    assert wait_status(backend, "racer") == "Completed"


def test_a_stop_after_the_job_ended_is_refused_and_changes_nothing(backend: Services) -> None:
    backend.training.create(request("done"))
    assert wait_status(backend, "done") == "Completed"
    before = backend.training.describe("done")
    with pytest.raises(ValidationException, match="is in status Completed"):
        backend.training.stop("done")
    assert backend.training.describe("done") == before


def test_a_stop_answered_by_another_server_stops_the_job_where_it_runs(
        backend: Services, tmp_path: Path) -> None:
    """Two servers on one database: the one that answers StopTrainingJob does not run the
    job; the one that runs it sees the row go Stopping and stops it."""
    other = build_services(Settings(
        data_dir=tmp_path / "other", port=0, preload_algorithms=False,
        db_url=backend.context.settings.database_url))
    try:
        backend.training.create(request("slow-1"))  # runs here, for a minute unless stopped
        wait_secondary(backend, "slow-1", "Training")
        started = time.monotonic()
        other.training.stop("slow-1")
        assert wait_status(backend, "slow-1", timeout=20) == "Stopped"
        assert time.monotonic() - started < 10
        assert other.training.describe("slow-1")["SecondaryStatus"] == "Stopped"
    finally:
        other.context.db.dispose()


def locked_on_terminal_writes(backend: Services, monkeypatch: pytest.MonkeyPatch,
                              failures: dict[str, int]) -> None:
    """The store refuses the first failures[name] writes that end that job, as SQLite does
    when another writer holds the database."""
    real_transition = backend.context.resources.transition

    def transition(kind: str, name: str, from_statuses: Any, to_status: str,
                   *args: Any, **kwargs: Any) -> Any:
        if to_status in TERMINAL and failures.get(name, 0) > 0:
            failures[name] -= 1
            raise OperationalError("UPDATE resources", {},
                                   sqlite3.OperationalError("database is locked"))
        return real_transition(kind, name, from_statuses, to_status, *args, **kwargs)

    monkeypatch.setattr(backend.context.resources, "transition", transition)


def test_b_a_final_report_that_fails_a_few_times_is_retried_and_the_slot_lives_on(
        backend: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    failures = {"first": 3}
    locked_on_terminal_writes(backend, monkeypatch, failures)
    backend.training.create(request("first"))
    backend.training.create(request("second"))  # queued behind it in the only slot
    assert wait_status(backend, "first") == "Completed"
    assert wait_status(backend, "second") == "Completed"
    assert failures == {"first": 0}


def test_b_a_final_report_that_keeps_failing_leaves_the_job_to_recovery_not_the_slot(
        backend: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    failures = {"doomed": 1000}
    locked_on_terminal_writes(backend, monkeypatch, failures)
    backend.training.create(request("doomed"))
    backend.training.create(request("next"))
    assert wait_status(backend, "next") == "Completed"  # the slot survived
    assert backend.training.describe("doomed")["TrainingJobStatus"] == "InProgress"
    failures["doomed"] = 0  # the database is free again; a restart runs the job again
    backend.training.recover()
    assert wait_status(backend, "doomed") == "Completed"
