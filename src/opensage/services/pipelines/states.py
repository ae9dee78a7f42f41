"""The lifecycles of pipelines, pipeline executions and their steps, as AWS reports them
(``PipelineStatus``, ``PipelineExecutionStatus``, ``StepStatus``).

Executions move by compare-and-set through ``ResourceStore.transition``; a step's status
lives in its execution's internal state and moves inside the same compare-and-set
(``ResourceStore.edit`` of the execution row), checked against ``STEP`` here.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import (  # noqa: F401 (callers catch it from here)
    IllegalTransition,
    Lifecycle,
)


class PipelineStatus(StrEnum):
    ACTIVE = "Active"
    DELETING = "Deleting"


class ExecutionStatus(StrEnum):
    EXECUTING = "Executing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


class StepStatus(StrEnum):
    STARTING = "Starting"
    EXECUTING = "Executing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"

    @property
    def is_terminal(self) -> bool:
        return self in STEP_TERMINAL


TERMINAL = frozenset({ExecutionStatus.STOPPED, ExecutionStatus.FAILED,
                      ExecutionStatus.SUCCEEDED})
ACTIVE = (ExecutionStatus.EXECUTING, ExecutionStatus.STOPPING)
STEP_TERMINAL = frozenset({StepStatus.STOPPED, StepStatus.FAILED, StepStatus.SUCCEEDED})
STEP_ACTIVE = frozenset({StepStatus.STARTING, StepStatus.EXECUTING, StepStatus.STOPPING})

_EXECUTION: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    ExecutionStatus.EXECUTING: frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED,
                                          ExecutionStatus.STOPPING}),
    ExecutionStatus.STOPPING: frozenset({ExecutionStatus.STOPPED, ExecutionStatus.FAILED}),
    # RetryPipelineExecution: a failed (or stopped) execution runs again from its failed
    # steps, keeping the succeeded ones
    ExecutionStatus.FAILED: frozenset({ExecutionStatus.EXECUTING}),
    ExecutionStatus.STOPPED: frozenset({ExecutionStatus.EXECUTING}),
}

_STEP: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.STARTING: frozenset({StepStatus.EXECUTING, StepStatus.SUCCEEDED,
                                    StepStatus.FAILED, StepStatus.STOPPED}),
    StepStatus.EXECUTING: frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED,
                                     StepStatus.STOPPING, StepStatus.STOPPED,
                                     # a retry policy starts another attempt
                                     StepStatus.STARTING}),
    StepStatus.STOPPING: frozenset({StepStatus.STOPPED, StepStatus.FAILED,
                                    StepStatus.SUCCEEDED}),
    # RetryPipelineExecution runs a failed or stopped step again
    StepStatus.FAILED: frozenset({StepStatus.STARTING}),
    StepStatus.STOPPED: frozenset({StepStatus.STARTING}),
}

EXECUTION = Lifecycle("a pipeline execution", _EXECUTION)
STEP = Lifecycle("a pipeline execution step", _STEP)
