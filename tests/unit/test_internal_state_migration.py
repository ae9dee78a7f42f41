"""Revision 0004 moves opensage's bookkeeping out of the API document into ``internal``."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from opensage.store.db import Database, _alembic_config
from opensage.store.resources import ResourceStore


def test_an_old_data_directory_has_its_internal_keys_moved_out_of_the_document(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'opensage.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0003")
        body = {"EndpointName": "e", "EndpointStatus": "InService",
                "_Deployment": {"Variants": [{"VariantName": "v"}]}, "_Pending": None}
        conn.execute(sa.text(
            "INSERT INTO resources (kind, name, arn, status, creation_time, "
            "last_modified_time, body) VALUES ('endpoint', 'e', 'arn:e', 'InService', 1, 1, "
            ":body)"), {"body": json.dumps(body)})
        plain = {"ModelName": "m"}
        conn.execute(sa.text(
            "INSERT INTO resources (kind, name, arn, status, creation_time, "
            "last_modified_time, body) VALUES ('model', 'm', 'arn:m', NULL, 1, 1, :body)"),
            {"body": json.dumps(plain)})
    engine.dispose()

    db = Database(url)
    db.migrate()
    store = ResourceStore(db)
    endpoint = store.get("endpoint", "e")
    assert endpoint is not None
    assert endpoint.body == {"EndpointName": "e", "EndpointStatus": "InService"}
    assert endpoint.internal == {"_Deployment": {"Variants": [{"VariantName": "v"}]},
                                 "_Pending": None}
    model = store.get("model", "m")
    assert model is not None and model.body == plain and model.internal == {}
    db.dispose()


def test_internal_state_is_written_and_changed_apart_from_the_document(
        tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'opensage.db'}")
    db.prepare()
    store = ResourceStore(db)
    store.create("endpoint", "e", "arn:e", {"EndpointStatus": "Creating"}, now=1.0,
                 status="Creating", internal={"_Deployment": {"n": 1}})
    moved = store.transition("endpoint", "e", ["Creating"], "InService", now=2.0,
                             change=lambda body: body.update(EndpointStatus="InService"),
                             change_internal=lambda internal: internal.update(_Pending=None))
    assert moved.internal == {"_Deployment": {"n": 1}, "_Pending": None}
    row = store.get("endpoint", "e")
    assert row is not None and row.body == {"EndpointStatus": "InService"}
    assert row.internal == {"_Deployment": {"n": 1}, "_Pending": None}
    assert store.update("endpoint", "e", row.body, now=3.0, internal={"x": 1})
    again = store.get("endpoint", "e")
    assert again is not None and again.internal == {"x": 1}
    db.dispose()
