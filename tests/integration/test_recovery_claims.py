"""Recovery and reconcile see every row (no silent limit), and two servers on one database
never both re-run the same job (database leases)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from opensage.services.wiring import Services, build_services
from opensage.settings import Settings
from opensage.store.resources import ListQuery
from opensage.store.schema import resources


class Recorder:
    """An executor that only records what it was asked to run."""

    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(self, spec: Any) -> None:
        self.submitted.append(spec)


def backend_on(tmp_path: Path, name: str, db_url: str) -> Services:
    """A server's services (not started) on a shared database; its executor only records."""
    services = build_services(Settings(data_dir=tmp_path / name, port=0, db_url=db_url,
                                       preload_algorithms=False))
    services.training.executor = Recorder()  # type: ignore[assignment]
    services.training._spec = lambda job: job.name  # type: ignore[method-assign]
    return services


def submitted(services: Services) -> list[str]:
    executor = services.training.executor
    assert isinstance(executor, Recorder)
    return executor.submitted


def seed_training_jobs(backend: Services, count: int, status: str) -> None:
    secondary = "Stopping" if status == "Stopping" else "Training"
    with backend.context.db.transaction() as conn:
        conn.execute(insert(resources), [{
            "kind": "training-job", "name": f"job-{i:05d}", "arn": f"arn:job-{i:05d}",
            "status": status, "creation_time": float(i), "last_modified_time": float(i),
            "body": {"TrainingJobName": f"job-{i:05d}", "TrainingJobStatus": status,
                     "SecondaryStatus": secondary, "SecondaryStatusTransitions": [
                         {"Status": secondary, "StartTime": float(i)}]}}
            for i in range(count)])


def test_recovery_stops_every_stopping_job_not_only_the_first_thousand(tmp_path: Path):
    backend = backend_on(tmp_path, "one", f"sqlite:///{tmp_path / 'shared.db'}")
    seed_training_jobs(backend, 1_005, "Stopping")
    backend.training.recover()
    left, _ = backend.context.resources.list("training-job", ListQuery(status="Stopping"))
    assert left == []
    assert backend.context.resources.count("training-job") == 1_005


def test_reconcile_steps_every_active_tuning_job_not_only_the_first_thousand(tmp_path: Path):
    backend = backend_on(tmp_path, "one", f"sqlite:///{tmp_path / 'shared.db'}")
    with backend.context.db.transaction() as conn:
        conn.execute(insert(resources), [{
            "kind": "hyper-parameter-tuning-job", "name": f"tune-{i:05d}",
            "arn": f"arn:tune-{i:05d}", "status": "InProgress", "creation_time": float(i),
            "last_modified_time": float(i), "body": {}} for i in range(1_003)])
    stepped: list[str] = []
    backend.tuning._step = stepped.append  # type: ignore[method-assign]
    backend.tuning.reconcile()
    assert len(stepped) == len(set(stepped)) == 1_003


def test_two_servers_recovering_at_once_run_each_job_exactly_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = backend_on(tmp_path, "one", url), backend_on(tmp_path, "two", url)
    seed_training_jobs(first, 60, "InProgress")
    barrier = threading.Barrier(2)

    def recover(backend: Services) -> None:
        barrier.wait()
        backend.training.recover()

    threads = [threading.Thread(target=recover, args=(b,)) for b in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ran_first, ran_second = submitted(first), submitted(second)
    assert not set(ran_first) & set(ran_second)
    assert sorted(ran_first + ran_second) == [f"job-{i:05d}" for i in range(60)]
    # A later server start (the jobs still run, their leases live) re-runs none of them...
    third = backend_on(tmp_path, "three", url)
    third.training.recover()
    assert submitted(third) == []
    # ...while the same server, restarted, takes its own jobs back at once.
    again = backend_on(tmp_path, "one", url)
    again.training.recover()
    assert sorted(submitted(again)) == sorted(ran_first)


def seed_transform_jobs(backend: Services, count: int) -> None:
    with backend.context.db.transaction() as conn:
        conn.execute(insert(resources), [{
            "kind": "transform-job", "name": f"tx-{i:03d}", "arn": f"arn:tx-{i:03d}",
            "status": "InProgress", "creation_time": float(i), "last_modified_time": float(i),
            "body": {"TransformJobName": f"tx-{i:03d}", "TransformJobStatus": "InProgress"}}
            for i in range(count)])


def launches(backend: Services) -> list[str]:
    """Make ``backend``'s transform service record the runs it starts instead of running."""
    launched: list[str] = []
    backend.transform._launch = launched.append  # type: ignore[method-assign]
    return launched


def test_two_servers_recovering_transform_jobs_run_each_exactly_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = backend_on(tmp_path, "one", url), backend_on(tmp_path, "two", url)
    ran_first, ran_second = launches(first), launches(second)
    seed_transform_jobs(first, 40)
    barrier = threading.Barrier(2)

    def recover(backend: Services) -> None:
        barrier.wait()
        backend.transform.start()

    threads = [threading.Thread(target=recover, args=(b,)) for b in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(ran_first) & set(ran_second)
    assert sorted(ran_first + ran_second) == [f"tx-{i:03d}" for i in range(40)]
    # A later server runs none of them while their leases live; the same server, restarted,
    # takes its own back at once.
    third = backend_on(tmp_path, "three", url)
    ran_third = launches(third)
    third.transform.start()
    assert ran_third == []
    again = backend_on(tmp_path, "one", url)
    ran_again = launches(again)
    again.transform.start()
    assert sorted(ran_again) == sorted(ran_first)


def test_a_transform_stop_through_another_server_reaches_the_one_running_it(
        tmp_path: Path, monkeypatch: Any):
    from opensage.services.transform import service as transform_service
    from opensage.services.transform.job import Running

    monkeypatch.setattr(transform_service, "STOP_POLL_SECONDS", 0.02)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = backend_on(tmp_path, "one", url), backend_on(tmp_path, "two", url)
    seed_transform_jobs(first, 1)
    launches(first)
    first.transform.start()  # claims tx-000's run lease
    second.transform.stop("tx-000")
    # Not ended under the running server's feet: it is the one that ends it...
    assert first.context.resources.get("transform-job", "tx-000").status == "Stopping"
    # ...once its run, which polls the row, sees the stop.
    running, busy = Running("tx-000"), threading.Event()
    job = threading.Thread(target=busy.wait, args=(10,))
    job.start()
    try:
        first.transform._watch_stop(running, job)
        assert running.stop.is_set()
    finally:
        busy.set()
        job.join()
