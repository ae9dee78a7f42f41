"""The search index: ``resource_metrics``, backfilled from the stored documents.

Each resource's final metric values (the first ``FinalMetricDataList`` entry of each name,
finite numbers only) become rows indexed on (kind, metric, value), so ``Search`` filters and
sorts on ``Metrics.<name>`` without reading every document. The rule is copied here, frozen
at this revision, from ``opensage.store.search_index.final_metrics``.

Revision ID: 0006
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 500


def _final_metrics(body: dict[str, Any]) -> dict[str, float]:
    found: dict[str, float] = {}
    items = body.get("FinalMetricDataList")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        name, value = item.get("MetricName"), item.get("Value")
        if not isinstance(name, str) or name in found:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value):
            found[name] = float(value)
        else:
            found[name] = math.nan  # present but not a number: shadows later entries
    return {name: value for name, value in found.items() if not math.isnan(value)}


def upgrade() -> None:
    metrics = op.create_table(
        "resource_metrics",
        sa.Column("resource_id", sa.Integer, primary_key=True),
        sa.Column("metric_name", sa.String(256), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_index("ix_resource_metrics_search", "resource_metrics",
                    ["kind", "metric_name", "value", "resource_id"])
    resources = sa.table("resources", sa.column("id", sa.Integer),
                         sa.column("kind", sa.String), sa.column("body", sa.JSON))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.select(resources.c.id, resources.c.kind, resources.c.body)
                            .where(resources.c.id > last).order_by(resources.c.id)
                            .limit(_BATCH)).all()
        if not rows:
            break
        entries = [{"resource_id": row_id, "kind": kind, "metric_name": name, "value": value}
                   for row_id, kind, body in rows
                   for name, value in _final_metrics(body or {}).items()]
        if entries:
            conn.execute(sa.insert(metrics), entries)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_resource_metrics_search", table_name="resource_metrics")
    op.drop_table("resource_metrics")
