"""CloudWatch metric data: written by jobs and endpoints, read by GetMetricStatistics/Data.

Points are kept raw (no roll-up) for ``OPENSAGE_METRIC_RETENTION_DAYS`` (default 15, as long as
CloudWatch keeps 1-minute data); ``purge_before`` deletes older ones, run by housekeeping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import delete, insert, select

from opensage.store.db import Database
from opensage.store.schema import metric_data

TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"
# SageMaker Metrics (BatchPutMetrics): one series per (trial component, metric), with steps
TRIAL_COMPONENT_NAMESPACE = "/aws/sagemaker/TrialComponents"
PURGE_CHUNK = 5000  # points deleted per transaction: writers wait at most one chunk


# a dimension set: {name: value}, or CloudWatch's [{"Name": ..., "Value": ...}]
Dimensions: TypeAlias = Mapping[str, str] | Sequence[Mapping[str, str]]
_SPECIAL = re.compile(r"[\\|=]")  # escaped with a backslash inside a name or value
_PART = re.compile(r"((?:[^\\|=]|\\.)*)=((?:[^\\|=]|\\.)*)(?:\||$)")


def dimension_key(dimensions: Dimensions) -> str:
    """One canonical string per dimension set (``name=value|...``, sorted by name), so a series
    is one value. ``\\``, ``|`` and ``=`` inside a name or value are escaped, so no two sets
    share a key; a set without them keeps the plain form."""
    pairs: Iterable[tuple[str, str]]
    if isinstance(dimensions, Mapping):
        pairs = dimensions.items()
    else:
        pairs = ((d["Name"], d["Value"]) for d in dimensions)
    return "|".join(f"{_escape(k)}={_escape(v)}" for k, v in sorted(pairs))


def parse_dimension_key(key: str) -> dict[str, str]:
    """The dimension set a :func:`dimension_key` stands for."""
    return {_unescape(m[1]): _unescape(m[2]) for m in _PART.finditer(key)}


def _escape(text: str) -> str:
    return _SPECIAL.sub(lambda m: "\\" + m[0], text)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


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

    def put_trial_component_metrics(self, component: str,
                                    points: Iterable[tuple[str, float, float, int | None]]
                                    ) -> None:
        """SageMaker Metrics points of a trial component: (metric, timestamp, value, step);
        the step (iteration number) is kept beside the point."""
        rows = [{"namespace": TRIAL_COMPONENT_NAMESPACE, "metric_name": m,
                 "dimensions": dimension_key({"TrialComponentName": component}),
                 "timestamp": ts, "value": v, "unit": "None", "step": step}
                for m, ts, v, step in points if math.isfinite(v)]
        if rows:
            with self.db.transaction() as conn:
                conn.execute(insert(metric_data), rows)

    def trial_component_points(self, component: str, metric: str
                               ) -> list[tuple[float, float, int | None]]:
        """(timestamp, value, step) of one metric of a trial component, oldest first."""
        c = metric_data.c
        stmt = (select(c.timestamp, c.value, c.step)
                .where(c.namespace == TRIAL_COMPONENT_NAMESPACE, c.metric_name == metric,
                       c.dimensions == dimension_key({"TrialComponentName": component}))
                .order_by(c.timestamp, c.id))
        with self.db.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(stmt)]

    def forget_trial_component(self, component: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(delete(metric_data).where(
                metric_data.c.namespace == TRIAL_COMPONENT_NAMESPACE,
                metric_data.c.dimensions == dimension_key({"TrialComponentName": component})))

    def purge_before(self, cutoff: float) -> int:
        """Delete the points timestamped before ``cutoff`` (epoch seconds); returns how many."""
        c = metric_data.c
        purged = 0
        while True:
            with self.db.transaction() as conn:
                ids = conn.execute(select(c.id).where(c.timestamp < cutoff)
                                   .limit(PURGE_CHUNK)).scalars().all()
                if ids:
                    conn.execute(delete(metric_data).where(c.id.in_(ids)))
            purged += len(ids)
            if len(ids) < PURGE_CHUNK:
                return purged

    def put_training_metrics(self, job: str, values: Iterable[tuple[str, float, float]]) -> None:
        self.put(TRAINING_NAMESPACE, ((name, {"TrainingJobName": job}, when, value, "None")
                                      for name, value, when in values))

    def list_series(self, namespace: str | None, metric: str | None,
                    dimension_filters: Sequence[Mapping[str, str]] = ()) -> list[dict[str, Any]]:
        """Distinct (namespace, metric, dimensions) series, for ListMetrics."""
        stmt = select(metric_data.c.namespace, metric_data.c.metric_name,
                      metric_data.c.dimensions).distinct()
        if namespace:
            stmt = stmt.where(metric_data.c.namespace == namespace)
        if metric:
            stmt = stmt.where(metric_data.c.metric_name == metric)
        with self.db.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(metric_data.c.namespace, metric_data.c.metric_name,
                                              metric_data.c.dimensions)).all()
        found = []
        for ns, name, key in rows:
            dims = parse_dimension_key(key)
            if all(f["Name"] in dims and (f.get("Value") is None or dims[f["Name"]] == f["Value"])
                   for f in dimension_filters):
                found.append({"Namespace": ns, "MetricName": name, "Dimensions": [
                    {"Name": k, "Value": v} for k, v in dims.items()]})
        return found

    def series(self, namespace: str, metric: str, dimensions: Dimensions, start: float,
               end: float) -> list[Datapoint]:
        stmt = (select(metric_data.c.timestamp, metric_data.c.value, metric_data.c.unit)
                .where(metric_data.c.namespace == namespace,
                       metric_data.c.metric_name == metric,
                       metric_data.c.dimensions == dimension_key(dimensions),
                       metric_data.c.timestamp >= start, metric_data.c.timestamp < end)
                .order_by(metric_data.c.timestamp, metric_data.c.id))
        with self.db.engine.connect() as conn:
            return [Datapoint(*row) for row in conn.execute(stmt)]

    def series_of(self, namespace: str, metric: str, dimension_sets: Sequence[Any],
                  start: float, end: float) -> dict[str, list[Datapoint]]:
        """``series`` for many dimension sets in one query, by ``dimension_key`` (a set
        without data maps to an empty list)."""
        found: dict[str, list[Datapoint]] = {dimension_key(d): [] for d in dimension_sets}
        if not found:
            return found
        stmt = (select(metric_data.c.dimensions, metric_data.c.timestamp, metric_data.c.value,
                       metric_data.c.unit)
                .where(metric_data.c.namespace == namespace,
                       metric_data.c.metric_name == metric,
                       metric_data.c.dimensions.in_(list(found)),
                       metric_data.c.timestamp >= start, metric_data.c.timestamp < end)
                .order_by(metric_data.c.timestamp, metric_data.c.id))
        with self.db.engine.connect() as conn:
            for key, *point in conn.execute(stmt):
                found[key].append(Datapoint(*point))
        return found


# -- aggregation (GetMetricStatistics / GetMetricData) ----------------------------------------
BASIC_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


def aggregate(points: Sequence[Datapoint], start: float, period: int,
              statistics: Sequence[str], extended: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One datapoint per non-empty period bucket, as CloudWatch answers them."""
    buckets: dict[int, list[Datapoint]] = {}
    for point in points:
        buckets.setdefault(int((point.timestamp - start) // period), []).append(point)
    result = []
    for index in sorted(buckets):
        members = buckets[index]
        values = sorted(p.value for p in members)
        summary: dict[str, Any] = {"Timestamp": start + index * period,
                                   "Unit": members[-1].unit}
        every = {"SampleCount": float(len(values)), "Sum": sum(values),
                 "Average": sum(values) / len(values), "Minimum": values[0],
                 "Maximum": values[-1]}
        for name in statistics:
            summary[name] = every[name]
        if extended:
            summary["ExtendedStatistics"] = {p: percentile(values, p) for p in extended}
        result.append(summary)
    return result


def percentile(sorted_values: Sequence[float], name: str) -> float:
    """``p90`` / ``p99.9``: nearest-rank percentile of the sorted values."""
    try:
        q = float(name.lstrip("pP"))
    except ValueError:
        raise ValueError(f"Unsupported extended statistic {name!r}: use pNN or pNN.N") from None
    if not 0 <= q <= 100:
        raise ValueError(f"Percentile {name!r} must be between p0 and p100")
    rank = max(0, math.ceil(q / 100 * len(sorted_values)) - 1)
    return sorted_values[rank]
