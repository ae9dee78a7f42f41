"""The search index: each resource's final metrics as rows of ``resource_metrics``.

``Search`` filters and sorts training jobs on ``Metrics.<name>`` (the first entry of that
name in the document's ``FinalMetricDataList``). Extracted from the stored documents, that
means reading every body of the kind; kept beside them, indexed on (kind, metric, value), a
metric filter or sort reads one index range and only the page's bodies. ``ResourceStore``
rewrites a resource's entries in the same transaction as every write of its body, so the
index never disagrees with a document.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert

from opensage.store.schema import resource_metrics

# The list (and its item keys) the index mirrors: ``ListItem`` properties of exactly this
# shape are answered from the index.
METRICS_LIST, METRIC_NAME, METRIC_VALUE = "FinalMetricDataList", "MetricName", "Value"


def final_metrics(body: dict[str, Any]) -> dict[str, float]:
    """The document's final metric values by name: the first entry of a name wins (as the
    JSON extraction it stands for), and only finite numbers are indexed (a metric value is
    one; anything else could not be compared as a number)."""
    found: dict[str, float] = {}
    items = body.get(METRICS_LIST)
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        name, value = item.get(METRIC_NAME), item.get(METRIC_VALUE)
        if not isinstance(name, str) or name in found:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value):
            found[name] = float(value)
        else:
            found[name] = math.nan  # present but not a number: shadows later entries
    return {name: value for name, value in found.items() if not math.isnan(value)}


def write_metrics(conn: Connection, resource_id: int, kind: str,
                  body: dict[str, Any]) -> None:
    """Make the index entries of one resource those of ``body`` (inside the body's write)."""
    conn.execute(delete(resource_metrics).where(resource_metrics.c.resource_id == resource_id))
    entries = [{"resource_id": resource_id, "kind": kind, "metric_name": name, "value": value}
               for name, value in final_metrics(body).items()]
    if entries:
        conn.execute(insert(resource_metrics), entries)


def forget(conn: Connection, resource_ids: Sequence[int] | Any) -> None:
    """Drop the entries of deleted resources (ids, or a subquery of them)."""
    conn.execute(delete(resource_metrics).where(
        resource_metrics.c.resource_id.in_(resource_ids)))
