"""CloudTrail: the append-only ``audit_events`` record and ``audit_trails``.

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_audit_events_time": ["event_time"],
    "ix_audit_events_id": ["event_id"],
    "ix_audit_events_name": ["event_name", "event_time"],
    "ix_audit_events_user": ["username", "event_time"],
    "ix_audit_events_resource": ["resource_name", "event_time"],
    "ix_audit_events_resource_type": ["resource_type", "event_time"],
    "ix_audit_events_source": ["event_source", "event_time"],
    "ix_audit_events_read_only": ["read_only", "event_time"],
    "ix_audit_events_key": ["access_key_id", "event_time"],
}


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_time", sa.Float, nullable=False),
        sa.Column("event_name", sa.String(128), nullable=False),
        sa.Column("event_source", sa.String(64), nullable=False),
        sa.Column("username", sa.String(128)),
        sa.Column("resource_type", sa.String(64)),
        sa.Column("resource_name", sa.String(1024)),
        sa.Column("read_only", sa.Boolean, nullable=False),
        sa.Column("access_key_id", sa.String(32)),
        sa.Column("resources", sa.JSON, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "audit_events", columns)
    op.create_table(
        "audit_trails",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("create_time", sa.Float, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":  # append-only: rows are never changed
        op.execute("CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events "
                   "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END")


def downgrade() -> None:
    op.drop_table("audit_trails")
    op.drop_table("audit_events")
