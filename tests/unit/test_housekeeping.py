"""Housekeeping's step, called directly with a fake clock: what outlived its retention goes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opensage.runner.environments import Environments
from opensage.services.algorithms import AlgorithmCatalog
from opensage.services.autoscaling import AutoscalingService
from opensage.services.context import Context
from opensage.services.housekeeping import Housekeeping
from opensage.services.logs import LogService
from opensage.services.metrics import MetricStore
from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.objects import ObjectStore
from opensage.store.resources import ResourceStore

NOW = 1_700_000_000.0
DAY = 86_400.0
TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/ep/variant/v",
          "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
DIMENSIONS = {"EndpointName": "ep"}


@dataclass
class World:
    tmp: Path
    logs: LogService
    metrics: MetricStore
    autoscaling: AutoscalingService
    clock: list[float]

    def housekeeping(self, **settings: Any) -> Housekeeping:
        return Housekeeping(Settings(data_dir=self.tmp, **settings), self.logs, self.metrics,
                            self.autoscaling.purge_activities, clock=lambda: self.clock[0])

    def activity_at(self, when: float) -> None:
        self.clock[0] = when
        activity = self.autoscaling._begin(TARGET, 2, "test", when)
        self.autoscaling._end(activity, None, 2)

    def activities(self) -> list[float]:
        found = self.autoscaling.describe_activities({"ServiceNamespace": "sagemaker"})
        return sorted(a["StartTime"] for a in found["ScalingActivities"])

    def metric_times(self) -> list[float]:
        return [p.timestamp for p in self.metrics.series("ns", "m", DIMENSIONS, 0, 2 * NOW)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db = Database(f"sqlite:///{tmp_path / 'h.db'}")
    db.migrate()
    clock = [NOW]
    settings = Settings(data_dir=tmp_path)
    logs, metrics = LogService(db, settings, clock=lambda: clock[0]), MetricStore(db)
    ctx = Context(settings=settings, db=db, resources=ResourceStore(db),
                  objects=ObjectStore(settings.objects_url, db, region=settings.region),
                  logs=logs, metrics=metrics, algorithms=AlgorithmCatalog(),
                  environments=Environments(settings.frameworks_dir),
                  clock=lambda: clock[0])
    # purging activities scales nothing: no endpoint service needed
    scaler = AutoscalingService(ctx, None)  # type: ignore[arg-type]
    yield World(tmp_path, logs, metrics, scaler, clock)
    db.dispose()


def test_step_purges_each_kind_past_its_retention(world: World) -> None:
    ms = int(NOW * 1000)
    world.logs.append("/kept-7-days", "s", [(ms - int(10 * DAY * 1000), "old"), (ms, "new")])
    world.logs.set_retention("/kept-7-days", 7)
    world.logs.append("/kept-forever", "s", [(ms - int(400 * DAY * 1000), "ancient")])
    world.metrics.put("ns", [("m", DIMENSIONS, NOW - t * DAY, 1.0, "None") for t in (20, 10, 0)])
    world.activity_at(NOW - 50 * DAY)
    world.activity_at(NOW - 10 * DAY)
    housekeeping = world.housekeeping()  # metrics: the documented 15 days

    assert housekeeping.step(NOW) == {"log events": 1, "scaling activities": 1,
                                      "metric points": 1}
    assert [e["message"] for e in world.logs.filter_events("/kept-7-days")[0]] == ["new"]
    assert len(world.logs.filter_events("/kept-forever")[0]) == 1
    assert world.metric_times() == [NOW - 10 * DAY, NOW]
    assert world.activities() == [NOW - 10 * DAY]

    world.clock[0] = NOW + 33 * DAY  # step() without an argument reads the clock
    assert housekeeping.step() == {"log events": 1, "scaling activities": 1,
                                   "metric points": 2}
    assert world.metric_times() == [] and world.activities() == []


def test_metric_retention_is_a_setting_and_zero_keeps_forever(world: World) -> None:
    world.metrics.put("ns", [("m", DIMENSIONS, NOW - t * DAY, 1.0, "None") for t in (400, 2)])
    assert "metric points" not in world.housekeeping(metric_retention_days=0).step(NOW)
    assert len(world.metric_times()) == 2
    assert world.housekeeping(metric_retention_days=1).step(NOW)["metric points"] == 2
    assert Settings.from_env({"OPENSAGE_METRIC_RETENTION_DAYS": "63"}).metric_retention_days == 63


def test_a_failing_purge_does_not_stop_the_others(world: World,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    world.metrics.put("ns", [("m", DIMENSIONS, NOW - 30 * DAY, 1.0, "None")])

    def locked(now: float) -> int:
        raise RuntimeError("database is locked")

    housekeeping = Housekeeping(Settings(data_dir=world.tmp), world.logs, world.metrics, locked)
    counts = housekeeping.step(NOW)
    assert counts == {"log events": 0, "metric points": 1}
    assert "purging expired scaling activities failed" in caplog.text


def test_thread_runs_a_step_at_start_and_stops_on_close(world: World) -> None:
    ran = threading.Event()

    def purge(now: float) -> int:
        ran.set()
        return 0

    housekeeping = Housekeeping(Settings(data_dir=world.tmp), world.logs, world.metrics, purge)
    housekeeping.start()
    assert ran.wait(5)
    housekeeping.close()
    assert housekeeping._thread is not None and not housekeeping._thread.is_alive()
