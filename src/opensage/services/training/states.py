"""The training job's state machine, as AWS reports it.

The secondary status is the state; the primary ``TrainingJobStatus`` is derived from it.
Transitions are a table: anything else is a bug and raises.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import (  # noqa: F401 (callers catch it from here)
    IllegalTransition,
    Lifecycle,
)


class Status(StrEnum):
    """``TrainingJobStatus``: the row's status column, derived from the secondary status."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


# A job in these still has a run (queued, running or being stopped) somewhere.
ACTIVE = (Status.IN_PROGRESS, Status.STOPPING)
ENDED = (Status.COMPLETED, Status.FAILED, Status.STOPPED)


class Secondary(StrEnum):
    STARTING = "Starting"
    DOWNLOADING = "Downloading"
    TRAINING = "Training"
    UPLOADING = "Uploading"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"
    MAX_WAIT_TIME_EXCEEDED = "MaxWaitTimeExceeded"
    INTERRUPTED = "Interrupted"
    RESTARTING = "Restarting"

    @property
    def primary(self) -> Status:
        return _PRIMARY.get(self, Status.IN_PROGRESS)

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


_PRIMARY = {
    Secondary.COMPLETED: Status.COMPLETED,
    Secondary.FAILED: Status.FAILED,
    Secondary.STOPPING: Status.STOPPING,
    Secondary.STOPPED: Status.STOPPED,
    Secondary.MAX_RUNTIME_EXCEEDED: Status.STOPPED,
    Secondary.MAX_WAIT_TIME_EXCEEDED: Status.STOPPED,
}

TERMINAL = frozenset({Secondary.COMPLETED, Secondary.FAILED, Secondary.STOPPED,
                      Secondary.MAX_RUNTIME_EXCEEDED, Secondary.MAX_WAIT_TIME_EXCEEDED})
RUNNING = frozenset({Secondary.STARTING, Secondary.DOWNLOADING, Secondary.TRAINING,
                     Secondary.UPLOADING, Secondary.INTERRUPTED, Secondary.RESTARTING})

_ALLOWED: dict[Secondary, frozenset[Secondary]] = {
    # a spot job's MaxWaitTimeInSeconds may run out while it waits for capacity (Ray)
    Secondary.STARTING: frozenset({Secondary.DOWNLOADING, Secondary.TRAINING,
                                   Secondary.MAX_WAIT_TIME_EXCEEDED}),
    # A script-mode job's first use of a framework environment builds it while Downloading:
    # MaxRuntimeInSeconds may run out there.
    Secondary.DOWNLOADING: frozenset({Secondary.TRAINING, Secondary.MAX_RUNTIME_EXCEEDED}),
    Secondary.TRAINING: frozenset({Secondary.UPLOADING, Secondary.MAX_RUNTIME_EXCEEDED,
                                   Secondary.INTERRUPTED}),
    Secondary.UPLOADING: frozenset({Secondary.COMPLETED}),
    Secondary.INTERRUPTED: frozenset({Secondary.RESTARTING, Secondary.MAX_WAIT_TIME_EXCEEDED}),
    Secondary.RESTARTING: frozenset({Secondary.STARTING, Secondary.DOWNLOADING,
                                     Secondary.TRAINING}),
    Secondary.STOPPING: frozenset({Secondary.STOPPED}),
}
# From any running state a job may fail, be asked to stop, or be re-run after a restart.
for _state in RUNNING:
    _ALLOWED[_state] = _ALLOWED.get(_state, frozenset()) | {
        Secondary.FAILED, Secondary.STOPPING, Secondary.RESTARTING}
_ALLOWED[Secondary.STOPPING] |= {Secondary.FAILED}

LIFECYCLE = Lifecycle("a training job", _ALLOWED)
check_transition = LIFECYCLE.check


MESSAGES = {
    Secondary.STARTING: "Preparing the instances for training",
    Secondary.DOWNLOADING: "Downloading input data",
    Secondary.TRAINING: "Training image download completed. Training in progress.",
    Secondary.UPLOADING: "Uploading generated training model",
    Secondary.COMPLETED: "Training job completed",
    Secondary.STOPPING: "Stopping the training job",
    Secondary.STOPPED: "The training job was stopped",
    Secondary.MAX_RUNTIME_EXCEEDED: "Training job exceeded the MaxRuntimeInSeconds and was "
                                    "stopped",
    Secondary.INTERRUPTED: "The job was interrupted because the managed spot training "
                           "instances were reclaimed",
    Secondary.MAX_WAIT_TIME_EXCEEDED: "Training job stopped: it exceeded "
                                      "MaxWaitTimeInSeconds",
    Secondary.RESTARTING: "Restarting the training job",
}
