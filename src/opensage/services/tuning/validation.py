"""Everything AWS refuses in a CreateHyperParameterTuningJob request, refused before a row exists.

``check(ctx, params)`` answers a :class:`~opensage.services.tuning.plans.Plan` (what the
search needs) or raises one ``ValidationException`` that names the problem. Warm-start parents
are checked in ``warm_start``.
"""

from __future__ import annotations

import math
import zlib
from functools import partial
from typing import Any

from opensage.errors import ValidationException
from opensage.runner.toolkit.script import is_script_mode
from opensage.services.context import Context
from opensage.services.registry import algorithms as registered_algorithms
from opensage.services.training import definition
from opensage.services.tuning.completion import CompletionCriteria
from opensage.services.tuning.plans import Plan, child_request, with_resource
from opensage.services.tuning.strategies import (
    CATEGORICAL,
    CONTINUOUS,
    INTEGER,
    RESOURCE_KEYS,
    Range,
    grid_size,
    optuna_module,
    ranges_of,
)
from opensage.services.tuning.warm_start import check_warm_start

MAX_TRAINING_JOBS = 500  # per tuning job (AWS's default quota)
MAX_PARALLEL_TRAINING_JOBS = 100
STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
MAX_HYPERBAND_RESOURCE = 20_000  # AWS: "The maximum value is 20,000 epochs"
_KEYS = {INTEGER: "IntegerParameterRanges", CONTINUOUS: "ContinuousParameterRanges",
         CATEGORICAL: "CategoricalParameterRanges"}

MAX_DEFINITIONS = 10
DEFINITION_STRATEGIES = ("Bayesian", "Random")  # what opensage searches across definitions


def check(ctx: Context, params: dict[str, Any]) -> Plan:
    config = params["HyperParameterTuningJobConfig"]
    job: dict[str, Any] | None = params.get("TrainingJobDefinition")
    definitions: list[dict[str, Any]] | None = params.get("TrainingJobDefinitions")
    if (job is None) == (definitions is None):
        raise ValidationException("Exactly one of TrainingJobDefinition and "
                                  "TrainingJobDefinitions must be specified.")
    strategy = config.get("Strategy", "Bayesian")
    if strategy not in STRATEGIES:
        raise ValidationException(f"The {strategy} strategy is not supported by opensage yet; "
                                  f"supported: {', '.join(STRATEGIES)}.")
    if config.get("StrategyConfig") and strategy != "Hyperband":
        raise ValidationException("StrategyConfig applies to the Hyperband strategy only.")
    _check_completion_criteria(config)
    if definitions is not None:
        return _check_definitions(ctx, params, definitions, strategy)
    assert job is not None  # exactly one of the two, checked above

    objective = config.get("HyperParameterTuningJobObjective")
    if not objective:
        raise ValidationException("HyperParameterTuningJobConfig.HyperParameterTuningJobObjective"
                                  " must be specified.")
    algorithm = _algorithm(ctx, job)
    _check_objective(algorithm, job, objective)

    ranges = _check_ranges(algorithm, config.get("ParameterRanges") or {},
                           job.get("StaticHyperParameters") or {})
    _check_strategy_ranges(strategy, ranges)
    max_jobs, max_parallel = _check_limits(strategy, config["ResourceLimits"], ranges)
    hyperband: dict[str, Any] = {}
    if strategy == "Hyperband":
        hyperband = _check_hyperband(algorithm, config, job, ranges)
    metrics = _probe(with_resource(params, hyperband.get("resource_key"),
                                   hyperband.get("max_resource", 0)),
                     ctx, ranges, objective["MetricName"])
    parents = check_warm_start(ctx, params, ranges) if params.get("WarmStartConfig") else []
    return Plan(strategy, tuple(ranges), objective["Type"], objective["MetricName"], max_jobs,
                max_parallel, _seed(params), tuple(metrics), tuple(parents),
                definition_name=job.get("DefinitionName"), **hyperband)


def _seed(params: dict[str, Any]) -> int:
    seed = params["HyperParameterTuningJobConfig"].get("RandomSeed")
    if seed is None:
        seed = zlib.crc32(params["HyperParameterTuningJobName"].lower().encode())
    return int(seed)


def _check_strategy_ranges(strategy: str, ranges: list[Range]) -> None:
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


def _check_completion_criteria(config: dict[str, Any]) -> None:
    criteria: CompletionCriteria | None = config.get("TuningJobCompletionCriteria")
    if criteria is None:
        return
    target = criteria.get("TargetObjectiveMetricValue")
    if target is not None and not math.isfinite(float(target)):
        raise ValidationException(
            "TuningJobCompletionCriteria.TargetObjectiveMetricValue must be a finite number.")
    limit = (criteria.get("BestObjectiveNotImproving") or {}).get(
        "MaxNumberOfTrainingJobsNotImproving")
    if limit is not None and limit < 3:
        raise ValidationException(
            "TuningJobCompletionCriteria.BestObjectiveNotImproving."
            f"MaxNumberOfTrainingJobsNotImproving must be at least 3; got {limit}.")


def _check_definitions(ctx: Context, params: dict[str, Any],
                       definitions: list[dict[str, Any]], strategy: str) -> Plan:
    """``TrainingJobDefinitions``: 1 to 10 definitions with unique ``DefinitionName``s, each
    with its own ``HyperParameterRanges`` and objective (its ``TuningObjective``, else the
    tuning job's), all of the same objective type so that their children compare."""
    config = params["HyperParameterTuningJobConfig"]
    if not 1 <= len(definitions) <= MAX_DEFINITIONS:
        raise ValidationException(
            f"TrainingJobDefinitions must list 1 to {MAX_DEFINITIONS} training job "
            f"definitions; got {len(definitions)}.")
    names: list[str] = [d.get("DefinitionName") or "" for d in definitions]
    if not all(names):
        raise ValidationException(
            "Every training job definition in TrainingJobDefinitions needs a DefinitionName.")
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise ValidationException(
            "The DefinitionName of each training job definition must be unique; repeated: "
            f"{', '.join(duplicated)}.")
    if strategy not in DEFINITION_STRATEGIES:
        raise ValidationException(
            f"opensage supports TrainingJobDefinitions with the "
            f"{' and '.join(DEFINITION_STRATEGIES)} strategies only; got {strategy}.")
    if params.get("WarmStartConfig"):
        raise ValidationException(
            "opensage does not support WarmStartConfig with TrainingJobDefinitions.")
    if config.get("ParameterRanges"):
        raise ValidationException(
            "With TrainingJobDefinitions, give each definition its HyperParameterRanges; "
            "HyperParameterTuningJobConfig.ParameterRanges must not be specified.")
    default = config.get("HyperParameterTuningJobObjective")
    subs: list[Plan] = []
    for index, job in enumerate(definitions):
        objective = job.get("TuningObjective") or default
        if not objective:
            raise ValidationException(
                f"The training job definition {job['DefinitionName']} needs a TuningObjective "
                "(or HyperParameterTuningJobConfig.HyperParameterTuningJobObjective).")
        if subs and objective["Type"] != subs[0].objective_type:
            raise ValidationException(
                "Every training job definition's objective must have the same Type; "
                f"{subs[0].definition_name} has {subs[0].objective_type}, "
                f"{job['DefinitionName']} has {objective['Type']}.")
        algorithm = _algorithm(ctx, job)
        _check_objective(algorithm, job, objective)
        ranges = _check_ranges(algorithm, job.get("HyperParameterRanges") or {},
                               job.get("StaticHyperParameters") or {})
        _check_strategy_ranges(strategy, ranges)
        metrics = _probe({**params, "TrainingJobDefinition": job}, ctx, ranges,
                         objective["MetricName"])
        subs.append(Plan(strategy, tuple(ranges), objective["Type"], objective["MetricName"],
                         0, 0, _seed(params) + 7919 * index, tuple(metrics),
                         definition_name=job["DefinitionName"]))
    max_jobs, max_parallel = _check_limits(strategy, config["ResourceLimits"], [])
    first = subs[0]
    return Plan(strategy, (), first.objective_type, first.objective_metric, max_jobs,
                max_parallel, _seed(params), definitions=tuple(subs))


# -- pieces ------------------------------------------------------------------------------------
def _algorithm(ctx: Context, job: dict[str, Any]) -> Any:
    """The built-in algorithm's spec, or None for a user's own image or script (a framework
    estimator's ``sagemaker_program``: with it even sagemaker-xgboost runs the user's code,
    whose metrics are its MetricDefinitions)."""
    spec = job["AlgorithmSpecification"]
    image = spec.get("TrainingImage") or spec.get("AlgorithmName")
    if not image:
        raise ValidationException("AlgorithmSpecification.TrainingImage or AlgorithmName must be "
                                  "specified.")
    if spec.get("AlgorithmName") and not spec.get("TrainingImage"):
        # An algorithm resource: its declaration is the spec (IsTunable, ranges, objective
        # metrics), and it must declare objective metrics to be tuned at all.
        declared = registered_algorithms.find(ctx, spec["AlgorithmName"])
        if not declared.supports_tuning:
            raise ValidationException(
                f"Algorithm {declared.name} does not support hyperparameter tuning: it "
                "declares no SupportedTuningJobObjectiveMetrics.")
        return declared.spec
    if is_script_mode(job.get("StaticHyperParameters") or {}):
        return None
    found = ctx.algorithms.lookup(image)
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


def _probe(params: dict[str, Any], ctx: Context, ranges: list[Range],
           metric: str) -> list[dict[str, str]]:
    """Check the training job definition as CreateTrainingJob would, with each range at its
    first value: bad channels, images, static hyperparameters are refused now, not per child."""
    tuned = {r.name: (r.values[0] if r.kind == CATEGORICAL else r.to_api(
        r.to_internal(repr(r.low)))) for r in ranges}
    probe = child_request(params, "probe", tuned, metric, tuning_arn="")
    return definition.prepare(ctx.algorithms, probe,
                              find_algorithm=partial(registered_algorithms.find, ctx),
                              containers=ctx.containers).metric_definitions


def _check_hyperband(algorithm: Any, config: dict[str, Any], job: dict[str, Any],
                     ranges: list[Range]) -> dict[str, Any]:
    """AWS's Hyperband rules; answers the Plan's Hyperband fields.

    ``StrategyConfig.HyperbandStrategyConfig``: ``MinResource`` (default 1) and
    ``MaxResource`` integers in ``[1, 20000]`` with ``MinResource < MaxResource``;
    ``MaxResource`` may be left out when the static hyperparameters carry it (``epochs`` and
    the other RESOURCE_KEYS). Hyperband stops trials itself, so
    ``TrainingJobEarlyStoppingType`` must be ``Off``, and the resource hyperparameter (for
    XGBoost ``num_round``) is the tuner's: it cannot be tuned."""
    if config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        raise ValidationException(
            "TrainingJobEarlyStoppingType must be Off with the Hyperband strategy: Hyperband "
            "stops under-performing training jobs itself.")
    strategy_config = config.get("StrategyConfig") or {}
    unknown = sorted(set(strategy_config) - {"HyperbandStrategyConfig"})
    if unknown:
        raise ValidationException(f"StrategyConfig has unknown fields: {', '.join(unknown)}.")
    given = strategy_config.get("HyperbandStrategyConfig") or {}
    static = job.get("StaticHyperParameters") or {}
    declared = algorithm.hyperparameters if algorithm is not None else {}
    key = next((k for k in RESOURCE_KEYS if k in declared), None) or next(
        (k for k in RESOURCE_KEYS if k in static), None)
    tuned = {r.name for r in ranges}
    if key is not None and key in tuned:
        raise ValidationException(
            f"The hyperparameter {key!r} is the Hyperband strategy's resource (set to each "
            "training job's budget, up to MaxResource): it cannot be tuned.")
    max_resource = given.get("MaxResource")
    if max_resource is None:
        inferred = [k for k in RESOURCE_KEYS if k in static]
        if not inferred:
            raise ValidationException(
                "HyperbandStrategyConfig.MaxResource must be specified: it cannot be inferred "
                f"from the StaticHyperParameters (none of {', '.join(RESOURCE_KEYS)}).")
        try:
            max_resource = int(static[inferred[0]])
        except ValueError:
            raise ValidationException(
                f"HyperbandStrategyConfig.MaxResource cannot be inferred from the static "
                f"hyperparameter {inferred[0]}={static[inferred[0]]!r}: not an integer.") from None
    min_resource = given.get("MinResource", 1)
    for field, value in (("MinResource", min_resource), ("MaxResource", max_resource)):
        if (isinstance(value, bool) or not isinstance(value, int)
                or not 1 <= value <= MAX_HYPERBAND_RESOURCE):
            raise ValidationException(
                f"HyperbandStrategyConfig.{field} must be an integer from 1 to "
                f"{MAX_HYPERBAND_RESOURCE}; got {value!r}.")
    if min_resource >= max_resource:
        raise ValidationException(
            f"HyperbandStrategyConfig.MinResource ({min_resource}) must be less than "
            f"MaxResource ({max_resource}).")
    return {"min_resource": min_resource, "max_resource": max_resource, "resource_key": key}
