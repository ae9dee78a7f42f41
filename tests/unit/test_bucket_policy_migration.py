"""Revision 0013 adds ``s3_buckets.policy``: an existing data directory keeps its buckets,
which have no policy until one is put; the downgrade removes the column again."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from opensage.store.db import Database, _alembic_config
from opensage.store.objects import ObjectStore


def test_old_buckets_have_no_policy_until_one_is_put(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'opensage.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0012")
        conn.execute(sa.text("INSERT INTO s3_buckets (name, creation_time, region) "
                             "VALUES ('old-bucket', 1.0, 'us-east-1')"))
    engine.dispose()

    db = Database(url)
    db.migrate()
    store = ObjectStore(str(tmp_path / "objects"), db, region="us-east-1")
    assert store.head_bucket("old-bucket").creation_time == 1.0
    assert store.bucket_policy("old-bucket") is None
    store.set_bucket_policy("old-bucket", '{"Version": "2012-10-17", "Statement": []}')
    assert store.bucket_policy("old-bucket") == '{"Version": "2012-10-17", "Statement": []}'
    with db.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0012")
        columns = {c["name"] for c in sa.inspect(conn).get_columns("s3_buckets")}
    assert columns == {"name", "creation_time", "region"}
    db.dispose()
