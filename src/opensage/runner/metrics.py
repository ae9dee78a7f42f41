"""Metrics read from a job's log with its ``MetricDefinitions`` regexes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import regex


@dataclass(frozen=True)
class MetricPattern:
    name: str
    pattern: regex.Pattern[str]


def compile_definitions(definitions: list[dict[str, str]]) -> list[MetricPattern]:
    """Compiled definitions; one that does not compile is refused at CreateTrainingJob."""
    return [MetricPattern(d["Name"], regex.compile(d["Regex"])) for d in definitions]


def check_definitions(definitions: list[dict[str, str]]) -> str | None:
    """A message naming the first bad regex, or None."""
    for d in definitions:
        try:
            compiled = regex.compile(d["Regex"])
        except regex.error as err:
            return f"MetricDefinitions {d['Name']!r}: invalid regex {d['Regex']!r}: {err}"
        if compiled.groups < 1:
            return (f"MetricDefinitions {d['Name']!r}: the regex {d['Regex']!r} needs a capture "
                    "group for the value")
    return None


def extract(patterns: list[MetricPattern], line: str) -> list[tuple[str, float]]:
    """Every (metric, value) a log line yields; the first group is the value, as AWS reads it."""
    found = []
    for metric in patterns:
        match = metric.pattern.search(line)
        if match is None:
            continue
        try:
            value = float(match.group(1))
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(value):
            found.append((metric.name, value))
    return found
