"""Revision 0006 creates the search index and fills it from the documents already stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from opensage.services import search as search_module
from opensage.store.db import Database, _alembic_config
from opensage.store.resources import ResourceStore

PARENT = "0006-1"  # the revision before the search index


class Backend:
    def __init__(self, store: ResourceStore) -> None:
        self.resources = store


def test_an_old_data_directory_gets_its_metrics_indexed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'opensage.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), PARENT)
        for i in range(1, 1201):  # more than one backfill batch
            metrics = [{"MetricName": "validation:rmse", "Value": (i * 37 % 1000) / 1000},
                       {"MetricName": "validation:rmse", "Value": 99.0},  # first one wins
                       {"MetricName": "train:loss", "Value": "n/a"}] if i % 5 else []
            conn.execute(sa.text(
                "INSERT INTO resources (kind, name, arn, status, creation_time, "
                "last_modified_time, body) VALUES ('training-job', :name, :arn, 'Completed', "
                ":t, :t, :body)"), {"name": f"job-{i:04d}", "arn": f"arn:job-{i:04d}",
                                    "t": float(i), "body": json.dumps({
                                        "TrainingJobName": f"job-{i:04d}",
                                        "FinalMetricDataList": metrics})})
        conn.execute(sa.text(
            "INSERT INTO resources (kind, name, arn, status, creation_time, "
            "last_modified_time, body) VALUES ('model', 'm', 'arn:m', NULL, 1, 1, '{}')"))
    engine.dispose()

    db = Database(url)
    db.migrate()
    with db.engine.connect() as conn:
        entries = conn.execute(sa.text(
            "SELECT r.name, m.kind, m.metric_name, m.value FROM resource_metrics m "
            "JOIN resources r ON r.id = m.resource_id ORDER BY r.id")).all()
    assert len(entries) == 960  # 4 in 5 jobs, one number each ("n/a" is not one)
    assert entries[0] == ("job-0001", "training-job", "validation:rmse", 0.037)
    assert {e.metric_name for e in entries} == {"validation:rmse"}

    backend = Backend(ResourceStore(db))
    params = {"Resource": "TrainingJob", "SortBy": "Metrics.validation:rmse",
              "SortOrder": "Ascending", "MaxResults": 100, "SearchExpression": {"Filters": [
                  {"Name": "Metrics.validation:rmse", "Operator": "LessThan", "Value": "0.2"}]}}
    indexed = search_module.search(backend, params)  # type: ignore[arg-type]
    monkeypatch.setattr(search_module, "_property_names", lambda *a: None)
    monkeypatch.setattr(search_module, "_metric_ranking", lambda *a: None)
    whole = search_module.search(backend, params)  # type: ignore[arg-type]
    assert indexed == whole and len(indexed["Results"]) == 100

    with db.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), PARENT)
        assert "resource_metrics" not in sa.inspect(conn).get_table_names()
    db.dispose()
