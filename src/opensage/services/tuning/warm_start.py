"""Warm start: AWS's rules for a tuning job's parents, and the parents' trials it starts
from."""

from __future__ import annotations

from typing import Any

from opensage.errors import ValidationException
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.tuning.states import ObjectiveStatus, TuningStatus
from opensage.services.tuning.strategies import Range, ranges_of
from opensage.services.tuning.summaries import trial_document
from opensage.store.trials import TrialStore

__all__ = ["MAX_PARENTS", "MAX_WARM_START_CHANGES", "check_warm_start"]

MAX_PARENTS = 5
MAX_WARM_START_CHANGES = 10
_PARENT_TERMINAL = (TuningStatus.COMPLETED, TuningStatus.STOPPED, TuningStatus.FAILED)
_TRIAL_KEYS = ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingStartTime",
               "TrainingEndTime", "TrainingJobStatus", "TunedHyperParameters", "ObjectiveStatus",
               "Objective")


def check_warm_start(ctx: Context, params: dict[str, Any],
                     ranges: list[Range]) -> list[dict[str, Any]]:
    """AWS's warm-start rules; answers the parents' trials that produced an objective, each
    with ``Point``: its value of every range of this job (from the parent's tuned or static
    hyperparameters), or None where the point is outside this job's ranges.

    Every type: at most 5 distinct parents, each existing and ended, with the same objective
    metric and type; the same hyperparameter names (static plus tuned) as each parent; a
    hyperparameter tuned in both keeps its range type; at most 10 changes (tuned in the parent
    but static here, or a static value changed). ``IdenticalDataAndAlgorithm`` also needs the
    same algorithm (image) and the same input data. Parents' own parents are not used (warm
    start is not recursive)."""
    warm = params["WarmStartConfig"]
    kind = warm["WarmStartType"]
    names = [p["HyperParameterTuningJobName"] for p in warm["ParentHyperParameterTuningJobs"]]
    if not 1 <= len(names) <= MAX_PARENTS:
        raise ValidationException(
            f"WarmStartConfig.ParentHyperParameterTuningJobs must list 1 to {MAX_PARENTS} "
            f"tuning jobs; got {len(names)}.")
    if len({n.lower() for n in names}) != len(names):
        raise ValidationException("WarmStartConfig.ParentHyperParameterTuningJobs lists a "
                                  "tuning job more than once.")
    if params["HyperParameterTuningJobName"].lower() in {n.lower() for n in names}:
        raise ValidationException("A tuning job cannot be its own warm-start parent.")
    config = params["HyperParameterTuningJobConfig"]
    objective = config["HyperParameterTuningJobObjective"]
    job = params["TrainingJobDefinition"]
    static = {k: str(v) for k, v in (job.get("StaticHyperParameters") or {}).items()
              if k != "_tuning_objective_metric"}
    kinds_here = {r.name: r.kind for r in ranges}
    found: list[dict[str, Any]] = []
    for name in names:
        row = ctx.resources.get(kinds.TUNING_JOB.name, name)
        if row is None:
            raise ValidationException(
                f"The warm-start parent hyperparameter tuning job {name} does not exist.")
        parent = row.body
        status = parent["HyperParameterTuningJobStatus"]
        if status not in _PARENT_TERMINAL:
            raise ValidationException(
                f"The warm-start parent hyperparameter tuning job {name} is {status}: a parent "
                f"must have ended ({', '.join(_PARENT_TERMINAL)}).")
        parent_job = parent.get("TrainingJobDefinition") or {}
        theirs = parent["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        if (theirs["MetricName"], theirs["Type"]) != (objective["MetricName"], objective["Type"]):
            raise ValidationException(
                f"The objective ({objective['Type']} {objective['MetricName']}) must be the "
                f"warm-start parent {name}'s ({theirs['Type']} {theirs['MetricName']}).")
        parent_static = {k: str(v) for k, v in
                         (parent_job.get("StaticHyperParameters") or {}).items()
                         if k != "_tuning_objective_metric"}
        parent_ranges = {r.name: r.kind for r in ranges_of(
            parent["HyperParameterTuningJobConfig"].get("ParameterRanges"))}
        mine, theirs_names = set(static) | set(kinds_here), set(parent_static) | set(parent_ranges)
        if mine != theirs_names:
            diff = sorted(mine ^ theirs_names)
            raise ValidationException(
                f"A warm-start tuning job must have the same hyperparameters (static plus "
                f"tuned) as its parent {name}; these differ: {', '.join(diff)}.")
        for hp, hp_kind in kinds_here.items():
            if parent_ranges.get(hp, hp_kind) != hp_kind:
                raise ValidationException(
                    f"The hyperparameter {hp!r} is a {parent_ranges[hp].lower()} range in the "
                    f"warm-start parent {name}; it cannot become a {hp_kind.lower()} range.")
        changes = sum(hp in parent_ranges for hp in static) + sum(
            hp in parent_static and parent_static[hp] != value for hp, value in static.items())
        if changes > MAX_WARM_START_CHANGES:
            raise ValidationException(
                f"A warm-start tuning job may make at most {MAX_WARM_START_CHANGES} changes to "
                f"its parent {name}'s static hyperparameters; it makes {changes}.")
        if kind == "IdenticalDataAndAlgorithm":
            _check_identical(name, job, parent_job)
        by_name = {r.name: r for r in ranges}
        for trial in map(trial_document, TrialStore(ctx.db).of(row.name)):
            if trial.get("ObjectiveStatus") != ObjectiveStatus.SUCCEEDED:
                continue
            values = {**parent_static, **trial["TunedHyperParameters"]}
            point = {hp: values[hp] for hp in by_name if hp in values}
            fits = len(point) == len(by_name) and all(
                by_name[hp].contains(v) for hp, v in point.items())
            found.append({**{k: trial.get(k) for k in _TRIAL_KEYS},
                          "TuningJobName": parent["HyperParameterTuningJobName"],
                          "Point": point if fits else None})
    return found


def _check_identical(name: str, job: dict[str, Any], parent_job: dict[str, Any]) -> None:
    def image(d: dict[str, Any]) -> Any:
        spec = d.get("AlgorithmSpecification") or {}
        return spec.get("TrainingImage") or spec.get("AlgorithmName")

    def data(d: dict[str, Any]) -> Any:
        return sorted((c["ChannelName"], repr(c.get("DataSource"))) for c in
                      d.get("InputDataConfig") or [])

    if image(job) != image(parent_job):
        raise ValidationException(
            f"IdenticalDataAndAlgorithm warm start needs the parent {name}'s training image "
            f"({image(parent_job)}); got {image(job)}.")
    if data(job) != data(parent_job):
        raise ValidationException(
            f"IdenticalDataAndAlgorithm warm start needs the parent {name}'s input data "
            "(InputDataConfig channels and data sources); use TransferLearning to change it.")
