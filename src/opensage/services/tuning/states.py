"""The tuning job's state machine, and the statuses of its trials, as AWS reports them.

``HyperParameterTuningJobStatus`` has the members of botocore's model; every change goes
through ``ResourceStore.transition`` (a compare-and-set) and is checked against ``_ALLOWED``.
A trial's status is its child training job's ``TrainingJobStatus``; its objective status is
``ObjectiveStatus``.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import (  # noqa: F401 (callers catch it from here)
    IllegalTransition,
    Lifecycle,
)


class TuningStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    DELETING = "Deleting"
    DELETE_FAILED = "DeleteFailed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TuningStatus.COMPLETED, TuningStatus.FAILED, TuningStatus.STOPPED})
# The statuses the reconcile loop drives towards their end.
ACTIVE = (TuningStatus.IN_PROGRESS, TuningStatus.STOPPING)

_ALLOWED: dict[TuningStatus, frozenset[TuningStatus]] = {
    TuningStatus.IN_PROGRESS: frozenset({TuningStatus.STOPPING, TuningStatus.COMPLETED,
                                         TuningStatus.FAILED}),
    TuningStatus.STOPPING: frozenset({TuningStatus.STOPPED}),
}

LIFECYCLE = Lifecycle("a tuning job", _ALLOWED)
check_transition = LIFECYCLE.check
sources_of = LIFECYCLE.sources_of


class TrialStatus(StrEnum):
    """A trial's child training job's ``TrainingJobStatus``."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    @property
    def is_terminal(self) -> bool:
        return self in TRIAL_TERMINAL


TRIAL_TERMINAL = frozenset({TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.STOPPED})


class ObjectiveStatus(StrEnum):
    SUCCEEDED = "Succeeded"
    PENDING = "Pending"
    FAILED = "Failed"
