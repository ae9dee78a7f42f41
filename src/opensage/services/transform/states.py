"""A batch transform job's lifecycle, as AWS reports ``TransformJobStatus``.

Every move is a compare-and-set through ``ResourceStore.transition``; :func:`sources` checks
a move against the table before it is tried, so an illegal one is a bug that raises.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import (  # noqa: F401 (callers catch it from here)
    IllegalTransition,
    Lifecycle,
)


class TransformJobStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TransformJobStatus.COMPLETED, TransformJobStatus.FAILED,
                      TransformJobStatus.STOPPED})
ACTIVE = frozenset({TransformJobStatus.IN_PROGRESS, TransformJobStatus.STOPPING})

_ALLOWED: dict[TransformJobStatus, frozenset[TransformJobStatus]] = {
    TransformJobStatus.IN_PROGRESS: frozenset({TransformJobStatus.COMPLETED,
                                               TransformJobStatus.FAILED,
                                               TransformJobStatus.STOPPING}),
    # a stop asked for ends Stopped, unless the job failed first
    TransformJobStatus.STOPPING: frozenset({TransformJobStatus.STOPPED,
                                            TransformJobStatus.FAILED}),
}

LIFECYCLE = Lifecycle("a transform job", _ALLOWED)
can_move = LIFECYCLE.can_move
sources = LIFECYCLE.sources


def outcome(current: TransformJobStatus, result: TransformJobStatus) -> TransformJobStatus:
    """Where a job in ``current`` goes when its run ends with ``result``: a job asked to stop
    ends ``Stopped`` whatever its run did, unless it failed."""
    if current is TransformJobStatus.STOPPING and result is not TransformJobStatus.FAILED:
        return TransformJobStatus.STOPPED
    return result
