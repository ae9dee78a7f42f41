"""A processing job's lifecycle, as AWS reports ``ProcessingJobStatus``.

Every move is a compare-and-set through ``ResourceStore.transition``; :func:`sources` checks
a move against the table before it is tried, so an illegal one is a bug that raises.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import (  # noqa: F401 (callers catch it from here)
    IllegalTransition,
    Lifecycle,
)


class ProcessingJobStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({ProcessingJobStatus.COMPLETED, ProcessingJobStatus.FAILED,
                      ProcessingJobStatus.STOPPED})
ACTIVE = (ProcessingJobStatus.IN_PROGRESS, ProcessingJobStatus.STOPPING)

_ALLOWED: dict[ProcessingJobStatus, frozenset[ProcessingJobStatus]] = {
    ProcessingJobStatus.IN_PROGRESS: frozenset({ProcessingJobStatus.COMPLETED,
                                                ProcessingJobStatus.FAILED,
                                                ProcessingJobStatus.STOPPING}),
    # a stop asked for ends Stopped, unless the job failed first
    ProcessingJobStatus.STOPPING: frozenset({ProcessingJobStatus.STOPPED,
                                             ProcessingJobStatus.FAILED}),
}

LIFECYCLE = Lifecycle("a processing job", _ALLOWED)
can_move = LIFECYCLE.can_move
sources = LIFECYCLE.sources


def outcome(current: ProcessingJobStatus, result: ProcessingJobStatus) -> ProcessingJobStatus:
    """Where a job in ``current`` goes when its run ends with ``result``: a job asked to stop
    ends ``Stopped`` whatever its run did, unless it failed."""
    if current is ProcessingJobStatus.STOPPING and result is not ProcessingJobStatus.FAILED:
        return ProcessingJobStatus.STOPPED
    return result
