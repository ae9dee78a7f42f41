"""Everything AWS refuses in a CreateHyperParameterTuningJob request, refused before a row exists.

``check(backend, params)`` answers a :class:`Plan` (what the search needs) or raises one
``ValidationException`` that names the problem.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

from opensage.errors import ValidationException
from opensage.services.backend import Backend
from opensage.services.training import definition
from opensage.services.tuning.strategies import (
    CATEGORICAL,
    CONTINUOUS,
    INTEGER,
    Range,
    grid_size,
    optuna_module,
    ranges_of,
)

MAX_TRAINING_JOBS = 500  # per tuning job (AWS's default quota)
MAX_PARALLEL_TRAINING_JOBS = 100
STRATEGIES = ("Bayesian", "Random", "Grid")
_KEYS = {INTEGER: "IntegerParameterRanges", CONTINUOUS: "ContinuousParameterRanges",
         CATEGORICAL: "CategoricalParameterRanges"}


@dataclass(frozen=True)
class Plan:
    strategy: str
    ranges: tuple[Range, ...]
    objective_type: str  # Maximize | Minimize
    objective_metric: str
    max_jobs: int
    max_parallel: int
    seed: int
    metric_definitions: tuple[dict[str, str], ...] = ()  # the children's (built-in + user's)


def check(backend: Backend, params: dict[str, Any]) -> Plan:
    config = params["HyperParameterTuningJobConfig"]
    job = params.get("TrainingJobDefinition")
    if params.get("TrainingJobDefinitions"):
        raise ValidationException("opensage supports one TrainingJobDefinition per tuning job; "
                                  "TrainingJobDefinitions is not supported yet.")
    if job is None:
        raise ValidationException("TrainingJobDefinition must be specified.")
    if params.get("WarmStartConfig"):
        raise ValidationException("WarmStartConfig is not supported by opensage yet.")
    strategy = config.get("Strategy", "Bayesian")
    if strategy not in STRATEGIES:
        raise ValidationException(f"The {strategy} strategy is not supported by opensage yet; "
                                  f"supported: {', '.join(STRATEGIES)}.")
    if config.get("StrategyConfig"):
        raise ValidationException("StrategyConfig applies to the Hyperband strategy only.")

    objective = config.get("HyperParameterTuningJobObjective")
    if not objective:
        raise ValidationException("HyperParameterTuningJobConfig.HyperParameterTuningJobObjective"
                                  " must be specified.")
    algorithm = _algorithm(backend, job)
    _check_objective(algorithm, job, objective)

    ranges = _check_ranges(algorithm, config.get("ParameterRanges") or {},
                           job.get("StaticHyperParameters") or {})
    if strategy == "Grid":
        continuous = [r.name for r in ranges if r.kind == CONTINUOUS]
        if continuous:
            raise ValidationException(
                "The Grid strategy supports only categorical and integer parameter ranges; "
                f"continuous: {', '.join(continuous)}.")
        if not ranges:
            raise ValidationException("The Grid strategy needs at least one parameter range.")
    else:
        optuna_module()
    max_jobs, max_parallel = _check_limits(strategy, config["ResourceLimits"], ranges)
    metrics = _probe(backend, params, ranges, objective["MetricName"])
    seed = config.get("RandomSeed")
    if seed is None:
        seed = zlib.crc32(params["HyperParameterTuningJobName"].lower().encode())
    return Plan(strategy, tuple(ranges), objective["Type"], objective["MetricName"], max_jobs,
                max_parallel, int(seed), tuple(metrics))


def plan_of(body: dict[str, Any]) -> Plan:
    """The plan of a stored (already checked) tuning job."""
    config = body["HyperParameterTuningJobConfig"]
    objective = config["HyperParameterTuningJobObjective"]
    stored = body["OpensageTuning"]
    return Plan(config.get("Strategy", "Bayesian"), tuple(ranges_of(config.get("ParameterRanges"))),
                objective["Type"], objective["MetricName"], stored["MaxJobs"],
                config["ResourceLimits"]["MaxParallelTrainingJobs"], stored["Seed"])


# -- pieces ------------------------------------------------------------------------------------
def _algorithm(backend: Backend, job: dict[str, Any]) -> Any:
    """The built-in algorithm's spec, or None for a user's own image."""
    spec = job["AlgorithmSpecification"]
    image = spec.get("TrainingImage") or spec.get("AlgorithmName")
    if not image:
        raise ValidationException("AlgorithmSpecification.TrainingImage or AlgorithmName must be "
                                  "specified.")
    found = backend.algorithms.lookup(image)
    return found.entry.spec if found is not None else None


def _check_objective(algorithm: Any, job: dict[str, Any], objective: dict[str, Any]) -> None:
    metric = objective["MetricName"]
    user = [m["Name"] for m in job["AlgorithmSpecification"].get("MetricDefinitions") or []]
    builtin = [m["MetricName"] for m in algorithm.objective_metrics()] if algorithm else []
    if metric in builtin or metric in user:
        return
    if algorithm is not None:
        raise ValidationException(
            f"The objective metric {metric!r} is not emitted by the {algorithm.name} algorithm: "
            f"choose one of {', '.join(builtin + user)}.")
    raise ValidationException(
        f"The objective metric {metric!r} must be one of the AlgorithmSpecification's "
        f"MetricDefinitions ({', '.join(user) or 'none given'}).")


def _check_ranges(algorithm: Any, parameter_ranges: dict[str, Any],
                  static: dict[str, str]) -> list[Range]:
    seen: set[str] = set()
    for kind, key in _KEYS.items():
        for entry in parameter_ranges.get(key) or []:
            name = entry["Name"]
            if name in seen:
                raise ValidationException(f"The hyperparameter {name!r} has more than one range.")
            seen.add(name)
            if name in static:
                raise ValidationException(
                    f"The hyperparameter {name!r} is given both a range and a static value in "
                    "StaticHyperParameters; give it only one.")
            param = _param(algorithm, name)
            if kind == CATEGORICAL:
                _check_categorical(name, entry["Values"], param)
            else:
                _check_numeric(kind, entry, param)
    return ranges_of(parameter_ranges)


def _param(algorithm: Any, name: str) -> Any:
    if algorithm is None:
        return None  # a user's container: any name
    canonical = algorithm.aliases.get(name, name)
    param = algorithm.hyperparameters.get(canonical)
    if param is None or name.startswith("_"):
        raise ValidationException(
            f"The hyperparameter {name!r} in ParameterRanges is not a hyperparameter of the "
            f"{algorithm.name} algorithm.")
    if not param.tunable:
        raise ValidationException(
            f"The hyperparameter {name!r} of the {algorithm.name} algorithm is not tunable; "
            f"tunable: {', '.join(n for n, p in algorithm.hyperparameters.items() if p.tunable)}.")
    return param


def _check_categorical(name: str, values: list[str], param: Any) -> None:
    if len(set(values)) != len(values):
        raise ValidationException(f"The categorical range {name!r} repeats a value.")
    if param is None:
        return
    for value in values:
        try:
            param.parse(name, value)
        except ValueError as err:
            raise ValidationException(
                f"The categorical range {name!r} has a value outside the algorithm's allowed "
                f"values: {err}") from None


def _check_numeric(kind: str, entry: dict[str, Any], param: Any) -> None:
    name = entry["Name"]
    scaling = entry.get("ScalingType", "Auto")
    try:
        low, high = float(entry["MinValue"]), float(entry["MaxValue"])
    except ValueError:
        raise ValidationException(
            f"The {kind.lower()} range {name!r} needs numeric MinValue and MaxValue; got "
            f"{entry['MinValue']!r} and {entry['MaxValue']!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValidationException(f"The range {name!r} must have finite bounds.")
    if kind == INTEGER and not (low.is_integer() and high.is_integer()):
        raise ValidationException(
            f"The integer range {name!r} needs integer MinValue and MaxValue; got "
            f"{entry['MinValue']!r} and {entry['MaxValue']!r}.")
    if low > high:
        raise ValidationException(
            f"The range {name!r} has MinValue {entry['MinValue']} greater than MaxValue "
            f"{entry['MaxValue']}.")
    if scaling == "Logarithmic" and low <= 0:
        raise ValidationException(
            f"The range {name!r} uses Logarithmic scaling, which needs MinValue greater than "
            f"0; got [{entry['MinValue']}, {entry['MaxValue']}].")
    if scaling == "ReverseLogarithmic":
        if kind == INTEGER:
            raise ValidationException(
                f"The integer range {name!r} cannot use ReverseLogarithmic scaling: it is for "
                "continuous ranges only.")
        if low < 0 or high >= 1:
            raise ValidationException(
                f"The range {name!r} uses ReverseLogarithmic scaling, which needs "
                f"0 <= MinValue and MaxValue < 1; got [{entry['MinValue']}, "
                f"{entry['MaxValue']}].")
    if param is None:
        return
    if kind == CONTINUOUS and param.type_name == "Integer":
        raise ValidationException(
            f"The hyperparameter {name!r} is an integer: give it an IntegerParameterRange, not a "
            "continuous one.")
    if param.type_name not in ("Integer", "Continuous"):
        raise ValidationException(
            f"The hyperparameter {name!r} is not numeric: give it a CategoricalParameterRange.")
    for bound in (low, high):
        if not param.contains(bound):
            raise ValidationException(
                f"The range {name!r} [{entry['MinValue']}, {entry['MaxValue']}] is outside the "
                f"algorithm's allowed values: {param.accepted()}.")


def _check_limits(strategy: str, limits: dict[str, Any], ranges: list[Range]) -> tuple[int, int]:
    parallel = limits["MaxParallelTrainingJobs"]
    given = limits.get("MaxNumberOfTrainingJobs")
    if strategy == "Grid":
        size = grid_size(ranges)
        if size > MAX_TRAINING_JOBS:
            raise ValidationException(
                f"The grid has {size} combinations, more than the {MAX_TRAINING_JOBS} training "
                "jobs a tuning job may run.")
        max_jobs = min(size, given) if given else size
    elif given is None:
        raise ValidationException(
            f"ResourceLimits.MaxNumberOfTrainingJobs must be specified for the {strategy} "
            "strategy.")
    else:
        max_jobs = given
    if max_jobs > MAX_TRAINING_JOBS:
        raise ValidationException(
            f"ResourceLimits.MaxNumberOfTrainingJobs {max_jobs} is more than the "
            f"{MAX_TRAINING_JOBS} allowed.")
    if parallel > MAX_PARALLEL_TRAINING_JOBS:
        raise ValidationException(
            f"ResourceLimits.MaxParallelTrainingJobs {parallel} is more than the "
            f"{MAX_PARALLEL_TRAINING_JOBS} allowed.")
    if given is not None and parallel > given:
        raise ValidationException(
            f"ResourceLimits.MaxParallelTrainingJobs ({parallel}) cannot be greater than "
            f"MaxNumberOfTrainingJobs ({given}).")
    return max_jobs, parallel


def _probe(backend: Backend, params: dict[str, Any], ranges: list[Range],
           metric: str) -> list[dict[str, str]]:
    """Check the training job definition as CreateTrainingJob would, with each range at its
    first value: bad channels, images, static hyperparameters are refused now, not per child."""
    tuned = {r.name: (r.values[0] if r.kind == CATEGORICAL else r.to_api(
        r.to_internal(repr(r.low)))) for r in ranges}
    probe = child_request(params, "probe", tuned, metric, tuning_arn="")
    return definition.prepare(backend, probe).metric_definitions


def child_request(params: dict[str, Any], name: str, tuned: dict[str, str], metric: str, *,
                  tuning_arn: str) -> dict[str, Any]:
    """The CreateTrainingJob request of one child job of a tuning job."""
    job = dict(params["TrainingJobDefinition"])
    static = job.pop("StaticHyperParameters", None) or {}
    resources = job.pop("HyperParameterTuningResourceConfig", None)
    for key in ("DefinitionName", "TuningObjective", "HyperParameterRanges"):
        job.pop(key, None)
    if "ResourceConfig" not in job:
        resources = dict(resources or {})
        resources.pop("AllocationStrategy", None)
        resources.pop("InstanceConfigs", None)
        resources.setdefault("InstanceType", "ml.m5.large")
        resources.setdefault("InstanceCount", 1)
        resources.setdefault("VolumeSizeInGB", 30)
        job["ResourceConfig"] = resources
    request = {**job, "TrainingJobName": name,
               "HyperParameters": {**static, **tuned, "_tuning_objective_metric": metric},
               "Tags": params.get("Tags") or []}
    if tuning_arn:
        request["TuningJobArn"] = tuning_arn
    return request
