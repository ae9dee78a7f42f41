"""When a tuning job may end before ``MaxNumberOfTrainingJobs``: ``TuningJobCompletionCriteria``
and ``ResourceLimits.MaxRuntimeInSeconds``. Pure functions over the objective values of the
scored trials, in the order they ended.

* ``TargetObjectiveMetricValue``: the search ends once the best objective reaches the target
  (``<=`` for Minimize, ``>=`` for Maximize).
* ``BestObjectiveNotImproving.MaxNumberOfTrainingJobsNotImproving`` (K, at least 3): a trial
  *improves* when its objective beats the best objective before it by more than
  ``IMPROVEMENT`` (1 %, AWS's wording: "failed to improve model performance by 1% or greater")
  of that best's magnitude; the first scored trial always improves. The search ends once the
  last K scored trials have not improved. ``NumberOfTrainingJobsObjectiveNotImproving`` is the
  number of scored trials since the last improvement.
* ``ConvergenceDetected.CompleteOnConvergence = Enabled`` (opensage's rule; AWS does not publish
  its own): converged once at least ``window + 1`` trials have been scored and none of the
  last ``window`` improved the best by more than ``CONVERGENCE_TOLERANCE`` (1e-4) of its
  magnitude, with ``window = max(3, ceil(MaxNumberOfTrainingJobs / 4))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypedDict

IMPROVEMENT = 0.01
CONVERGENCE_TOLERANCE = 1e-4
CONVERGENCE_MIN_WINDOW = 3


class BestObjectiveNotImproving(TypedDict, total=False):
    MaxNumberOfTrainingJobsNotImproving: int


class ConvergenceDetected(TypedDict, total=False):
    CompleteOnConvergence: Literal["Disabled", "Enabled"]


class CompletionCriteria(TypedDict, total=False):
    """``HyperParameterTuningJobConfig.TuningJobCompletionCriteria``, as the API takes it."""

    TargetObjectiveMetricValue: float
    BestObjectiveNotImproving: BestObjectiveNotImproving
    ConvergenceDetected: ConvergenceDetected


def _better(value: float, best: float, direction: str, tolerance: float) -> bool:
    margin = tolerance * max(abs(best), 1e-12)
    if direction == "Maximize":
        return value > best + margin
    return value < best - margin


def not_improving(values: Sequence[float], direction: str,
                  tolerance: float = IMPROVEMENT) -> int:
    """How many of ``values`` (in the order the trials ended) came after the last one that
    improved the best before it by more than ``tolerance`` (relative)."""
    best: float | None = None
    since = 0
    for value in values:
        if best is None or _better(value, best, direction, tolerance):
            best, since = value, 0
        else:
            since += 1
            best = max(best, value) if direction == "Maximize" else min(best, value)
    return since


def target_reached(values: Sequence[float], target: float, direction: str) -> bool:
    if not values:
        return False
    if direction == "Maximize":
        return max(values) >= target
    return min(values) <= target


def convergence_window(max_jobs: int) -> int:
    return max(CONVERGENCE_MIN_WINDOW, math.ceil(max_jobs / 4))


def converged(values: Sequence[float], direction: str, max_jobs: int) -> bool:
    window = convergence_window(max_jobs)
    if len(values) < window + 1:
        return False
    return not_improving(values, direction, CONVERGENCE_TOLERANCE) >= window


def reason(values: Sequence[float], direction: str, criteria: CompletionCriteria | None,
           max_jobs: int) -> str | None:
    """The completion criterion the scored ``values`` meet (None: the search goes on)."""
    criteria = criteria or {}
    target = criteria.get("TargetObjectiveMetricValue")
    if target is not None and target_reached(values, float(target), direction):
        return "TargetObjectiveMetricValue"
    limit = (criteria.get("BestObjectiveNotImproving") or {}).get(
        "MaxNumberOfTrainingJobsNotImproving")
    if limit is not None and values and not_improving(values, direction) >= limit:
        return "BestObjectiveNotImproving"
    if ((criteria.get("ConvergenceDetected") or {}).get("CompleteOnConvergence") == "Enabled"
            and converged(values, direction, max_jobs)):
        return "ConvergenceDetected"
    return None
