"""IAM policies: customer managed policies, inline policies, attachments, groups.

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_policies",
        sa.Column("arn", sa.String(600), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("policy_id", sa.String(32), nullable=False, unique=True),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("create_time", sa.Float, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "iam_inline_policies",
        sa.Column("owner_kind", sa.String(8), primary_key=True),
        sa.Column("owner_name", sa.String(128), primary_key=True),
        sa.Column("policy_name", sa.String(128), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_table(
        "iam_attachments",
        sa.Column("owner_kind", sa.String(8), primary_key=True),
        sa.Column("owner_name", sa.String(128), primary_key=True),
        sa.Column("policy_arn", sa.String(600), primary_key=True),
    )
    op.create_index("ix_iam_attachments_policy", "iam_attachments", ["policy_arn"])
    op.create_table(
        "iam_groups",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("group_id", sa.String(32), nullable=False, unique=True),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("create_time", sa.Float, nullable=False),
    )
    op.create_table(
        "iam_group_members",
        sa.Column("group_name", sa.String(128), primary_key=True),
        sa.Column("user_name", sa.String(64), primary_key=True),
    )
    op.create_index("ix_iam_group_members_user", "iam_group_members", ["user_name"])


def downgrade() -> None:
    op.drop_table("iam_group_members")
    op.drop_table("iam_groups")
    op.drop_table("iam_attachments")
    op.drop_table("iam_inline_policies")
    op.drop_table("iam_policies")
