"""The one seam between the training service and whatever runs jobs.

``LocalExecutor`` (subprocesses on this machine) implements it today; a Ray executor for
InstanceCount > 1 and parallel trials will implement the same few methods.
"""

from __future__ import annotations

from typing import Protocol

from opensage.runner.local import TrainingSpec
from opensage.runner.processing import ProcessingSpec


class Executor(Protocol):
    def start(self) -> None:
        """Begin taking jobs from the queue."""

    def submit(self, spec: TrainingSpec | ProcessingSpec) -> None:
        """Queue a job; progress comes back through the TrainingEvents it was built with."""

    def stop(self, name: str) -> None:
        """StopTrainingJob recorded the job as Stopping: a run of ``name`` here reads its row
        now (runs also poll it) and, if so asked, ends with SIGTERM, then SIGKILL after the
        grace period; the model is still saved."""

    def interrupt(self, name: str) -> None:
        """A managed spot reclaim: the job goes Interrupted and resumes from checkpoints."""

    def abandon(self, name: str) -> None:
        """Another server took the job over (this one lost its run lease): kill this
        server's run of ``name`` at once and report nothing more of it."""

    def cancel_all(self) -> None:
        """Drop every queued and running job at once (state is being wiped)."""

    def shutdown(self) -> None:
        """Server exit: kill running jobs; their rows stay InProgress and are re-run later."""
