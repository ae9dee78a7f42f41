"""Pruners: which running trials of a tuning job to stop, given the trials and their
intermediate objective values (the metric series their children's logs produce, one value
per round or epoch), as Optuna's pruners do.

A pruner answers :class:`Verdict` values and acts on nothing: the reconcile loop stops the
children and stores what the verdicts say. Two are built in: :class:`MedianStopping`
(``TrainingJobEarlyStoppingType: Auto``, AWS's median rule) and :class:`Hyperband`
(asynchronous successive halving, for ``Strategy: Hyperband``). A trial a pruner stops ends
``Stopped`` and its last value is its objective.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opensage.services.metrics import TRAINING_NAMESPACE, MetricStore, dimension_key
from opensage.services.tuning.plans import Plan
from opensage.services.tuning.states import TRIAL_TERMINAL, ObjectiveStatus, TrialStatus
from opensage.services.tuning.strategies import (
    Peer,
    hyperband_brackets,
    median_rule,
    running_averages,
    walk_rungs,
)
from opensage.store.trials import TuningTrial

log = logging.getLogger(__name__)

# The median rule needs this many ended trials that reached a step before it stops anything
# at that step.
EARLY_STOPPING_MIN_TRIALS = 2
_CACHE_LIMIT = 10_000  # ended series kept per cache (an ended series cannot change)


@dataclass(frozen=True)
class Verdict:
    """What a pruner decided about one running trial."""

    number: int  # the trial's
    stop: bool  # stop its child now
    early_stopped: bool = True  # the stop is a pruning (not a spent budget)
    rung: int | None = None  # Hyperband: the rungs it has passed now
    stopped_at_rung: int | None = None


class Pruner(Protocol):
    def prune(self, trials: Sequence[TuningTrial], plan: Plan,
              values: IntermediateValues) -> list[Verdict]:
        """Verdicts on the ``prunable`` trials among ``trials`` (those of one tuning job)."""


def prunable(trial: TuningTrial) -> bool:
    """A running child that no one has asked to stop yet."""
    return (trial.launched and not trial.stop_requested
            and trial.status not in TRIAL_TERMINAL)


class IntermediateValues:
    """The objective series of child jobs, many in one query; an ended child's series is
    kept (it can no longer change), so a poll reads only the running children's."""

    def __init__(self, metrics: MetricStore, clock: Callable[[], float]) -> None:
        self.metrics = metrics
        self.clock = clock
        self._ended: dict[str, list[float]] = {}

    def of(self, trials: Sequence[TuningTrial], metric: str) -> dict[str, list[float]]:
        """Each trial's series, by training job name."""
        fresh = self._read([t.training_job_name for t in trials
                            if t.training_job_name not in self._ended], metric)
        series: dict[str, list[float]] = {}
        for trial in trials:
            name = trial.training_job_name
            series[name] = values = self._ended.get(name, fresh.get(name, []))
            if trial.status in TRIAL_TERMINAL and name not in self._ended:
                _remember(self._ended, name, values)
        return series

    def _read(self, jobs: list[str], metric: str) -> dict[str, list[float]]:
        points = self.metrics.series_of(
            TRAINING_NAMESPACE, metric, [{"TrainingJobName": job} for job in jobs], 0.0,
            self.clock() + 3600)
        return {job: [p.value for p in points[dimension_key({"TrainingJobName": job})]]
                for job in jobs}


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    if len(cache) > _CACHE_LIMIT:  # bounded: drop the oldest
        cache.pop(next(iter(cache)))


class MedianStopping:
    """AWS's early stopping (``Auto``): a running child whose best value so far is worse than
    the median of the ended children's running averages at the same step is stopped. With
    ``TrainingJobDefinitions`` each definition's trials are judged among themselves."""

    def __init__(self) -> None:
        self._curves: dict[str, list[float]] = {}  # ended children's running averages

    def prune(self, trials: Sequence[TuningTrial], plan: Plan,
              values: IntermediateValues) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for sub, group in _groups(plan, trials):
            verdicts += self._prune_group(group, sub, values)
        return verdicts

    def _prune_group(self, trials: Sequence[TuningTrial], plan: Plan,
                     values: IntermediateValues) -> list[Verdict]:
        candidates = [t for t in trials if prunable(t)]
        done = [t for t in trials if t.status in (TrialStatus.COMPLETED, TrialStatus.STOPPED)
                and t.objective_status == ObjectiveStatus.SUCCEEDED]
        if not candidates or len(done) < EARLY_STOPPING_MIN_TRIALS:
            return []
        series = values.of([*done, *candidates], plan.objective_metric)
        prior = [self._curve(t.training_job_name, series) for t in done]
        verdicts = []
        for trial in candidates:
            current = series[trial.training_job_name]
            if median_rule(current, prior, plan.objective_type, EARLY_STOPPING_MIN_TRIALS):
                log.info("tuning child %s stopped early at step %d", trial.training_job_name,
                         len(current))
                verdicts.append(Verdict(trial.number, stop=True))
        return verdicts

    def _curve(self, job: str, series: dict[str, list[float]]) -> list[float]:
        curve = self._curves.get(job)
        if curve is None:
            curve = running_averages(series[job])
            _remember(self._curves, job, curve)
        return curve


class Hyperband:
    """Asynchronous successive halving: each child runs with MaxResource as its budget; when
    its objective series reaches a rung of its bracket it goes on only while it is among the
    best 1/eta of the values recorded at that step (its bracket's, and at the first rung also
    those of the less aggressive brackets: ``walk_rungs``), else it is stopped. A trial
    stopped at rung k counts at the rungs up to k only. With no resource hyperparameter (a
    user's image) a child is also stopped once it reports MaxResource values."""

    def prune(self, trials: Sequence[TuningTrial], plan: Plan,
              values: IntermediateValues) -> list[Verdict]:
        candidates = [t for t in trials if prunable(t)]
        if not candidates:
            return []
        brackets = hyperband_brackets(plan.min_resource, plan.max_resource)
        series = values.of([t for t in trials if t.launched and t.bracket is not None],
                           plan.objective_metric)
        # Stops decided in this pass count for the trials judged after them.
        stopped_at = {t.number: t.stopped_at_rung for t in trials}
        verdicts = []
        for trial in candidates:
            name = trial.training_job_name
            current = series.get(name, [])
            bracket = trial.bracket or 0
            others = [t for t in trials if t.number != trial.number
                      and t.training_job_name in series]
            peers = [Peer(series[t.training_job_name], stopped_at[t.number]) for t in others
                     if (t.bracket or 0) == bracket]
            newcomers = [series[t.training_job_name] for t in others
                         if (t.bracket or 0) > bracket]
            rungs = brackets[bracket]
            passed, stop = walk_rungs(current, rungs, trial.rung, peers, plan.objective_type,
                                      newcomers)
            if stop:
                log.info("tuning child %s stopped by Hyperband at rung %d (step %d of %d)",
                         name, passed, rungs[passed], plan.max_resource)
                stopped_at[trial.number] = passed
                verdicts.append(Verdict(trial.number, stop=True, rung=passed,
                                        stopped_at_rung=passed))
            elif plan.resource_key is None and len(current) >= plan.max_resource:
                verdicts.append(Verdict(trial.number, stop=True, early_stopped=False,
                                        rung=passed))  # its budget is spent
            elif passed != trial.rung:
                verdicts.append(Verdict(trial.number, stop=False, rung=passed))
        return verdicts


def _groups(plan: Plan, trials: Sequence[TuningTrial]
            ) -> list[tuple[Plan, list[TuningTrial]]]:
    """The trials of each definition, with its plan (one group without definitions)."""
    if not plan.definitions:
        return [(plan, list(trials))]
    return [(sub, [t for t in trials if t.definition_name == sub.definition_name])
            for sub in plan.definitions]
