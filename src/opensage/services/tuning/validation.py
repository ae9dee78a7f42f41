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
from opensage.services import kinds
from opensage.services.backend import Backend
from opensage.services.training import definition
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

MAX_TRAINING_JOBS = 500  # per tuning job (AWS's default quota)
MAX_PARALLEL_TRAINING_JOBS = 100
STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
MAX_HYPERBAND_RESOURCE = 20_000  # AWS: "The maximum value is 20,000 epochs"
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
    # A warm start's parent trials that produced an objective (see ``_check_warm_start``).
    parent_trials: tuple[dict[str, Any], ...] = ()
    # Hyperband: every child runs with ``max_resource`` as its ``resource_key`` (None for a
    # user's image that declares none of RESOURCE_KEYS: the tuner counts its metric points).
    min_resource: int = 0
    max_resource: int = 0
    resource_key: str | None = None
    # TrainingJobDefinitions: one plan per definition (its ranges, objective metric, metric
    # definitions, seed); empty for a single TrainingJobDefinition.
    definitions: tuple[Plan, ...] = ()
    definition_name: str | None = None

    def for_definition(self, name: str | None) -> Plan:
        """The plan of the definition ``name`` (this plan with a single definition)."""
        for sub in self.definitions:
            if sub.definition_name == name:
                return sub
        return self

    def hyperband(self) -> dict[str, Any] | None:
        """What the stored job keeps of the Hyperband settings (None for other strategies)."""
        if self.strategy != "Hyperband":
            return None
        return {"MinResource": self.min_resource, "MaxResource": self.max_resource,
                "ResourceHyperParameter": self.resource_key}


MAX_DEFINITIONS = 10
DEFINITION_STRATEGIES = ("Bayesian", "Random")  # what opensage searches across definitions


def check(backend: Backend, params: dict[str, Any]) -> Plan:
    config = params["HyperParameterTuningJobConfig"]
    job = params.get("TrainingJobDefinition")
    definitions = params.get("TrainingJobDefinitions")
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
        return _check_definitions(backend, params, definitions, strategy)

    objective = config.get("HyperParameterTuningJobObjective")
    if not objective:
        raise ValidationException("HyperParameterTuningJobConfig.HyperParameterTuningJobObjective"
                                  " must be specified.")
    algorithm = _algorithm(backend, job)
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
                     backend, ranges, objective["MetricName"])
    parents = _check_warm_start(backend, params, ranges) if params.get("WarmStartConfig") else []
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
    criteria = config.get("TuningJobCompletionCriteria")
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


def _check_definitions(backend: Backend, params: dict[str, Any],
                       definitions: list[dict[str, Any]], strategy: str) -> Plan:
    """``TrainingJobDefinitions``: 1 to 10 definitions with unique ``DefinitionName``s, each
    with its own ``HyperParameterRanges`` and objective (its ``TuningObjective``, else the
    tuning job's), all of the same objective type so that their children compare."""
    config = params["HyperParameterTuningJobConfig"]
    if not 1 <= len(definitions) <= MAX_DEFINITIONS:
        raise ValidationException(
            f"TrainingJobDefinitions must list 1 to {MAX_DEFINITIONS} training job "
            f"definitions; got {len(definitions)}.")
    names = [d.get("DefinitionName") for d in definitions]
    if any(not n for n in names):
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
        algorithm = _algorithm(backend, job)
        _check_objective(algorithm, job, objective)
        ranges = _check_ranges(algorithm, job.get("HyperParameterRanges") or {},
                               job.get("StaticHyperParameters") or {})
        _check_strategy_ranges(strategy, ranges)
        metrics = _probe({**params, "TrainingJobDefinition": job}, backend, ranges,
                         objective["MetricName"])
        subs.append(Plan(strategy, tuple(ranges), objective["Type"], objective["MetricName"],
                         0, 0, _seed(params) + 7919 * index, tuple(metrics),
                         definition_name=job["DefinitionName"]))
    max_jobs, max_parallel = _check_limits(strategy, config["ResourceLimits"], [])
    first = subs[0]
    return Plan(strategy, (), first.objective_type, first.objective_metric, max_jobs,
                max_parallel, _seed(params), definitions=tuple(subs))


def plan_of(body: dict[str, Any]) -> Plan:
    """The plan of a stored (already checked) tuning job."""
    config = body["HyperParameterTuningJobConfig"]
    stored = body["OpensageTuning"]
    limits = config["ResourceLimits"]
    strategy = config.get("Strategy", "Bayesian")
    definitions = body.get("TrainingJobDefinitions")
    if definitions:
        default = config.get("HyperParameterTuningJobObjective") or {}
        subs = tuple(Plan(strategy, tuple(ranges_of(job.get("HyperParameterRanges"))),
                          (job.get("TuningObjective") or default)["Type"],
                          (job.get("TuningObjective") or default)["MetricName"],
                          stored["MaxJobs"], limits["MaxParallelTrainingJobs"],
                          stored["Seed"] + 7919 * index, definition_name=job["DefinitionName"])
                     for index, job in enumerate(definitions))
        return Plan(strategy, (), subs[0].objective_type, subs[0].objective_metric,
                    stored["MaxJobs"], limits["MaxParallelTrainingJobs"], stored["Seed"],
                    definitions=subs)
    objective = config["HyperParameterTuningJobObjective"]
    hyperband = stored.get("Hyperband") or {}
    return Plan(strategy, tuple(ranges_of(config.get("ParameterRanges"))),
                objective["Type"], objective["MetricName"], stored["MaxJobs"],
                limits["MaxParallelTrainingJobs"], stored["Seed"],
                min_resource=hyperband.get("MinResource", 0),
                max_resource=hyperband.get("MaxResource", 0),
                resource_key=hyperband.get("ResourceHyperParameter"),
                definition_name=(body.get("TrainingJobDefinition") or {}).get("DefinitionName"))


def with_resource(params: dict[str, Any], key: str | None, value: int) -> dict[str, Any]:
    """The request with a Hyperband child's budget in its static hyperparameters (unchanged
    for other strategies, or when there is no resource hyperparameter)."""
    if not key:
        return params
    job = dict(params["TrainingJobDefinition"])
    job["StaticHyperParameters"] = {**(job.get("StaticHyperParameters") or {}), key: str(value)}
    return {**params, "TrainingJobDefinition": job}


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


def _probe(params: dict[str, Any], backend: Backend, ranges: list[Range],
           metric: str) -> list[dict[str, str]]:
    """Check the training job definition as CreateTrainingJob would, with each range at its
    first value: bad channels, images, static hyperparameters are refused now, not per child."""
    tuned = {r.name: (r.values[0] if r.kind == CATEGORICAL else r.to_api(
        r.to_internal(repr(r.low)))) for r in ranges}
    probe = child_request(params, "probe", tuned, metric, tuning_arn="")
    return definition.prepare(backend, probe).metric_definitions


def child_request(params: dict[str, Any], name: str, tuned: dict[str, str], metric: str, *,
                  tuning_arn: str, watched: bool = False) -> dict[str, Any]:
    """The CreateTrainingJob request of one child job of a tuning job (``watched``: the tuner
    stops children on their intermediate metrics, so the runner reports them promptly)."""
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
    if watched:
        request["OpensageRunner"] = {"prompt_metrics": True}
    return request


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


# -- warm start --------------------------------------------------------------------------------
MAX_PARENTS = 5
MAX_WARM_START_CHANGES = 10
_PARENT_TERMINAL = ("Completed", "Stopped", "Failed")
_TRIAL_KEYS = ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingStartTime",
               "TrainingEndTime", "TrainingJobStatus", "TunedHyperParameters", "ObjectiveStatus",
               "Objective")


def _check_warm_start(backend: Backend, params: dict[str, Any],
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
        row = backend.resources.get(kinds.TUNING_JOB.name, name)
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
        for trial in parent["OpensageTuning"]["Trials"]:
            if trial.get("ObjectiveStatus") != "Succeeded":
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
