"""The endpoint and transform-job state tables: the moves the services make are allowed,
others raise, and a stopped job's outcome."""

from __future__ import annotations

import pytest

from opensage.services.endpoints import states as endpoint
from opensage.services.endpoints.states import EndpointStatus
from opensage.services.transform import states as transform
from opensage.services.transform.states import TransformJobStatus


def test_endpoint_moves_the_service_makes_are_allowed_and_others_raise() -> None:
    made = [(EndpointStatus.CREATING, EndpointStatus.IN_SERVICE),
            (EndpointStatus.CREATING, EndpointStatus.FAILED),
            (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING),
            (EndpointStatus.UPDATING, EndpointStatus.IN_SERVICE),  # switched or rolled back
            (EndpointStatus.IN_SERVICE, EndpointStatus.FAILED)]  # a restart that cannot serve
    for current, target in made:
        assert endpoint.sources(target, current) == (current,)
    with pytest.raises(endpoint.IllegalTransition, match="from Failed to InService"):
        endpoint.sources(EndpointStatus.IN_SERVICE, EndpointStatus.FAILED)
    with pytest.raises(endpoint.IllegalTransition):
        endpoint.sources(EndpointStatus.UPDATING, EndpointStatus.CREATING)
    assert EndpointStatus.UPDATING.in_progress and not EndpointStatus.IN_SERVICE.in_progress
    # every status AWS defines is in the enum, and nothing else
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    assert {s.value for s in EndpointStatus} == set(model.shape_for("EndpointStatus").enum)
    assert {s.value for s in TransformJobStatus} == set(
        model.shape_for("TransformJobStatus").enum)


def test_transform_job_ends_stopped_once_asked_to_stop_unless_it_failed() -> None:
    stopping, running = TransformJobStatus.STOPPING, TransformJobStatus.IN_PROGRESS
    assert transform.outcome(stopping, TransformJobStatus.COMPLETED) is TransformJobStatus.STOPPED
    assert transform.outcome(stopping, TransformJobStatus.FAILED) is TransformJobStatus.FAILED
    assert transform.outcome(running, TransformJobStatus.COMPLETED) is (
        TransformJobStatus.COMPLETED)
    for terminal in transform.TERMINAL:
        assert terminal.is_terminal
        with pytest.raises(transform.IllegalTransition):
            transform.sources(TransformJobStatus.IN_PROGRESS, terminal)
    with pytest.raises(transform.IllegalTransition):
        transform.sources(TransformJobStatus.COMPLETED, stopping)
