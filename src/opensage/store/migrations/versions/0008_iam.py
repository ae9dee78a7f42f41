"""IAM users, roles and access keys (root, user, STS session).

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


def downgrade() -> None:
    op.drop_table("iam_access_keys")
    op.drop_table("iam_roles")
    op.drop_table("iam_users")
