"""A tuning job's trials: one ``tuning_trials`` row per child training job.

The tuning service keeps its search here rather than inside the tuning job's row, so that a
reconcile step writes the trial that changed (one row), never the whole list. Rows leave as
frozen :class:`TuningTrial` values; a change is ``dataclasses.replace`` then ``write``.
Statuses are plain strings here (the store knows no service's enums).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import insert, select, update

from opensage.store.db import Database
from opensage.store.schema import tuning_trials


@dataclass(frozen=True)
class TuningTrial:
    tuning_job: str
    number: int
    training_job_name: str
    training_job_arn: str
    creation_time: float
    tuned_hyperparameters: dict[str, str] = field(default_factory=dict)
    definition_name: str | None = None
    status: str = "InProgress"  # the child's TrainingJobStatus
    objective_status: str = "Pending"
    objective: float | None = None
    failure_reason: str | None = None
    training_start_time: float | None = None
    training_end_time: float | None = None
    launched: bool = False  # its CreateTrainingJob was made (or refused)
    stop_requested: bool = False
    early_stopped: bool = False  # stopped by a pruner
    retried: bool = False  # failed with an internal error; ``retry_of`` names it in its retry
    retry_of: str | None = None
    bracket: int | None = None  # Hyperband
    rung: int = 0
    stopped_at_rung: int | None = None


_COLUMNS = tuple(tuning_trials.c[name] for name in TuningTrial.__dataclass_fields__)


def _row(trial: TuningTrial) -> dict[str, Any]:
    row = asdict(trial)
    row["status"], row["objective_status"] = str(trial.status), str(trial.objective_status)
    return row


class TrialStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def of(self, tuning_job: str) -> list[TuningTrial]:
        """The trials of ``tuning_job``, in the order they were made."""
        with self.db.engine.connect() as conn:
            return [TuningTrial(*r) for r in conn.execute(
                select(*_COLUMNS).where(tuning_trials.c.tuning_job == tuning_job)
                .order_by(tuning_trials.c.number))]

    def write(self, *, added: Sequence[TuningTrial] = (),
              changed: Sequence[TuningTrial] = ()) -> None:
        """Insert ``added`` and rewrite ``changed`` (each by its tuning job and number), in one
        transaction: a retry and the mark on the trial it retries land together."""
        if not added and not changed:
            return
        with self.db.transaction() as conn:
            if added:
                conn.execute(insert(tuning_trials), [_row(t) for t in added])
            for trial in changed:
                conn.execute(update(tuning_trials).where(
                    tuning_trials.c.tuning_job == trial.tuning_job,
                    tuning_trials.c.number == trial.number).values(**_row(trial)))

