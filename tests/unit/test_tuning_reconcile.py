"""The tuning reconcile step on a real store, with child jobs that only exist as rows: trials
in their own table (a step writes the trial that changed), status moves by compare-and-set,
and one reconcile lease per tuning job across servers sharing a database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opensage.errors import ValidationException
from opensage.services.tuning.jobs import TuningService
from opensage.services.tuning.plans import STATE
from opensage.services.tuning.states import (
    IllegalTransition,
    TuningStatus,
    check_transition,
)
from opensage.services.wiring import Services, build_services
from opensage.settings import Settings
from opensage.store.trials import TuningTrial
from tests.integration.test_tuning import tuning_request

KIND = "hyper-parameter-tuning-job"


class Children:
    """Child training jobs that are only recorded; a test writes their rows."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.stopped: list[str] = []

    def create(self, params: dict[str, Any]) -> str:
        self.created.append(params["TrainingJobName"])
        return params["TrainingJobName"]

    def stop(self, name: str) -> None:
        self.stopped.append(name)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    services = build_services(Settings(data_dir=tmp_path / "data", port=0,
                                       db_url=f"sqlite:///{tmp_path / 'shared.db'}",
                                       preload_algorithms=False))
    yield services
    services.context.db.dispose()


def tuner(services: Services, owner: str = "server-a") -> tuple[TuningService, Children]:
    children = Children()
    return TuningService(services.context, children, owner=owner), children


def end_child(services: Services, name: str, status: str, rmse: float | None) -> None:
    body: dict[str, Any] = {"TrainingJobName": name, "TrainingJobStatus": status,
                            "TrainingStartTime": 1.0, "TrainingEndTime": 2.0}
    if rmse is not None:
        body["FinalMetricDataList"] = [{"MetricName": "validation:rmse", "Value": rmse}]
    services.context.resources.create("training-job", name, f"arn:{name}", body, now=2.0,
                                      status=status)


def test_a_step_writes_the_one_trial_that_changed(services: Services) -> None:
    tuning, children = tuner(services)
    tuning.create(tuning_request("tune-one", max_jobs=2, parallel=2))
    tuning.reconcile()
    assert len(children.created) == 2
    row = services.context.resources.get(KIND, "tune-one")
    assert row is not None
    assert "OpensageTuning" not in row.body and "Trials" not in row.internal[STATE]
    trials = tuning.trials.of("tune-one")
    assert [(t.number, t.training_job_name, t.launched) for t in trials] == [
        (1, children.created[0], True), (2, children.created[1], True)]

    writes: list[tuple[list[TuningTrial], list[TuningTrial]]] = []
    real_write = tuning.trials.write

    def spy(*, added: Any = (), changed: Any = ()) -> None:
        writes.append((list(added), list(changed)))
        real_write(added=added, changed=changed)

    tuning.trials.write = spy  # type: ignore[method-assign]
    tuning.reconcile()
    assert writes == []  # nothing changed: nothing written
    end_child(services, children.created[0], "Completed", 0.5)
    tuning.reconcile()
    assert len(writes) == 1
    added, changed = writes[0]
    assert added == [] and [t.number for t in changed] == [1]
    assert (changed[0].status, changed[0].objective_status, changed[0].objective) == (
        "Completed", "Succeeded", 0.5)
    described = tuning.describe("tune-one")
    assert described["TrainingJobStatusCounters"]["Completed"] == 1
    assert described["BestTrainingJob"]["TrainingJobName"] == children.created[0]

    end_child(services, children.created[1], "Failed", None)
    tuning.reconcile()
    assert [t.number for t in writes[-1][1]] == [2]
    assert tuning.describe("tune-one")["HyperParameterTuningJobStatus"] == "Completed"
    moves = services.context.resources.transitions(KIND, "tune-one")
    assert [(a, b) for a, b, _ in moves] == [("InProgress", "Completed")]


def test_a_stop_is_a_recorded_compare_and_set_and_wins_over_a_step(
        services: Services) -> None:
    tuning, children = tuner(services)
    tuning.create(tuning_request("tune-stop", max_jobs=3, parallel=1))
    tuning.reconcile()
    tuning.stop("tune-stop")
    with pytest.raises(ValidationException, match="in status Stopping"):
        tuning.stop("tune-stop")
    tuning.reconcile()  # asks the running child to stop
    assert children.stopped == children.created[:1]
    assert tuning.describe("tune-stop")["HyperParameterTuningJobStatus"] == "Stopping"
    end_child(services, children.created[0], "Stopped", None)
    tuning.reconcile()
    assert tuning.describe("tune-stop")["HyperParameterTuningJobStatus"] == "Stopped"
    assert len(children.created) == 1  # no child after the stop
    assert [(a, b) for a, b, _ in services.context.resources.transitions(
        KIND, "tune-stop")] == [("InProgress", "Stopping"), ("Stopping", "Stopped")]
    with pytest.raises(ValidationException, match="in status Stopped"):
        tuning.stop("tune-stop")


def test_only_the_lease_holder_steps_a_tuning_job(services: Services) -> None:
    first, first_children = tuner(services, owner="server-a")
    second, second_children = tuner(services, owner="server-b")
    first.create(tuning_request("tune-lease", max_jobs=2, parallel=1))
    second.reconcile()
    first.reconcile()
    assert len(second_children.created) == 1 and first_children.created == []
    end_child(services, second_children.created[0], "Completed", 0.5)
    first.reconcile()  # still the other server's job
    assert first_children.created == []
    second.reconcile()
    assert len(second_children.created) == 2


def test_tuning_states_allow_only_the_documented_moves() -> None:
    check_transition(TuningStatus.IN_PROGRESS, TuningStatus.STOPPING)
    check_transition(TuningStatus.STOPPING, TuningStatus.STOPPED)
    for current, target in ((TuningStatus.COMPLETED, TuningStatus.IN_PROGRESS),
                            (TuningStatus.STOPPING, TuningStatus.COMPLETED),
                            (TuningStatus.STOPPED, TuningStatus.STOPPING)):
        with pytest.raises(IllegalTransition):
            check_transition(current, target)
    assert {s for s in TuningStatus if s.is_terminal} == {
        TuningStatus.COMPLETED, TuningStatus.FAILED, TuningStatus.STOPPED}
