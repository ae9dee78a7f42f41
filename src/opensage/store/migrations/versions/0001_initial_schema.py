"""Initial schema: resources, tags, S3 objects and uploads, CloudWatch Logs.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("arn", sa.String(512), nullable=False, unique=True),
        sa.Column("status", sa.String(64)),
        sa.Column("creation_time", sa.Float, nullable=False),
        sa.Column("last_modified_time", sa.Float, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.UniqueConstraint("kind", "name", name="uq_resources_kind_name"),
    )
    op.create_index("ix_resources_kind_created", "resources", ["kind", "creation_time", "id"])
    op.create_table(
        "tags",
        sa.Column("arn", sa.String(512), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_table(
        "s3_buckets",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("creation_time", sa.Float, nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
    )
    op.create_table(
        "s3_objects",
        sa.Column("bucket", sa.String(63), primary_key=True),
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("blob", sa.String(256), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("etag", sa.String(80), nullable=False),
        sa.Column("last_modified", sa.Float, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
    )
    op.create_table(
        "s3_uploads",
        sa.Column("upload_id", sa.String(64), primary_key=True),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("initiated", sa.Float, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
    )
    op.create_table(
        "s3_parts",
        sa.Column("upload_id", sa.String(64), primary_key=True),
        sa.Column("part_number", sa.Integer, primary_key=True),
        sa.Column("blob", sa.String(256), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("etag", sa.String(80), nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
    )
    op.create_table(
        "log_groups",
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("retention_days", sa.Integer),
        sa.Column("meta", sa.JSON, nullable=False),
    )
    op.create_table(
        "log_streams",
        sa.Column("group_name", sa.String(512), primary_key=True),
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("first_event_time", sa.BigInteger),
        sa.Column("last_event_time", sa.BigInteger),
        sa.Column("last_ingestion_time", sa.BigInteger),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "log_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("group_name", sa.String(512), nullable=False),
        sa.Column("stream_name", sa.String(512), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("ingestion_time", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_log_events_stream_time", "log_events",
                    ["group_name", "stream_name", "timestamp", "id"])
    op.create_index("ix_log_events_group_time", "log_events", ["group_name", "timestamp", "id"])


def downgrade() -> None:
    for table in ("log_events", "log_streams", "log_groups", "s3_parts", "s3_uploads",
                  "s3_objects", "s3_buckets", "tags", "resources"):
        op.drop_table(table)
