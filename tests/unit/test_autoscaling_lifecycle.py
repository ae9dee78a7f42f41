"""Application Auto Scaling's own state lives in ``internal`` (not in the target's document),
and a scaling activity goes InProgress -> Successful/Failed through the store's transition."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opensage.runner.environments import Environments
from opensage.services.algorithms import AlgorithmCatalog
from opensage.services.autoscaling import AutoscalingService
from opensage.services.autoscaling.service import ACTIVITY_KIND, APPLY_TIMEOUT, TARGET_KIND
from opensage.services.autoscaling.states import (
    ActivityStatus,
    IllegalTransition,
    check_transition,
)
from opensage.services.context import Context
from opensage.services.logs import LogService
from opensage.services.metrics import MetricStore
from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.resources import ResourceStore

NOW = 1_700_000_000.0
RESOURCE = "endpoint/ep/variant/v"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
KEY = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE, "ScalableDimension": DIMENSION}


class Endpoints:
    """The endpoint service as the scaler sees it: applying a capacity takes until
    ``applied`` is set."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.applied = threading.Event()
        self.requests: list[tuple[str, list[dict[str, Any]]]] = []

    def set_capacities(self, name: str,
                       desired: list[dict[str, Any]]) -> tuple[str, threading.Thread]:
        self.requests.append((name, desired))
        thread = threading.Thread(target=self.applied.wait, args=(10,))
        thread.start()
        return "arn:ep", thread


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[AutoscalingService, Endpoints, list[float]]]:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    db.migrate()
    clock = [NOW]
    settings = Settings(data_dir=tmp_path)
    ctx = Context(settings=settings, db=db, resources=ResourceStore(db),
                  objects=None,  # type: ignore[arg-type]
                  logs=LogService(db, settings, clock=lambda: clock[0]), metrics=MetricStore(db),
                  algorithms=AlgorithmCatalog(),
                  environments=Environments(settings.frameworks_dir), clock=lambda: clock[0])
    ctx.resources.create("endpoint", "ep", "arn:ep", {"EndpointName": "ep", "ProductionVariants": [
        {"VariantName": "v", "CurrentInstanceCount": 1}]}, now=NOW, status="InService")
    endpoints = Endpoints(ctx)
    yield AutoscalingService(ctx, endpoints, interval=3600, window=60), endpoints, clock  # type: ignore[arg-type]
    endpoints.applied.set()
    db.dispose()


def test_a_target_keeps_the_variant_it_scales_out_of_its_document(world) -> None:
    scaler, _, _ = world
    arn = scaler.register({**KEY, "MinCapacity": 1, "MaxCapacity": 3})
    row = scaler.ctx.resources.get(TARGET_KIND, f"sagemaker|{RESOURCE}|{DIMENSION}")
    assert row is not None
    assert row.internal == {"_Endpoint": "ep", "_Variant": "v"}
    assert not [k for k in row.body if k.startswith("_")]
    # registering again changes the same target (its ARN kept), and keeps its state
    assert scaler.register({**KEY, "MaxCapacity": 4}) == arn
    row = scaler.ctx.resources.get(TARGET_KIND, row.name)
    assert row is not None and row.body["MaxCapacity"] == 4 and row.body["MinCapacity"] == 1
    assert row.internal == {"_Endpoint": "ep", "_Variant": "v"}
    described = scaler.describe_targets({"ServiceNamespace": "sagemaker"})["ScalableTargets"]
    assert [t["ScalableTargetARN"] for t in described] == [arn]


def test_bad_capacities_are_refused_and_change_nothing(world) -> None:
    scaler, _, _ = world
    scaler.register({**KEY, "MinCapacity": 1, "MaxCapacity": 3})
    with pytest.raises(Exception, match="Minimum capacity 5"):
        scaler.register({**KEY, "MinCapacity": 5})
    row = scaler.ctx.resources.get(TARGET_KIND, f"sagemaker|{RESOURCE}|{DIMENSION}")
    assert row is not None and (row.body["MinCapacity"], row.body["MaxCapacity"]) == (1, 3)


def test_a_target_upgraded_from_an_old_data_directory_scales_and_records_an_activity(
        world) -> None:
    """Revision 0004 moved ``_Endpoint``/``_Variant``/``_LastScale*`` into ``internal``: the
    scaler reads them there, and the activity is InProgress while the endpoint changes."""
    scaler, endpoints, clock = world
    body = {**KEY, "MinCapacity": 2, "MaxCapacity": 4, "ScalableTargetARN": "arn:target",
            "RoleARN": "arn:role", "CreationTime": NOW,
            "SuspendedState": {"DynamicScalingInSuspended": False,
                               "DynamicScalingOutSuspended": False,
                               "ScheduledScalingSuspended": False}}
    name = f"sagemaker|{RESOURCE}|{DIMENSION}"
    scaler.ctx.resources.create(TARGET_KIND, name, "arn:target", body, now=NOW, internal={
        "_Endpoint": "ep", "_Variant": "v", "_LastScaleIn": NOW - 10})
    tick = threading.Thread(target=scaler.tick)
    tick.start()  # below MinCapacity 2: scales out to 2
    try:
        deadline = threading.Event()
        for _ in range(500):
            found = scaler.describe_activities({"ServiceNamespace": "sagemaker"})
            if found["ScalingActivities"]:
                break
            deadline.wait(0.01)
        (activity,) = found["ScalingActivities"]
        assert activity["StatusCode"] == "InProgress" and "EndTime" not in activity
    finally:
        endpoints.applied.set()
        tick.join(10)
    assert endpoints.requests == [("ep", [{"VariantName": "v", "DesiredInstanceCount": 2}])]
    (activity,) = scaler.describe_activities({"ServiceNamespace": "sagemaker"})[
        "ScalingActivities"]
    assert activity["StatusCode"] == "Successful"
    assert activity["Description"] == "Setting desired instance count to 2."
    assert [(f, t) for f, t, _ in scaler.ctx.resources.transitions(
        ACTIVITY_KIND, activity["ActivityId"])] == [("InProgress", "Successful")]
    row = scaler.ctx.resources.get(TARGET_KIND, name)
    assert row is not None and row.internal["_LastScaleOut"] == clock[0]
    assert row.internal["_LastScaleIn"] == NOW - 10


def test_an_activity_left_in_progress_by_a_stopped_server_ends_failed(world) -> None:
    scaler, _, clock = world
    old = scaler._begin(KEY, 3, "test", NOW)
    clock[0] = NOW + APPLY_TIMEOUT / 2
    recent = scaler._begin(KEY, 3, "test", clock[0])
    clock[0] = NOW + APPLY_TIMEOUT + 1
    scaler._fail_abandoned()
    codes = {a["ActivityId"]: a["StatusCode"] for a in scaler.describe_activities(
        {"ServiceNamespace": "sagemaker"})["ScalingActivities"]}
    assert codes == {old: "Failed", recent: "InProgress"}


def test_activity_states_refuse_leaving_an_end() -> None:
    check_transition(ActivityStatus.IN_PROGRESS, ActivityStatus.SUCCESSFUL)
    assert ActivityStatus.FAILED.is_terminal and not ActivityStatus.PENDING.is_terminal
    with pytest.raises(IllegalTransition):
        check_transition(ActivityStatus.SUCCESSFUL, ActivityStatus.FAILED)


def test_two_servers_on_one_database_scale_once_and_the_survivor_takes_over(
        world, tmp_path: Path) -> None:
    """Both scalers see the variant below its minimum; only the one holding the scaler
    lease applies it, and the other scales once the holder closes."""
    first, first_endpoints, clock = world
    settings = Settings(data_dir=tmp_path / "second")
    ctx = Context(settings=settings, db=first.ctx.db, resources=first.ctx.resources,
                  objects=None,  # type: ignore[arg-type]
                  logs=first.ctx.logs, metrics=first.ctx.metrics,
                  algorithms=AlgorithmCatalog(),
                  environments=Environments(settings.frameworks_dir), clock=lambda: clock[0])
    second_endpoints = Endpoints(ctx)
    second = AutoscalingService(ctx, second_endpoints, interval=3600,  # type: ignore[arg-type]
                                window=60)
    first.register({**KEY, "MinCapacity": 2, "MaxCapacity": 4})
    for endpoints in (first_endpoints, second_endpoints):
        endpoints.applied.set()  # capacity changes apply at once
    barrier = threading.Barrier(2)

    def tick(scaler: AutoscalingService) -> None:
        barrier.wait()
        scaler.tick()

    ticks = [threading.Thread(target=tick, args=(s,)) for s in (first, second)]
    for t in ticks:
        t.start()
    for t in ticks:
        t.join(10)
    applied = first_endpoints.requests + second_endpoints.requests
    assert applied == [("ep", [{"VariantName": "v", "DesiredInstanceCount": 2}])]
    assert len(scaler_activities(first)) == 1
    holder, other = ((first, second) if first_endpoints.requests else (second, first))
    other.tick()  # still held: nothing
    assert len(scaler_activities(first)) == 1
    holder.close()  # gives the lease back
    other.tick()  # (the fake endpoint still reports 1 instance: scales again)
    assert len(scaler_activities(first)) == 2
    assert len((second_endpoints if other is second else first_endpoints).requests) == 1


def scaler_activities(scaler: AutoscalingService) -> list[dict[str, Any]]:
    return list(scaler.describe_activities({"ServiceNamespace": "sagemaker"})[
        "ScalingActivities"])
