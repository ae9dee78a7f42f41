"""Audit: ReadOnly lookups through a partial index of the write events.

Reads are most events and are found through ``ix_audit_events_time``; the two-column
``ix_audit_events_read_only`` cost every insert an index update for nothing. Writes get a
partial index instead, which inserting a read event does not touch.

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_audit_events_read_only", table_name="audit_events")
    op.create_index("ix_audit_events_writes", "audit_events", ["event_time"],
                    sqlite_where=sa.text("read_only = 0"),
                    postgresql_where=sa.text("NOT read_only"))


def downgrade() -> None:
    op.drop_index("ix_audit_events_writes", table_name="audit_events")
    op.create_index("ix_audit_events_read_only", "audit_events", ["read_only", "event_time"])
