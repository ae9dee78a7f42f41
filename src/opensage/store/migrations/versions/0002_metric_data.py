"""CloudWatch metric data points.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_data",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("metric_name", sa.String(256), nullable=False),
        sa.Column("dimensions", sa.String(1024), nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
    )
    op.create_index("ix_metric_data_series", "metric_data",
                    ["namespace", "metric_name", "dimensions", "timestamp"])


def downgrade() -> None:
    op.drop_table("metric_data")
