"""What a CreateProcessingJob request may ask for here, the Describe document AWS returns for
it, and the runner's spec built from that document.

The API layer has checked the request's shapes against the botocore model; this module
refuses, with a ValidationException and before anything is stored, what the service model
lets through but AWS refuses (enums, LocalPath outside ``/opt/ml/processing/``, Gzip outside
Pipe mode, duplicate names) or what cannot run here (an own image without a container
engine, Pipe mode, dataset definitions, Feature Store outputs). An image that names no
framework is the user's own: the container engine runs it with its entry point.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from opensage.containers import ContainerEngine, no_engine_reason
from opensage.errors import ValidationException
from opensage.runner.environments import UnsupportedFramework, framework_for_image
from opensage.runner.environments.catalog import supported_text
from opensage.runner.processing import PROCESSING_ROOT, ProcessingSpec

DEFAULT_MAX_RUNTIME = 86400  # the SDK sends none by default; AWS's default is one day
_INPUT_DEFAULTS = {"S3DataType": "S3Prefix", "S3InputMode": "File",
                   "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}
_ENUMS = {"S3DataType": ("S3Prefix", "ManifestFile"), "S3InputMode": ("File", "Pipe"),
          "S3DataDistributionType": ("FullyReplicated", "ShardedByS3Key"),
          "S3CompressionType": ("None", "Gzip"), "S3UploadMode": ("EndOfJob", "Continuous")}


def validate(params: dict[str, Any], containers: ContainerEngine | None = None) -> None:
    """ValidationException for what AWS refuses or opensage cannot run; changes nothing.
    ``containers``: the container engine for own images, when the server has one."""
    image = params["AppSpecification"]["ImageUri"]
    # UnsupportedFramework (a ValidationException) names the versions that are supported
    own = framework_for_image(image, script_mode=True) is None
    if own and containers is None:
        raise ValidationException(
            f"{no_engine_reason(image)}. Framework images run here without one (e.g. "
            "sagemaker-scikit-learn:1.2-1-cpu-py3, as SKLearnProcessor and ScriptProcessor "
            f"do, or FrameworkProcessor's): {supported_text()}.")
    if not own and not params["AppSpecification"].get("ContainerEntrypoint"):
        raise ValidationException(
            f"AppSpecification.ContainerEntrypoint is required here: the framework image "
            f"{image} has no entry point of its own to run (e.g. [\"python3\", "
            "\"/opt/ml/processing/input/code/preprocess.py\"]).")
    names: set[str] = set()
    for index, item in enumerate(params.get("ProcessingInputs") or [], 1):
        where = f"ProcessingInputs.{index}"
        _unique(names, item["InputName"], "InputName")
        if item.get("DatasetDefinition") is not None:
            raise ValidationException(f"{where}.DatasetDefinition (Athena, Redshift) is not "
                                      "supported by opensage; use S3Input.")
        source = item.get("S3Input")
        if source is None:
            raise ValidationException(f"{where}: one of S3Input or DatasetDefinition is "
                                      "required.")
        _check_enums(source, f"{where}.S3Input")
        _check_local_path(source.get("LocalPath"), f"{where}.S3Input.LocalPath")
        _check_s3_uri(source["S3Uri"], f"{where}.S3Input.S3Uri")
        if source.get("S3InputMode") == "Pipe":
            raise ValidationException(f"{where}.S3Input.S3InputMode Pipe is not supported by "
                                      "opensage for processing jobs; use File.")
        if source.get("S3CompressionType") == "Gzip":
            raise ValidationException(f"{where}.S3Input.S3CompressionType Gzip can only be "
                                      "used when S3InputMode is Pipe.")
    outputs = (params.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    names = set()
    for index, output in enumerate(outputs, 1):
        where = f"ProcessingOutputConfig.Outputs.{index}"
        _unique(names, output["OutputName"], "OutputName")
        if output.get("FeatureStoreOutput") is not None:
            raise ValidationException(f"{where}.FeatureStoreOutput is not supported by "
                                      "opensage; use S3Output.")
        target = output.get("S3Output")
        if target is None:
            raise ValidationException(f"{where}: S3Output is required.")
        _check_enums(target, f"{where}.S3Output")
        _check_local_path(target["LocalPath"], f"{where}.S3Output.LocalPath")
        _check_s3_uri(target["S3Uri"], f"{where}.S3Output.S3Uri")
    network = params.get("NetworkConfig") or {}
    count = params["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
    if network.get("EnableNetworkIsolation") and count > 1:
        raise ValidationException(
            "NetworkConfig.EnableNetworkIsolation with InstanceCount > 1 is not supported by "
            "opensage: each host runs in a network namespace of its own.")


def _unique(seen: set[str], name: str, what: str) -> None:
    if name in seen:
        raise ValidationException(f"{what} {name!r} is used more than once; names must be "
                                  "unique within a processing job.")
    seen.add(name)


def _check_enums(shape: dict[str, Any], where: str) -> None:
    for key, allowed in _ENUMS.items():
        value = shape.get(key)
        if value is not None and value not in allowed:
            raise ValidationException(
                f"1 validation error detected: Value '{value}' at '{where}.{key}' failed to "
                f"satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(allowed)}]")


def _check_local_path(path: str | None, where: str) -> None:
    pure = PurePosixPath(path or "")
    if (not path or not path.startswith(f"{PROCESSING_ROOT}/") or ".." in pure.parts
            or pure == PROCESSING_ROOT):
        raise ValidationException(f"{where} {path!r} must begin with {PROCESSING_ROOT}/.")


def _check_s3_uri(uri: str, where: str) -> None:
    if not uri.startswith("s3://") or not uri[5:].partition("/")[0]:
        raise ValidationException(f"{where} {uri!r} is not an s3:// URI (local mode's "
                                  "file:// inputs are uploaded by the SDK first).")


def describe_body(params: dict[str, Any], arn: str, now: float) -> dict[str, Any]:
    """DescribeProcessingJob's document as created: the request with AWS's defaults."""
    body = {k: v for k, v in params.items() if k != "Tags"}
    if params.get("ProcessingInputs"):
        body["ProcessingInputs"] = [
            {**item, "AppManaged": item.get("AppManaged", False),
             "S3Input": {**_INPUT_DEFAULTS, **item["S3Input"]}}
            for item in params["ProcessingInputs"]]
    outputs = (params.get("ProcessingOutputConfig") or {}).get("Outputs")
    if outputs:
        body["ProcessingOutputConfig"] = {**params["ProcessingOutputConfig"], "Outputs": [
            {**output, "AppManaged": output.get("AppManaged", False),
             "S3Output": {"S3UploadMode": "EndOfJob", **output["S3Output"]}}
            for output in outputs]}
    body["StoppingCondition"] = params.get("StoppingCondition") or {
        "MaxRuntimeInSeconds": DEFAULT_MAX_RUNTIME}
    body.update(ProcessingJobArn=arn, ProcessingJobStatus="InProgress", CreationTime=now,
                LastModifiedTime=now)
    return body


def job_config(body: dict[str, Any]) -> dict[str, Any]:
    """``/opt/ml/config/processingjobconfig.json``: the job as the container sees it."""
    keys = ("ProcessingJobArn", "ProcessingJobName", "AppSpecification", "Environment",
            "ProcessingInputs", "ProcessingOutputConfig", "ProcessingResources", "RoleArn",
            "StoppingCondition", "NetworkConfig", "ExperimentConfig")
    return {key: body[key] for key in keys if key in body}


def spec(body: dict[str, Any], *, region: str) -> ProcessingSpec:
    """What the runner runs, from the stored Describe document."""
    app = body["AppSpecification"]
    image: str | None = None  # the user's own image: no framework names it
    reason: str | None = None
    try:
        framework = framework_for_image(app["ImageUri"], script_mode=True)
        if framework is None:
            image = app["ImageUri"]
    except UnsupportedFramework as err:  # the catalogue changed since the job was created
        framework, reason = None, err.message
    cluster = body["ProcessingResources"]["ClusterConfig"]
    return ProcessingSpec(
        name=body["ProcessingJobName"], arn=body["ProcessingJobArn"], region=region,
        framework=framework, unsupported_reason=reason, image=image,
        entrypoint=list(app.get("ContainerEntrypoint") or []),
        arguments=list(app.get("ContainerArguments") or []),
        inputs=list(body.get("ProcessingInputs") or []),
        outputs=list((body.get("ProcessingOutputConfig") or {}).get("Outputs") or []),
        instance_type=cluster["InstanceType"], instance_count=int(cluster["InstanceCount"]),
        max_runtime=int(body["StoppingCondition"]["MaxRuntimeInSeconds"]),
        job_config=job_config(body), environment=dict(body.get("Environment") or {}),
        network_isolation=bool((body.get("NetworkConfig") or {}).get(
            "EnableNetworkIsolation")), role_arn=body.get("RoleArn") or "")
