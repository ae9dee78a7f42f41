"""From a CreateTrainingJob request to a stored Describe document, the runner's own state
(kept in the row's ``internal`` column, never in the document) and a runnable spec.

Everything AWS would refuse is refused here, before a row is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opensage.algorithms.channels import channel_configs
from opensage.containers import ContainerEngine, no_engine_reason
from opensage.errors import ValidationException
from opensage.runner.environments import UnsupportedFramework, framework_for_image
from opensage.runner.local import TrainingSpec
from opensage.runner.metrics import check_definitions
from opensage.runner.own_image import OwnImage
from opensage.runner.toolkit import script
from opensage.services.algorithms import AlgorithmCatalog
from opensage.services.registry.algorithms import DeclaredAlgorithm

# Fields AWS always returns, even when the request left them out.
_DEFAULTS = {"EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": False,
             "EnableManagedSpotTraining": False, "HyperParameters": {}}


@dataclass(frozen=True)
class Prepared:
    module: str | None
    unsupported_reason: str | None
    metric_definitions: list[dict[str, str]]
    # Script mode: the framework image and what the hyperparameters ask to run.
    script: dict[str, Any] | None = None
    # The user's own image, run by the container engine: {"image": ...}
    container: dict[str, Any] | None = None
    # A deep-learning built-in's framework environment (``builtin-torch``)
    environment: str | None = None
    across_hosts: bool = False  # a built-in whose hosts train one model together


# The key of the runner's state in a job's ``internal`` column (the name it had in the
# document before Alembic revision 0004 moved it out). A tuner's child request may carry it
# too, asking for prompt metrics (``tuning.plans.child_request``).
RUNNER = "OpensageRunner"

# Optional in the service model (other kinds of job leave them out), needed to run here.
_NEEDED = ("AlgorithmSpecification", "ResourceConfig")


# An algorithm resource by name or ARN (``services.registry.algorithms.find``).
AlgorithmFinder = Callable[[str], DeclaredAlgorithm]


def prepare(algorithms: AlgorithmCatalog, params: dict[str, Any], *,
            find_algorithm: AlgorithmFinder | None = None,
            containers: ContainerEngine | None = None) -> Prepared:
    """The request checked, and what will run it: a framework image's script, a built-in,
    or (``containers``: the engine, when there is one) the user's own image.

    ``find_algorithm`` resolves ``AlgorithmSpecification.AlgorithmName`` (an algorithm
    resource): its TrainingImage runs, its declared hyperparameters, channels, instance types
    and metric definitions apply."""
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
    hyperparameters = params.get("HyperParameters") or {}
    if spec.get("AlgorithmName"):
        if find_algorithm is None:
            raise ValidationException("AlgorithmName needs the algorithm resources.")
        declared = find_algorithm(spec["AlgorithmName"])
        resources = params["ResourceConfig"]
        declared.check_job(hyperparameters,
                           channel_configs(channels, spec.get("TrainingInputMode")),
                           resources.get("InstanceType"), resources.get("InstanceCount", 1))
        image = declared.image
        taken = {m["Name"] for m in user_metrics}
        user_metrics = [m for m in declared.metric_definitions
                        if m["Regex"] and m["Name"] not in taken] + user_metrics
    # A framework image (sagemaker-xgboost only with sagemaker_program: else the built-in)
    # runs the user's script; UnsupportedFramework is the ValidationException to answer.
    framework = framework_for_image(image, script_mode=script.is_script_mode(hyperparameters))
    if framework is not None:
        request = script.read_request(hyperparameters)
        _check_isolated_hosts(params)
        return Prepared(None, None, user_metrics, {"image": image, **request.state()})
    algorithm = algorithms.lookup(image)
    if algorithm is None:
        if containers is None:
            raise ValidationException(no_engine_reason(image))
        _check_isolated_hosts(params)
        return Prepared(None, None, user_metrics, container={"image": image})
    algorithm.validate(params.get("HyperParameters") or {},
                       {c["ChannelName"]: c.get("ContentType") for c in channels},
                       spec.get("TrainingInputMode", "File"))
    builtin = algorithm.metric_definitions()
    taken = {m["Name"] for m in builtin}
    return Prepared(algorithm.module, None,
                    builtin + [m for m in user_metrics if m["Name"] not in taken],
                    environment=algorithm.environment,
                    across_hosts=algorithm.trains_across_hosts)


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


def _check_isolated_hosts(params: dict[str, Any]) -> None:
    if params.get("EnableNetworkIsolation") and params["ResourceConfig"].get(
            "InstanceCount", 1) > 1:
        raise ValidationException(
            "EnableNetworkIsolation with InstanceCount > 1 is not supported by opensage: "
            "each host runs in a network of its own, where the others cannot be reached.")


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
    if prepared.script is not None:
        runner["script"] = prepared.script
    if prepared.container is not None:
        runner["container"] = prepared.container
    if prepared.environment is not None:
        runner["environment"] = prepared.environment
    if prepared.across_hosts:
        runner["across_hosts"] = True
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
    mode, reason = _script_mode(runner.get("script"))
    return TrainingSpec(
        name=body["TrainingJobName"], arn=body["TrainingJobArn"], module=runner.get("module"),
        unsupported_reason=reason or runner.get("reason"), script=mode,
        network_isolation=bool(body.get("EnableNetworkIsolation")),
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
        prompt_metrics=bool(runner.get("prompt_metrics")),
        across_hosts=bool(runner.get("across_hosts")),
        container=_own_image(runner.get("container"), algorithm),
        builtin_environment=runner.get("environment"), role_arn=body.get("RoleArn") or "")


def _own_image(state: dict[str, Any] | None,
               algorithm: dict[str, Any]) -> OwnImage | None:
    if state is None:
        return None
    entrypoint = algorithm.get("ContainerEntrypoint")
    arguments = algorithm.get("ContainerArguments")
    return OwnImage(state["image"], tuple(entrypoint) if entrypoint else None,
                    tuple(arguments) if arguments is not None else None)


def _script_mode(state: dict[str, Any] | None) -> tuple[script.ScriptMode | None, str | None]:
    """A script-mode job's framework, looked up again (a server started since may support
    other versions): (None, why) when it no longer can be had."""
    if state is None:
        return None, None
    try:
        framework = framework_for_image(state["image"], script_mode=True)
    except UnsupportedFramework as err:
        return None, err.message
    if framework is None:
        return None, f"The training image {state['image']} is no longer a framework image"
    return script.ScriptMode(framework, script.request_from_state(state)), None
