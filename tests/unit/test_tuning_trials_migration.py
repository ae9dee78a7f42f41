"""Revision 0005 moves a tuning job's trials out of its row into ``tuning_trials``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command

from opensage.store.db import Database, _alembic_config
from opensage.store.resources import ResourceStore
from opensage.store.trials import TrialStore, TuningTrial

OLD_TRIALS = [
    {"TrainingJobName": "tune-001-aa", "TrainingJobArn": "arn:tune-001-aa",
     "TunedHyperParameters": {"eta": "0.1"}, "TrainingJobStatus": "Completed",
     "ObjectiveStatus": "Succeeded", "Objective": 0.25, "Launched": True,
     "CreationTime": 10.0, "TrainingStartTime": 11.0, "TrainingEndTime": 12.0,
     "Bracket": 1, "Rung": 2},
    {"TrainingJobName": "tune-002-bb", "TrainingJobArn": "arn:tune-002-bb",
     "TunedHyperParameters": {"eta": "0.3"}, "TrainingJobStatus": "Failed",
     "ObjectiveStatus": "Failed", "Launched": True, "CreationTime": 13.0,
     "FailureReason": "InternalServerError: boom", "Retried": True,
     "TrainingJobDefinitionName": "deep"},
    {"TrainingJobName": "tune-003-cc", "TrainingJobArn": "arn:tune-003-cc",
     "TunedHyperParameters": {"eta": "0.3"}, "TrainingJobStatus": "InProgress",
     "ObjectiveStatus": "Pending", "Launched": False, "CreationTime": 14.0,
     "RetryOf": "tune-002-bb", "StopRequested": True, "EarlyStopped": True,
     "StoppedAtRung": 0},
]


def _insert(conn: sa.Connection, name: str, body: dict[str, Any],
            internal: dict[str, Any]) -> None:
    conn.execute(sa.text(
        "INSERT INTO resources (kind, name, arn, status, creation_time, last_modified_time, "
        "body, internal) VALUES ('hyper-parameter-tuning-job', :name, :arn, 'InProgress', 1, "
        "1, :body, :internal)"),
        {"name": name, "arn": f"arn:{name}", "body": json.dumps(body),
         "internal": json.dumps(internal)})


def test_an_old_data_directory_has_its_trials_moved_into_their_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'opensage.db'}"
    engine = sa.create_engine(url)
    state = {"MaxJobs": 3, "Seed": 7, "ParentTrials": [], "Trials": OLD_TRIALS}
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0004")
        # moved to internal by 0004
        _insert(conn, "tune", {"HyperParameterTuningJobName": "tune"},
                {"OpensageTuning": state})
        # written into the body by a server at 0004 that still kept it there
        _insert(conn, "later", {"HyperParameterTuningJobName": "later",
                                "OpensageTuning": {**state, "Trials": [
                                    {**OLD_TRIALS[0], "TrainingJobName": "later-001-dd"}]}},
                {})
        _insert(conn, "empty", {"HyperParameterTuningJobName": "empty"},
                {"OpensageTuning": {"MaxJobs": 1, "Seed": 1, "Trials": []}})
    engine.dispose()

    db = Database(url)
    db.migrate()
    store, trials = ResourceStore(db), TrialStore(db)
    row = store.get("hyper-parameter-tuning-job", "tune")
    assert row is not None
    assert row.internal == {"OpensageTuning": {"MaxJobs": 3, "Seed": 7, "ParentTrials": []}}
    moved = trials.of("tune")
    assert moved[0] == TuningTrial(
        "tune", 1, "tune-001-aa", "arn:tune-001-aa", 10.0, {"eta": "0.1"}, status="Completed",
        objective_status="Succeeded", objective=0.25, training_start_time=11.0,
        training_end_time=12.0, launched=True, bracket=1, rung=2)
    assert (moved[1].number, moved[1].retried, moved[1].definition_name,
            moved[1].failure_reason) == (2, True, "deep", "InternalServerError: boom")
    assert (moved[2].number, moved[2].launched, moved[2].retry_of, moved[2].stop_requested,
            moved[2].early_stopped, moved[2].stopped_at_rung, moved[2].rung) == (
        3, False, "tune-002-bb", True, True, 0, 0)
    later = store.get("hyper-parameter-tuning-job", "later")
    assert later is not None and "OpensageTuning" not in later.body
    assert later.internal["OpensageTuning"]["MaxJobs"] == 3
    assert [t.training_job_name for t in trials.of("later")] == ["later-001-dd"]
    assert trials.of("empty") == []

    # and back: the lists return to internal, the table goes
    with db.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0004")
        assert "tuning_trials" not in sa.inspect(conn).get_table_names()
        internal = json.loads(conn.execute(sa.text(
            "SELECT internal FROM resources WHERE name = 'tune'")).scalar_one())
    assert [t["TrainingJobName"] for t in internal["OpensageTuning"]["Trials"]] == [
        "tune-001-aa", "tune-002-bb", "tune-003-cc"]
    assert internal["OpensageTuning"]["Trials"][0]["Objective"] == 0.25
    db.dispose()
