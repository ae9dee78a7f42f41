"""Metric summaries of a trial component (Describe's ``Metrics``: Count, Min, Max, Last, Avg,
StdDev per metric), kept as mergeable running state so a batch of points updates them
without reading the series again (Chan et al.'s parallel variance: count, mean, M2)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

State = dict[str, Any]  # per metric: count, mean, m2, min, max, last, last_time, last_step


def merge(states: dict[str, State], points: Iterable[tuple[str, float, float, int | None]],
          source_arn: str | None = None) -> None:
    """Fold ``(metric, timestamp, value, step)`` points into ``states`` (in place). ``Last``
    is the value of the latest point: latest timestamp, then highest step, then arrival."""
    for name, when, value, step in points:
        if not math.isfinite(value):
            continue
        state = states.get(name)
        if state is None:
            state = states[name] = {"count": 0, "mean": 0.0, "m2": 0.0, "min": value,
                                    "max": value, "last": value, "last_time": when,
                                    "last_step": step}
            if source_arn:
                state["source_arn"] = source_arn
        count = state["count"] + 1
        delta = value - state["mean"]
        state["mean"] += delta / count
        state["m2"] += delta * (value - state["mean"])
        state["count"] = count
        state["min"] = min(state["min"], value)
        state["max"] = max(state["max"], value)
        if (when, step if step is not None else -1) >= (
                state["last_time"], state["last_step"] if state["last_step"] is not None else -1):
            state["last"], state["last_time"], state["last_step"] = value, when, step


def summaries(states: dict[str, State]) -> list[dict[str, Any]]:
    """The ``TrialComponentMetricSummary`` list, by metric name. StdDev is the sample
    standard deviation (0 for a single point)."""
    out = []
    for name in sorted(states):
        s = states[name]
        count = s["count"]
        summary: dict[str, Any] = {
            "MetricName": name, "TimeStamp": s["last_time"], "Max": s["max"], "Min": s["min"],
            "Last": s["last"], "Count": count, "Avg": s["mean"],
            "StdDev": math.sqrt(s["m2"] / (count - 1)) if count > 1 else 0.0}
        if s.get("source_arn"):
            summary["SourceArn"] = s["source_arn"]
        out.append(summary)
    return out


def stat(values: list[float], name: str) -> float:
    """One statistic (BatchGetMetrics' ``MetricStat``) of a non-empty list, in order."""
    if name == "Min":
        return min(values)
    if name == "Max":
        return max(values)
    if name == "Count":
        return float(len(values))
    if name == "Last":
        return values[-1]
    mean = sum(values) / len(values)
    if name == "Avg":
        return mean
    if len(values) < 2:
        return 0.0
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))  # StdDev
