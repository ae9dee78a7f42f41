"""What an endpoint runs, resolved from its configuration and models when it is deployed,
and the ``ProductionVariants`` / ``DataCaptureConfig`` views of it that Describe shows.

The plan is kept in the row's internal state (never in the API document), so a restart can
bring an ``InService`` endpoint back even after its configuration or models were deleted, as
AWS keeps serving them.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, cast

from opensage.errors import ValidationException
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import load
from opensage.services.models import serving_container
from opensage.serving.fleet import DEFAULT_STARTUP_TIMEOUT

# Keys of ``Resource.internal``: the names revision 0004 moved existing rows' state to.
DEPLOYED = "_Deployment"  # what serves now
PENDING = "_Pending"  # what an UpdateEndpoint in progress is deploying


class VariantPlan(TypedDict):
    VariantName: str
    ModelName: str
    Weight: float
    InstanceCount: int
    InstanceType: str
    Image: str
    ModelDataUrl: str | None
    Environment: dict[str, str]
    StartupTimeout: float
    # the model's role, whose s3:GetObject on the artifact is checked (--auth sigv4); rows
    # deployed before it was recorded lack it
    ExecutionRoleArn: NotRequired[str]
    # The model's EnableNetworkIsolation (absent from plans stored before it was honoured)
    NetworkIsolation: NotRequired[bool]


class Deployment(TypedDict):
    EndpointConfigName: str
    Variants: list[VariantPlan]
    DataCapture: dict[str, Any] | None


def resolve(ctx: Context, config: dict[str, Any]) -> Deployment:
    """What to run, read from the configuration and its models now."""
    variants: list[VariantPlan] = []
    for variant in config["ProductionVariants"]:
        model = load(ctx, kinds.MODEL, variant["ModelName"])
        container = serving_container(model)
        isolated = bool(model.body.get("EnableNetworkIsolation"))
        variants.append({
            "VariantName": variant["VariantName"],
            "ModelName": variant["ModelName"],
            "Weight": float(variant.get("InitialVariantWeight", 1.0)),
            "InstanceCount": int(variant.get("InitialInstanceCount") or 1),
            "InstanceType": variant.get("InstanceType") or "ml.m5.large",
            "Image": container["Image"],
            "ModelDataUrl": container["ModelDataUrl"],
            "Environment": container["Environment"],
            "StartupTimeout": float(variant.get(
                "ContainerStartupHealthCheckTimeoutInSeconds") or DEFAULT_STARTUP_TIMEOUT),
            "ExecutionRoleArn": model.body.get("ExecutionRoleArn") or "",
            "NetworkIsolation": isolated,
        })
    return {"EndpointConfigName": config["EndpointConfigName"], "Variants": variants,
            "DataCapture": config.get("DataCaptureConfig")}


def deployed(internal: dict[str, Any]) -> Deployment | None:
    return cast("Deployment | None", internal.get(DEPLOYED))


def with_capacities(deployment: Deployment, desired: list[dict[str, Any]],
                    arn: str) -> Deployment:
    """``deployment`` with the weights and instance counts of ``desired`` (an
    UpdateEndpointWeightsAndCapacities request); ValidationException for a bad one."""
    known = {v["VariantName"] for v in deployment["Variants"]}
    missing = [d["VariantName"] for d in desired if d["VariantName"] not in known]
    if missing:
        raise ValidationException(f"The variant(s) \"{missing}\" are not present in the "
                                  f"endpoint \"{arn}\".")
    variants = [cast(VariantPlan, dict(v)) for v in deployment["Variants"]]
    by_name = {v["VariantName"]: v for v in variants}
    for d in desired:
        if d.get("DesiredWeight") is None and d.get("DesiredInstanceCount") is None:
            raise ValidationException("Either DesiredWeight or DesiredInstanceCount must be "
                                      f"specified for variant {d['VariantName']}.")
        if d.get("DesiredWeight") is not None:
            by_name[d["VariantName"]]["Weight"] = float(d["DesiredWeight"])
        if d.get("DesiredInstanceCount") is not None:
            if int(d["DesiredInstanceCount"]) < 1:
                raise ValidationException("DesiredInstanceCount must be at least 1.")
            by_name[d["VariantName"]]["InstanceCount"] = int(d["DesiredInstanceCount"])
    return {"EndpointConfigName": deployment["EndpointConfigName"], "Variants": variants,
            "DataCapture": deployment.get("DataCapture")}


def variant_views(deployment: Deployment, *, current: bool,
                  when: float) -> list[dict[str, Any]]:
    """``ProductionVariants`` of Describe: desired values, and current ones once serving."""
    views = []
    for v in deployment["Variants"]:
        view: dict[str, Any] = {
            "VariantName": v["VariantName"],
            "DeployedImages": [{"SpecifiedImage": v["Image"], "ResolvedImage": v["Image"],
                                "ResolutionTime": when}],
            "DesiredWeight": v["Weight"], "DesiredInstanceCount": v["InstanceCount"]}
        if current:
            view.update(CurrentWeight=v["Weight"], CurrentInstanceCount=v["InstanceCount"])
        views.append(view)
    return views


def capture_view(config: dict[str, Any]) -> dict[str, Any]:
    return {"EnableCapture": bool(config.get("EnableCapture", True)),
            "CaptureStatus": "Started" if config.get("EnableCapture", True) else "Stopped",
            "CurrentSamplingPercentage": config.get("InitialSamplingPercentage", 0),
            "DestinationS3Uri": config.get("DestinationS3Uri", "")}
