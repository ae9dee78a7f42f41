"""A tuning job's trials in their own table: ``tuning_trials``.

Tuning jobs kept their trials as a list under ``OpensageTuning.Trials``: in ``internal`` since
revision 0004, or still in the body for a job created after it by a server that wrote them
there. This revision creates the table and moves each list into it (trial number = position
in the list, from 1), and leaves the rest of ``OpensageTuning`` in ``internal``.

Revision ID: 0005
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KIND = "hyper-parameter-tuning-job"
_BATCH = 200
_STATE = "OpensageTuning"

# Trial dict key -> column (the keys as the tuning service wrote them before this revision).
_FIELDS = {
    "TrainingJobName": "training_job_name", "TrainingJobArn": "training_job_arn",
    "TrainingJobDefinitionName": "definition_name",
    "TunedHyperParameters": "tuned_hyperparameters", "TrainingJobStatus": "status",
    "ObjectiveStatus": "objective_status", "Objective": "objective",
    "FailureReason": "failure_reason", "CreationTime": "creation_time",
    "TrainingStartTime": "training_start_time", "TrainingEndTime": "training_end_time",
    "Launched": "launched", "StopRequested": "stop_requested", "EarlyStopped": "early_stopped",
    "Retried": "retried", "RetryOf": "retry_of", "Bracket": "bracket", "Rung": "rung",
    "StoppedAtRung": "stopped_at_rung",
}
_FLAGS = ("launched", "stop_requested", "early_stopped", "retried")


def _trials_table() -> sa.Table:
    return sa.Table(
        "tuning_trials", sa.MetaData(),
        sa.Column("tuning_job", sa.String(256), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("training_job_name", sa.String(256), nullable=False),
        sa.Column("training_job_arn", sa.String(512), nullable=False),
        sa.Column("definition_name", sa.String(64)),
        sa.Column("tuned_hyperparameters", sa.JSON, nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("objective_status", sa.String(16), nullable=False),
        sa.Column("objective", sa.Float),
        sa.Column("failure_reason", sa.Text),
        sa.Column("creation_time", sa.Float, nullable=False),
        sa.Column("training_start_time", sa.Float),
        sa.Column("training_end_time", sa.Float),
        sa.Column("launched", sa.Boolean, nullable=False),
        sa.Column("stop_requested", sa.Boolean, nullable=False),
        sa.Column("early_stopped", sa.Boolean, nullable=False),
        sa.Column("retried", sa.Boolean, nullable=False),
        sa.Column("retry_of", sa.String(256)),
        sa.Column("bracket", sa.Integer),
        sa.Column("rung", sa.Integer, nullable=False),
        sa.Column("stopped_at_rung", sa.Integer),
    )


_resources = sa.table("resources", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                      sa.column("name", sa.String), sa.column("body", sa.JSON),
                      sa.column("internal", sa.JSON))


def _row(job: str, number: int, trial: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"tuning_job": job, "number": number}
    for key, column in _FIELDS.items():
        row[column] = trial.get(key)
    for flag in _FLAGS:
        row[flag] = bool(row[flag])
    row["rung"] = row["rung"] or 0
    row["tuned_hyperparameters"] = row["tuned_hyperparameters"] or {}
    row["status"] = row["status"] or "InProgress"
    row["objective_status"] = row["objective_status"] or "Pending"
    row["creation_time"] = row["creation_time"] or 0.0
    return row


def _trial(row: Any) -> dict[str, Any]:
    trial = {key: getattr(row, column) for key, column in _FIELDS.items()}
    return {k: v for k, v in trial.items() if v is not None}


def _tuning_rows(conn: sa.Connection) -> Iterator[Any]:
    """The tuning job rows, ``_BATCH`` per query."""
    last = 0
    while True:
        rows = conn.execute(sa.select(_resources.c.id, _resources.c.name, _resources.c.body,
                                      _resources.c.internal)
                            .where(_resources.c.kind == _KIND, _resources.c.id > last)
                            .order_by(_resources.c.id).limit(_BATCH)).all()
        yield from rows
        if len(rows) < _BATCH:
            return
        last = rows[-1][0]


def upgrade() -> None:
    conn = op.get_bind()
    trials = _trials_table()
    trials.create(conn)
    for row_id, name, body, internal in _tuning_rows(conn):
        body, internal = dict(body or {}), dict(internal or {})
        in_body = body.pop(_STATE, None)
        state = dict(internal.get(_STATE) or in_body or {})
        listed = state.pop("Trials", None) or []
        if listed:
            conn.execute(sa.insert(trials), [_row(name, number, trial)
                                             for number, trial in enumerate(listed, 1)])
        if state:
            internal[_STATE] = state
        conn.execute(sa.update(_resources).where(_resources.c.id == row_id)
                     .values(body=body, internal=internal))


def downgrade() -> None:
    trials = _trials_table()
    conn = op.get_bind()
    for row_id, name, _body, internal in _tuning_rows(conn):
        listed = [_trial(r) for r in conn.execute(
            sa.select(trials).where(trials.c.tuning_job == name).order_by(trials.c.number))]
        internal = dict(internal or {})
        internal[_STATE] = {**(internal.get(_STATE) or {}), "Trials": listed}
        conn.execute(sa.update(_resources).where(_resources.c.id == row_id)
                     .values(internal=internal))
    op.drop_table("tuning_trials")
