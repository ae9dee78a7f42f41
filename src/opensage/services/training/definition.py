"""From a CreateTrainingJob request to a stored Describe document, the runner's own state
(kept in the row's ``internal`` column, never in the document) and a runnable spec.

Everything AWS would refuse is refused here, before a row is written.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from opensage.errors import ValidationException
from opensage.runner.local import TrainingSpec
from opensage.runner.metrics import check_definitions
from opensage.services.algorithms import AlgorithmCatalog

# Fields AWS always returns, even when the request left them out.
_DEFAULTS = {"EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": False,
             "EnableManagedSpotTraining": False, "HyperParameters": {}}


@dataclass(frozen=True)
class Prepared:
    module: str | None
    unsupported_reason: str | None
    metric_definitions: list[dict[str, str]]


# The key of the runner's state in a job's ``internal`` column (the name it had in the
# document before Alembic revision 0004 moved it out). A tuner's child request may carry it
# too, asking for prompt metrics (``tuning.plans.child_request``).
RUNNER = "OpensageRunner"

# Optional in the service model (other kinds of job leave them out), needed to run here.
_NEEDED = ("AlgorithmSpecification", "ResourceConfig")


def prepare(algorithms: AlgorithmCatalog, params: dict[str, Any]) -> Prepared:
    missing = [name for name in _NEEDED if params.get(name) is None]
    if missing:
        n = len(missing)
        raise ValidationException(
            f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(
                f"Value null at '{name[0].lower() + name[1:]}' failed to satisfy constraint: "
                "Member must not be null" for name in missing))
    spec = params["AlgorithmSpecification"]
    image = spec.get("TrainingImage") or spec.get("AlgorithmName")
    if not image or (spec.get("TrainingImage") and spec.get("AlgorithmName")):
        raise ValidationException(
            "Exactly one of AlgorithmSpecification.TrainingImage or "
            "AlgorithmSpecification.AlgorithmName must be specified.")
    channels = params.get("InputDataConfig") or []
    names = [c["ChannelName"] for c in channels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationException(f"Channel names must be unique; repeated: {duplicates}")
    for channel in channels:
        source = channel["DataSource"].get("S3DataSource")
        if source is None:
            raise ValidationException(
                f"Channel {channel['ChannelName']!r}: opensage supports S3DataSource only.")
        if not source["S3Uri"].startswith("s3://"):
            raise ValidationException(
                f"Channel {channel['ChannelName']!r}: S3Uri must start with s3://")
    if not params["OutputDataConfig"]["S3OutputPath"].startswith("s3://"):
        raise ValidationException("OutputDataConfig.S3OutputPath must start with s3://")
    _check_stopping_condition(params)

    user_metrics = spec.get("MetricDefinitions") or []
    problem = check_definitions(user_metrics)
    if problem:
        raise ValidationException(problem)
    algorithm = algorithms.lookup(image)
    if algorithm is None:
        return Prepared(None, _unsupported(image), user_metrics)
    algorithm.validate(params.get("HyperParameters") or {},
                       {c["ChannelName"]: c.get("ContentType") for c in channels},
                       spec.get("TrainingInputMode", "File"))
    builtin = algorithm.metric_definitions()
    taken = {m["Name"] for m in builtin}
    return Prepared(algorithm.module, None,
                    builtin + [m for m in user_metrics if m["Name"] not in taken])


def _check_stopping_condition(params: dict[str, Any]) -> None:
    stopping = params.get("StoppingCondition") or {}
    if params.get("EnableManagedSpotTraining"):
        wait = stopping.get("MaxWaitTimeInSeconds")
        runtime = stopping.get("MaxRuntimeInSeconds", 86400)
        if wait is None or wait < runtime:
            raise ValidationException(
                "StoppingCondition.MaxWaitTimeInSeconds must be set and be greater than or "
                "equal to MaxRuntimeInSeconds when EnableManagedSpotTraining is true.")
    if params.get("CheckpointConfig") and not params["CheckpointConfig"]["S3Uri"].startswith(
            "s3://"):
        raise ValidationException("CheckpointConfig.S3Uri must start with s3://")


def _unsupported(image: str) -> str:
    engines = [e for e in ("docker", "podman") if shutil.which(e)]
    why = ("no container engine is usable here" if not engines else
           "running custom containers is not supported yet")
    return (f"The training image {image} is not an opensage built-in algorithm, and {why}; "
            "use a built-in algorithm image (e.g. sagemaker-xgboost:1.7-1)")


def describe_body(params: dict[str, Any], arn: str, prepared: Prepared,
                  now: float) -> dict[str, Any]:
    body: dict[str, Any] = {**_DEFAULTS, **{k: v for k, v in params.items()
                                            if k not in ("Tags", RUNNER)}}
    body["AlgorithmSpecification"] = {**params["AlgorithmSpecification"],
                                      "MetricDefinitions": prepared.metric_definitions}
    body["OutputDataConfig"] = {"KmsKeyId": "", **params["OutputDataConfig"]}
    body["StoppingCondition"] = {"MaxRuntimeInSeconds": 86400,
                                 **(params.get("StoppingCondition") or {})}
    output = params["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    body["ModelArtifacts"] = {
        "S3ModelArtifacts": f"{output}/{params['TrainingJobName']}/output/model.tar.gz"}
    body["TrainingJobArn"] = arn
    body["CreationTime"] = now
    body["LastModifiedTime"] = now
    return body


def internal_state(params: dict[str, Any], prepared: Prepared) -> dict[str, Any]:
    """What the runner needs beyond the document: the module to run (or why none can)."""
    runner: dict[str, Any] = {"module": prepared.module, "reason": prepared.unsupported_reason}
    if (params.get(RUNNER) or {}).get("prompt_metrics"):
        runner["prompt_metrics"] = True  # a watching tuner's child
    return {RUNNER: runner}


def runner_state(internal: dict[str, Any]) -> dict[str, Any]:
    return dict(internal.get(RUNNER) or {})


def training_spec(body: dict[str, Any], internal: dict[str, Any], *,
                  region: str) -> TrainingSpec:
    algorithm = body["AlgorithmSpecification"]
    resources = body["ResourceConfig"]
    runner = runner_state(internal)
    return TrainingSpec(
        name=body["TrainingJobName"], arn=body["TrainingJobArn"], module=runner.get("module"),
        unsupported_reason=runner.get("reason"),
        hyperparameters=body.get("HyperParameters") or {},
        channels=body.get("InputDataConfig") or [],
        input_mode=algorithm.get("TrainingInputMode", "File"),
        output_path=body["OutputDataConfig"]["S3OutputPath"],
        instance_type=resources.get("InstanceType", "ml.m5.large"),
        instance_count=resources.get("InstanceCount", 1),
        max_runtime=body["StoppingCondition"]["MaxRuntimeInSeconds"],
        region=region, environment=body.get("Environment") or {},
        metric_definitions=algorithm.get("MetricDefinitions") or [],
        checkpoint=body.get("CheckpointConfig"),
        spot=bool(body.get("EnableManagedSpotTraining")),
        max_wait=body["StoppingCondition"].get("MaxWaitTimeInSeconds"),
        prompt_metrics=bool(runner.get("prompt_metrics")))
