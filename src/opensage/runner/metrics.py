"""Metrics read from a job's log with its ``MetricDefinitions`` regexes."""

from __future__ import annotations

import functools
import math
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import regex

# The standard library's regex parser, to find a pattern's literal text. `sre_parse` is its
# deprecated public alias (a warning on import) and the name typeshed types it under.
if TYPE_CHECKING:
    import sre_parse
else:
    from re import _parser as sre_parse


@dataclass(frozen=True)
class MetricPattern:
    name: str
    pattern: regex.Pattern[str]
    required: tuple[str, ...] = ()  # texts every match contains: else the line is not searched


def compile_definitions(definitions: list[dict[str, str]]) -> list[MetricPattern]:
    """Compiled definitions; one that does not compile is refused at CreateTrainingJob."""
    return [MetricPattern(d["Name"], regex.compile(d["Regex"]), required_texts(d["Regex"]))
            for d in definitions]


@functools.lru_cache(maxsize=1024)  # every job of an algorithm has the same definitions
def required_texts(source: str) -> tuple[str, ...]:
    """The runs of literal characters (two or more) at the top level of ``source``, which
    every match contains, the last first (in metric regexes the last names the metric); none
    when that cannot be told: a top-level alternation, a case-insensitive pattern, or syntax
    only the ``regex`` module reads. A built-in declares dozens of metrics and a log line
    holds one or two, so checking these first spares most searches."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # re's FutureWarnings on regex-module syntax
            parsed = sre_parse.parse(source)
    except (re.error, ValueError, TypeError, RecursionError, OverflowError):
        return ()
    if parsed.state.flags & (re.IGNORECASE | re.LOCALE):
        return ()
    runs: list[str] = []
    run: list[str] = []
    codes: list[tuple[object, object]] = [*parsed.data, (None, None)]  # a sentinel ends a run
    for op, value in codes:
        if op is sre_parse.LITERAL and isinstance(value, int):
            run.append(chr(value))
            continue
        # braces: re reads a fuzzy constraint of the regex module (``(?:x){e<=1}``) as text
        if len(run) >= 2 and not {"{", "}"} & set(run):
            runs.append("".join(run))
        run = []
    return tuple(reversed(runs))


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
        for text in metric.required:
            if text not in line:
                break
        else:
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
