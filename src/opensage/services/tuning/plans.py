"""The plan of a tuning job (what the search needs: strategy, ranges, objective, limits,
seed, Hyperband budget, per-definition plans) and the requests it makes of training.

:func:`validation.check` answers a :class:`Plan` for a new request; :func:`plan_of` rebuilds it
from a stored (already checked) job; :func:`child_request` is one child's CreateTrainingJob
request and :func:`with_resource` puts a Hyperband child's budget into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensage.services.tuning.strategies import Range, ranges_of
from opensage.store.resources import Resource

__all__ = ["STATE", "Plan", "child_request", "plan_of", "state_of", "with_resource"]

# The key of the tuning service's own state of a tuning job in ``Resource.internal``: MaxJobs,
# Seed, ParentTrials, Hyperband, and Ending / ConvergenceDetectedTime once the search ends.
STATE = "OpensageTuning"


def state_of(row: Resource) -> dict[str, Any]:
    """A (copy of the) tuning job's internal state."""
    return dict(row.internal.get(STATE) or {})


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


def plan_of(body: dict[str, Any], stored: dict[str, Any]) -> Plan:
    """The plan of a stored (already checked) tuning job, from its document and its internal
    state (``MaxJobs``, ``Seed``, ``Hyperband``)."""
    config = body["HyperParameterTuningJobConfig"]
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
