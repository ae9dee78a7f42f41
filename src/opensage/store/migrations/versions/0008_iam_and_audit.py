"""IAM users, roles and access keys (root, user, STS session), and the CloudTrail record.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False, unique=True),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("create_time", sa.Float, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "iam_roles",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role_id", sa.String(32), nullable=False, unique=True),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("create_time", sa.Float, nullable=False),
        sa.Column("assume_role_policy", sa.Text, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "iam_access_keys",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_name", sa.String(64)),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("create_time", sa.Float, nullable=False),
        sa.Column("expiration", sa.Float),
        sa.Column("token_sha256", sa.String(64)),
        sa.Column("principal", sa.JSON, nullable=False),
    )
    op.create_index("ix_iam_access_keys_user", "iam_access_keys", ["user_name"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_time", sa.Float, nullable=False),
        sa.Column("event_source", sa.String(64), nullable=False),
        sa.Column("event_name", sa.String(128), nullable=False),
        sa.Column("read_only", sa.Boolean, nullable=False),
        sa.Column("username", sa.String(128)),
        sa.Column("access_key_id", sa.String(32)),
        sa.Column("principal_arn", sa.String(512)),
        sa.Column("resource_name", sa.String(1024)),
        sa.Column("source_ip", sa.String(64)),
        sa.Column("user_agent", sa.Text),
        sa.Column("error_code", sa.String(128)),
        sa.Column("error_message", sa.Text),
        sa.Column("request_id", sa.String(64)),
        sa.Column("request_parameters", sa.JSON),
        sa.Column("response_elements", sa.JSON),
    )
    for name, columns in (("time", []), ("name", ["event_name"]), ("user", ["username"]),
                          ("resource", ["resource_name"]), ("source", ["event_source"]),
                          ("key", ["access_key_id"]), ("readonly", ["read_only"])):
        op.create_index(f"ix_audit_events_{name}", "audit_events",
                        [*columns, "event_time", "id"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("iam_access_keys")
    op.drop_table("iam_roles")
    op.drop_table("iam_users")
