"""The server on each store: SQLite by default, PostgreSQL when CI provides one.

State must survive a restart; ARNs follow ``--account-id``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from botocore.config import Config

from opensage.server import start_in_thread
from opensage.settings import Settings

PG_URL = os.environ.get("OPENSAGE_TEST_DB_URL")


def sagemaker_client(url: str):
    return boto3.client("sagemaker", endpoint_url=url, region_name="eu-west-1",
                        aws_access_key_id="k", aws_secret_access_key="s",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    if not PG_URL:
        pytest.skip("OPENSAGE_TEST_DB_URL not set (.ci/run sets it when PostgreSQL is available)")
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:  # a clean schema for each test
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    yield PG_URL


def test_state_survives_restart_and_follows_account(tmp_path: Path, db_url: str | None):
    settings = Settings(data_dir=tmp_path, port=0, db_url=db_url, account_id="111122223333",
                        region="eu-west-1")
    first = start_in_thread(settings)
    try:
        sm = sagemaker_client(first.url)
        arn = sm.create_model(ModelName="keep", PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"},
                              Tags=[{"Key": "k", "Value": "v"}])["ModelArn"]
        for i in range(12):
            sm.create_model(ModelName=f"page_{i}".replace("_", "-"),
                            PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"})
    finally:
        first.stop()
    assert arn == "arn:aws:sagemaker:eu-west-1:111122223333:model/keep"

    second = start_in_thread(settings)
    try:
        sm = sagemaker_client(second.url)
        assert sm.describe_model(ModelName="keep")["ModelArn"] == arn
        assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]
        pages = sm.get_paginator("list_models").paginate(NameContains="page-",
                                                         PaginationConfig={"PageSize": 5})
        assert sorted(m["ModelName"] for p in pages for m in p["Models"]) == sorted(
            f"page-{i}" for i in range(12))
    finally:
        second.stop()


def test_stale_schema_is_refused_with_the_command_to_run(tmp_path: Path):
    import subprocess
    import sys
    from pathlib import Path as P

    from alembic import command

    from opensage.store.db import Database, StaleSchemaError, _alembic_config

    url = f"sqlite:///{tmp_path / 'opensage.db'}"
    db = Database(url)
    with db.engine.begin() as conn:  # an older opensage's database
        command.upgrade(_alembic_config(conn), "0001")
    with pytest.raises(StaleSchemaError, match="opensage db upgrade"):
        db.prepare()
    cli = str(P(sys.executable).parent / "opensage")
    refused = subprocess.run([cli, "server", "--data-dir", str(tmp_path), "--port", "0"],
                             check=False, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "opensage db upgrade" in refused.stderr
    upgraded = subprocess.run([cli, "db", "upgrade", "--data-dir", str(tmp_path)],
                              check=False, capture_output=True, text=True, timeout=60)
    assert upgraded.returncode == 0
    db.prepare()  # now at head
    db.dispose()


def test_racing_lease_claims_exactly_one_wins(tmp_path: Path, db_url: str | None):
    from opensage.store.db import Database
    from opensage.store.leases import Leases
    from tests.unit.test_store_core import claim_race

    db = Database(db_url or f"sqlite:///{tmp_path / 'leases.db'}")
    db.prepare()
    try:
        claim_race(Leases(db))
    finally:
        db.dispose()


def test_a_lease_keeper_finds_the_keys_it_lost_on_both_backends(tmp_path: Path,
                                                                 db_url: str | None):
    """Fencing's UPDATE ... RETURNING, on SQLite and PostgreSQL alike."""
    from opensage.store.db import Database
    from tests.unit.test_store_core import (
        test_a_keeper_reports_each_key_it_lost_once_and_only_those as keeper_reports_lost,
    )

    db = Database(db_url or f"sqlite:///{tmp_path / 'leases.db'}")
    db.prepare()
    try:
        keeper_reports_lost(db)
    finally:
        db.dispose()


def test_search_answers_the_same_through_the_search_index(
        tmp_path: Path, db_url: str | None, monkeypatch: pytest.MonkeyPatch):
    from alembic import command

    from opensage.store.db import Database, _alembic_config
    from opensage.store.resources import ResourceStore
    from tests.unit.test_search_batched import (
        SEARCHES,
        page_through,
        seeded,
        whole_document_search,
    )

    db = Database(db_url or f"sqlite:///{tmp_path / 'search.db'}")
    db.prepare()
    try:
        backend = seeded(ResourceStore(db))
        for params in SEARCHES:
            assert page_through(backend, params) == whole_document_search(
                backend, monkeypatch, params), params
        with db.engine.begin() as conn:  # revision 0006 backfills what is already stored
            command.downgrade(_alembic_config(conn), "0006-1")
            command.upgrade(_alembic_config(conn), "head")
        for params in SEARCHES[:2]:
            assert page_through(backend, params) == whole_document_search(
                backend, monkeypatch, params), params
    finally:
        db.dispose()
