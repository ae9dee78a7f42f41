"""Experiments and lineage: trial memberships, lineage associations, and the iteration
number of a SageMaker Metrics point (``metric_data.step``).

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metric_data") as batch:
        batch.add_column(sa.Column("step", sa.Integer))
    op.create_table(
        "trial_memberships",
        sa.Column("trial_name", sa.String(256), primary_key=True),
        sa.Column("component_name", sa.String(256), primary_key=True),
        sa.Column("experiment_name", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.Float, nullable=False),
    )
    op.create_index("ix_trial_memberships_component", "trial_memberships",
                    ["component_name"])
    op.create_index("ix_trial_memberships_experiment", "trial_memberships",
                    ["experiment_name"])
    op.create_table(
        "lineage_associations",
        sa.Column("source_arn", sa.String(512), primary_key=True),
        sa.Column("destination_arn", sa.String(512), primary_key=True),
        sa.Column("association_type", sa.String(32), nullable=False),
        sa.Column("source_type", sa.String(256), nullable=False),
        sa.Column("destination_type", sa.String(256), nullable=False),
        sa.Column("source_name", sa.String(256), nullable=False),
        sa.Column("destination_name", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.Float, nullable=False),
    )
    op.create_index("ix_lineage_associations_destination", "lineage_associations",
                    ["destination_arn"])


def downgrade() -> None:
    op.drop_table("lineage_associations")
    op.drop_table("trial_memberships")
    with op.batch_alter_table("metric_data") as batch:
        batch.drop_column("step")
