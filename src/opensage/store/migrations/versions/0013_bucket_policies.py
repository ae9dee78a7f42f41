"""S3 bucket policies: ``s3_buckets.policy``, the document as PutBucketPolicy stored it.

NULL when the bucket has none (GetBucketPolicy answers ``NoSuchBucketPolicy``); the policy
goes with its row when the bucket is deleted.

Revision ID: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("s3_buckets", sa.Column("policy", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("s3_buckets") as batch:
        batch.drop_column("policy")
