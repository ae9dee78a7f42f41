"""A scaling activity's lifecycle (``ScalingActivityStatusCode`` in botocore's model).

opensage records an activity InProgress when it starts applying a new capacity and moves it
to Successful or Failed when the endpoint has it (or could not get it). Pending, Overridden and
Unfulfilled are AWS's too; the table admits them so that rows read back stay valid.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import (  # noqa: F401 (callers catch it from here)
    IllegalTransition,
    Lifecycle,
)


class ActivityStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCESSFUL = "Successful"
    OVERRIDDEN = "Overridden"
    UNFULFILLED = "Unfulfilled"
    FAILED = "Failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({ActivityStatus.SUCCESSFUL, ActivityStatus.OVERRIDDEN,
                      ActivityStatus.UNFULFILLED, ActivityStatus.FAILED})

ALLOWED: dict[ActivityStatus, frozenset[ActivityStatus]] = {
    ActivityStatus.PENDING: frozenset({ActivityStatus.IN_PROGRESS, ActivityStatus.OVERRIDDEN,
                                       ActivityStatus.FAILED}),
    ActivityStatus.IN_PROGRESS: TERMINAL,
}

LIFECYCLE = Lifecycle("a scaling activity", ALLOWED)
check_transition = LIFECYCLE.check
sources_of = LIFECYCLE.sources_of
