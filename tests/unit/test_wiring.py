"""Services get their collaborators from one wiring function; cross-service reactions are
typed listeners subscribed there."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from opensage.services.events import Listeners
from opensage.services.training.events import TrainingJobEnded, WatchedMetricsReported
from opensage.services.wiring import Services, build_services
from opensage.settings import Settings


def test_listeners_are_called_in_order_and_one_that_fails_stops_nothing(caplog):
    heard: list[str] = []
    listeners: Listeners[TrainingJobEnded] = Listeners("TrainingJobEnded")
    listeners.subscribe(lambda event: heard.append(f"first {event.name}"))
    listeners.subscribe(lambda event: 1 / 0)
    listeners.subscribe(lambda event: heard.append(f"last {event.name}"))
    with caplog.at_level(logging.ERROR):
        listeners.publish(TrainingJobEnded("job-1"))  # does not raise into the publisher
    assert heard == ["first job-1", "last job-1"]
    assert "a listener of TrainingJobEnded failed" in caplog.text


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = build_services(Settings(data_dir=tmp_path, port=0, preload_algorithms=False))
    try:
        yield built
    finally:
        built.close()


@pytest.mark.parametrize("event", [TrainingJobEnded("child"), WatchedMetricsReported("child")])
def test_the_tuner_wakes_when_a_child_ends_or_reports_watched_metrics(services, monkeypatch,
                                                                      event):
    woken: list[bool] = []
    monkeypatch.setattr(services.tuning, "wake", lambda: woken.append(True))
    listeners = (services.training.job_ended if isinstance(event, TrainingJobEnded)
                 else services.training.watched_metrics)
    listeners.publish(event)
    assert woken == [True]


def test_services_share_one_context_and_are_given_their_collaborators(services):
    ctx = services.context
    for service in (services.training, services.tuning, services.endpoints,
                    services.transform, services.autoscaling):
        assert service.ctx is ctx
    assert services.tuning.training is services.training
    assert services.autoscaling.endpoints is services.endpoints
    # the fork server is off here: nobody is handed one
    assert services.endpoints.forkserver is None and services.transform.forkserver is None


def test_model_workers_are_forked_from_the_training_executors_fork_server(tmp_path: Path):
    built = build_services(Settings(data_dir=tmp_path, port=0, preload_algorithms=True))
    try:
        forkserver = built.endpoints.forkserver
        assert forkserver is not None
        assert built.transform.forkserver is forkserver
        assert getattr(built.training.executor, "forkserver", None) is forkserver
    finally:
        built.close()
