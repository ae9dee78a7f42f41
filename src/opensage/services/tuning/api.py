"""The tuning job operations: Create, Describe, List, Stop and ListTrainingJobsFor...

Each reads or writes the store and returns; the reconcile loop (``jobs``) does the work. A
tuning job's row holds its API document, its internal state under ``plans.STATE`` and its
trials in ``store.trials``.
"""

from __future__ import annotations

from typing import Any

from opensage.errors import ResourceInUse, ValidationException
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, load
from opensage.services.listing import list_query
from opensage.services.tuning import plans, validation
from opensage.services.tuning.states import TuningStatus
from opensage.services.tuning.summaries import summarise, training_job_summaries
from opensage.store.resources import AlreadyExists, StatusConflict
from opensage.store.trials import TrialStore

KIND = kinds.TUNING_JOB


def create(ctx: Context, params: dict[str, Any]) -> str:
    name = params["HyperParameterTuningJobName"]
    arn = arn_of(ctx, KIND, name)
    if ctx.resources.get(KIND.name, name) is not None:
        raise ResourceInUse(_name_taken(arn))
    plan = validation.check(ctx, params)
    now = ctx.now()
    body: dict[str, Any] = {k: v for k, v in params.items() if k != "Tags"}
    config = body["HyperParameterTuningJobConfig"]
    config.setdefault("Strategy", "Bayesian")
    config.setdefault("TrainingJobEarlyStoppingType", "Off")
    if plan.definitions:
        body["TrainingJobDefinitions"] = [
            _described(job, sub) for job, sub in zip(body["TrainingJobDefinitions"],
                                                     plan.definitions, strict=True)]
    else:
        body["TrainingJobDefinition"] = _described(body["TrainingJobDefinition"], plan)
    body.update({"HyperParameterTuningJobArn": arn,
                 "HyperParameterTuningJobStatus": str(TuningStatus.IN_PROGRESS),
                 "CreationTime": now, "LastModifiedTime": now})
    state: dict[str, Any] = {"MaxJobs": plan.max_jobs, "Seed": plan.seed,
                             # a warm start's parent trials, as they ended
                             "ParentTrials": list(plan.parent_trials)}
    if plan.hyperband() is not None:
        state["Hyperband"] = plan.hyperband()
    summarise(body, state, [], now)
    try:
        ctx.resources.create(KIND.name, name, arn, body, now=now,
                             status=str(TuningStatus.IN_PROGRESS),
                             tag_list=params.get("Tags") or [], internal={plans.STATE: state})
    except AlreadyExists:
        raise ResourceInUse(_name_taken(arn)) from None
    return arn


def describe(ctx: Context, trials: TrialStore, name: str) -> dict[str, Any]:
    row = load(ctx, KIND, name)
    body = dict(row.body)
    summarise(body, plans.state_of(row), trials.of(row.name), ctx.now())
    return body


def list_jobs(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    rows, token = ctx.resources.list(KIND.name, list_query(params))
    summaries = []
    for row in rows:
        body = row.body
        config = body["HyperParameterTuningJobConfig"]
        summaries.append({
            **{k: body.get(k) for k in (
                "HyperParameterTuningJobName", "HyperParameterTuningJobArn",
                "HyperParameterTuningJobStatus", "CreationTime", "HyperParameterTuningEndTime",
                "LastModifiedTime", "TrainingJobStatusCounters", "ObjectiveStatusCounters")},
            "Strategy": config.get("Strategy", "Bayesian"),
            "ResourceLimits": config.get("ResourceLimits")})
    return {"HyperParameterTuningJobSummaries": summaries, "NextToken": token}


def stop(ctx: Context, name: str) -> None:
    """InProgress -> Stopping, as a compare-and-set; the loop then stops the children."""
    job = load(ctx, KIND, name)
    now = ctx.now()

    def change(body: dict[str, Any]) -> None:
        body.update(HyperParameterTuningJobStatus=str(TuningStatus.STOPPING),
                    LastModifiedTime=now)

    try:
        ctx.resources.transition(KIND.name, job.name, [str(TuningStatus.IN_PROGRESS)],
                                 str(TuningStatus.STOPPING), change, now=now)
    except StatusConflict as conflict:
        if conflict.current is None:
            load(ctx, KIND, name)  # gone meanwhile: ResourceNotFound
        raise ValidationException(
            f"The request was rejected because the tuning job is in status "
            f"{conflict.current}.") from None


def training_jobs(ctx: Context, trials: TrialStore, params: dict[str, Any]) -> dict[str, Any]:
    """ListTrainingJobsForHyperParameterTuningJob: the trials, sorted and paged."""
    job = load(ctx, KIND, params["HyperParameterTuningJobName"])
    return training_job_summaries(job.body, trials.of(job.name), params)


def _name_taken(arn: str) -> str:
    return (f"Hyperparameter tuning job names must be unique within an AWS account and "
            f"region; {arn} already exists.")


def _described(job: dict[str, Any], plan: plans.Plan) -> dict[str, Any]:
    """A training job definition as AWS describes it: the objective metric among the static
    hyperparameters (the SDK's HyperparameterTuner.attach deletes this key), the metric
    definitions the children use, and ResourceConfig even when the request sent
    HyperParameterTuningResourceConfig (the SDK's attach reads it)."""
    job = dict(job)
    job["StaticHyperParameters"] = {**(job.get("StaticHyperParameters") or {}),
                                    "_tuning_objective_metric": plan.objective_metric}
    job["AlgorithmSpecification"] = {**job["AlgorithmSpecification"],
                                     "MetricDefinitions": list(plan.metric_definitions)}
    job.setdefault("ResourceConfig", plans.child_request(
        {"TrainingJobDefinition": job}, "resources", {}, plan.objective_metric,
        tuning_arn="")["ResourceConfig"])
    return job
