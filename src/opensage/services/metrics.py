"""CloudWatch metric data: written by jobs and endpoints, read by GetMetricStatistics/Data."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from opensage.store.db import Database
from opensage.store.schema import metric_data

TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"


def dimension_key(dimensions: Mapping[str, str] | Sequence[Mapping[str, str]]) -> str:
    """One canonical string per dimension set (sorted by name), so a series is one value."""
    if isinstance(dimensions, Mapping):
        pairs = dimensions.items()
    else:
        pairs = ((d["Name"], d["Value"]) for d in dimensions)
    return "|".join(f"{k}={v}" for k, v in sorted(pairs))


@dataclass(frozen=True)
class Datapoint:
    timestamp: float
    value: float
    unit: str


class MetricStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, namespace: str, points: Iterable[tuple[str, Mapping[str, str], float, float,
                                                       str]]) -> None:
        """(metric, dimensions, timestamp, value, unit) rows; non-finite values are dropped."""
        rows = [{"namespace": namespace, "metric_name": m, "dimensions": dimension_key(d),
                 "timestamp": ts, "value": v, "unit": unit}
                for m, d, ts, v, unit in points if math.isfinite(v)]
        if rows:
            with self.db.transaction() as conn:
                conn.execute(insert(metric_data), rows)

    def put_training_metrics(self, job: str, values: Iterable[tuple[str, float, float]]) -> None:
        self.put(TRAINING_NAMESPACE, ((name, {"TrainingJobName": job}, when, value, "None")
                                      for name, value, when in values))

    def series(self, namespace: str, metric: str, dimensions: Any, start: float,
               end: float) -> list[Datapoint]:
        stmt = (select(metric_data.c.timestamp, metric_data.c.value, metric_data.c.unit)
                .where(metric_data.c.namespace == namespace,
                       metric_data.c.metric_name == metric,
                       metric_data.c.dimensions == dimension_key(dimensions),
                       metric_data.c.timestamp >= start, metric_data.c.timestamp < end)
                .order_by(metric_data.c.timestamp, metric_data.c.id))
        with self.db.engine.connect() as conn:
            return [Datapoint(*row) for row in conn.execute(stmt)]
