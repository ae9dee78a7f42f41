"""Model packages: versions numbered in their group (``<group>/1``, ``/2``, ...) or unversioned
packages with a name of their own, and what a model made from one serves.

A version number is given by ``ResourceStore.create_numbered``: the group's counter is raised
and the version inserted in one transaction, so concurrent registrations get 1..N with no gap
or repeat, and a deleted version's number is not given again.
"""

from __future__ import annotations

from typing import Any

from opensage.errors import ValidationException
from opensage.services import kinds
from opensage.services.artifacts import check_s3_object, model_data_url
from opensage.services.context import Context
from opensage.services.crud import arn_of, create
from opensage.services.registry import algorithms, groups
from opensage.services.registry.algorithm_states import AlgorithmStatus
from opensage.services.registry.common import (
    check_inference_specification,
    load_named,
    registry_list_query,
)
from opensage.services.registry.group_states import GroupStatus
from opensage.services.registry.package_states import LIFECYCLE, ApprovalStatus, PackageStatus
from opensage.store.resources import Resource, StatusConflict

KIND = kinds.MODEL_PACKAGE
MAX_CUSTOMER_METADATA = 50
_SUMMARY = ("ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion",
            "ModelPackageArn", "ModelPackageDescription", "CreationTime", "ModelPackageStatus",
            "ModelApprovalStatus", "ModelLifeCycle", "ModelPackageRegistrationType")
_BATCH_SUMMARY = ("ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn",
                  "ModelPackageDescription", "CreationTime", "InferenceSpecification",
                  "ModelPackageStatus", "ModelApprovalStatus", "ModelPackageRegistrationType")


def load_package(ctx: Context, name_or_arn: str) -> Resource:
    return load_named(ctx, KIND, name_or_arn)


def is_versioned(row: Resource) -> bool:
    return "/" in row.name


# -- CreateModelPackage --------------------------------------------------------------------
def create_package(ctx: Context, params: dict[str, Any]) -> Resource:
    name, group_name = params.get("ModelPackageName"), params.get("ModelPackageGroupName")
    if name and group_name:
        raise ValidationException("Both ModelPackageName and ModelPackageGroupName are provided "
                                  "in the input. Cannot determine which one to use.")
    if not name and not group_name:
        raise ValidationException("Missing ARN.")
    _check_specification(ctx, params, versioned=bool(group_name))
    body = {k: v for k, v in params.items() if k not in ("Tags", "ClientToken")}
    now = ctx.now()
    body.update(CreationTime=now, ModelPackageStatus=PackageStatus.PENDING,
                ModelPackageStatusDetails=_status_details(params),
                CertifyForMarketplace=bool(params.get("CertifyForMarketplace")))
    tags = params.get("Tags") or []
    if group_name:
        group = groups.load_group(ctx, group_name, missing=lambda _: ValidationException(
            "Model Package Group does not exist."))
        body.setdefault("ModelApprovalStatus", ApprovalStatus.PENDING_MANUAL_APPROVAL)

        def make(version: int) -> tuple[str, str, dict[str, Any]]:
            arn = arn_of(ctx, KIND, f"{group.name}/{version}")
            return f"{group.name}/{version}", arn, {
                **body, "ModelPackageName": group.name, "ModelPackageGroupName": group.name,
                "ModelPackageVersion": version, "ModelPackageArn": arn}

        try:
            row = ctx.resources.create_numbered(
                groups.KIND.name, group.name, [GroupStatus.COMPLETED], KIND.name, make,
                counter=groups.VERSION_COUNTER, now=now, status=PackageStatus.PENDING,
                tag_list=tags)
        except StatusConflict as e:
            if e.current is None:
                raise ValidationException("Model Package Group does not exist.") from None
            raise ValidationException(
                f"Model Package Group {group.name} is {e.current}: versions can be "
                "registered in a Completed group only.") from None
    else:
        assert name is not None
        body["ModelPackageArn"] = arn_of(ctx, KIND, name)
        row = create(ctx, KIND, name, body, tags, noun="model package",
                     status=PackageStatus.PENDING)
    for source, target in ((PackageStatus.PENDING, PackageStatus.IN_PROGRESS),
                           (PackageStatus.IN_PROGRESS, PackageStatus.COMPLETED)):
        row = _move(ctx, row.name, target, source)
    return row


def _move(ctx: Context, name: str, target: PackageStatus, *current: PackageStatus) -> Resource:
    def change(body: dict[str, Any]) -> None:
        body["ModelPackageStatus"] = target

    return ctx.resources.transition(KIND.name, name, LIFECYCLE.sources(target, *current),
                                    target, change, now=ctx.now())


def _status_details(params: dict[str, Any]) -> dict[str, Any]:
    """As AWS reports them: one status per validation profile (accepted here, not run:
    NotStarted), none without a ValidationSpecification."""
    profiles = (params.get("ValidationSpecification") or {}).get("ValidationProfiles") or []
    return {"ValidationStatuses": [{"Name": p["ProfileName"], "Status": "NotStarted"}
                                   for p in profiles]}


def _check_specification(ctx: Context, params: dict[str, Any], *, versioned: bool) -> None:
    inference = params.get("InferenceSpecification")
    source = params.get("SourceAlgorithmSpecification")
    if not versioned and inference is None and source is None:
        raise ValidationException(
            "An unversioned model package needs an InferenceSpecification or a "
            "SourceAlgorithmSpecification.")
    if inference is not None:
        check_inference_specification(ctx, inference, "InferenceSpecification")
    if source is not None:
        _check_source_algorithms(ctx, source)
    metadata = params.get("CustomerMetadataProperties") or {}
    if len(metadata) > MAX_CUSTOMER_METADATA:
        raise ValidationException(f"CustomerMetadataProperties can have at most "
                                  f"{MAX_CUSTOMER_METADATA} entries.")


def _check_source_algorithms(ctx: Context, source: dict[str, Any]) -> None:
    for entry in source["SourceAlgorithms"]:
        row = algorithms.load_algorithm(ctx, entry["AlgorithmName"])
        if row.status != AlgorithmStatus.COMPLETED:
            raise ValidationException(f"Algorithm {row.name} is {row.status}, not Completed.")
        if not (row.body.get("InferenceSpecification") or {}).get("Containers"):
            raise ValidationException(
                f"Algorithm {row.name} has no InferenceSpecification: a model package cannot "
                "be made from it.")
        if entry.get("ModelDataUrl"):
            check_s3_object(ctx, entry["ModelDataUrl"], what="model data")


# -- Describe / List / BatchDescribe -------------------------------------------------------
def describe_package(ctx: Context, name_or_arn: str) -> dict[str, Any]:
    return load_package(ctx, name_or_arn).body


def list_packages(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    group_name = params.get("ModelPackageGroupName")
    kind_filter = params.get("ModelPackageType") or ("Versioned" if group_name else
                                                     "Unversioned")
    extra: dict[str, Any] = {"children": {"Versioned": True, "Unversioned": False,
                                          "Both": None}[kind_filter]}
    if group_name:
        try:
            group = groups.load_group(ctx, group_name)
        except ValidationException:
            return {"ModelPackageSummaryList": []}
        extra["name_prefix"] = group.name + "/"
    if params.get("ModelApprovalStatus"):
        extra["body_equals"] = (("ModelApprovalStatus", params["ModelApprovalStatus"]),)
    rows, token = ctx.resources.list(KIND.name, registry_list_query(params, **extra))
    return {"ModelPackageSummaryList": [{f: row.body.get(f) for f in _SUMMARY} for row in rows],
            "NextToken": token}


def batch_describe(ctx: Context, arns: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for arn in dict.fromkeys(arns):
        try:
            body = load_package(ctx, arn).body
        except ValidationException as e:
            errors[arn] = {"ErrorCode": e.code, "ErrorResponse": e.message}
            continue
        found[arn] = {f: body.get(f) for f in _BATCH_SUMMARY}
    return {"ModelPackageSummaries": found, "BatchDescribeModelPackageErrorMap": errors}


# -- UpdateModelPackage / DeleteModelPackage -----------------------------------------------
def update_package(ctx: Context, params: dict[str, Any]) -> str:
    row = load_package(ctx, params["ModelPackageArn"])
    if params.get("InferenceSpecification") is not None:
        check_inference_specification(ctx, params["InferenceSpecification"],
                                      "InferenceSpecification")
    additions = params.get("AdditionalInferenceSpecificationsToAdd") or []
    now = ctx.now()

    def change(body: dict[str, Any]) -> None:
        for key in ("ModelApprovalStatus", "ApprovalDescription", "InferenceSpecification",
                    "SourceUri", "ModelCard", "ModelLifeCycle", "ModelPackageRegistrationType"):
            if params.get(key) is not None:
                body[key] = params[key]
        metadata = dict(body.get("CustomerMetadataProperties") or {})
        metadata.update(params.get("CustomerMetadataProperties") or {})
        for key in params.get("CustomerMetadataPropertiesToRemove") or []:
            metadata.pop(key, None)
        if len(metadata) > MAX_CUSTOMER_METADATA:
            raise ValidationException(f"CustomerMetadataProperties can have at most "
                                      f"{MAX_CUSTOMER_METADATA} entries.")
        if metadata or "CustomerMetadataProperties" in body:
            body["CustomerMetadataProperties"] = metadata
        if additions:
            existing = list(body.get("AdditionalInferenceSpecifications") or [])
            names = {s["Name"] for s in existing}
            for spec in additions:
                if spec["Name"] in names:
                    raise ValidationException(
                        f"An additional inference specification named {spec['Name']!r} "
                        "already exists.")
                names.add(spec["Name"])
                existing.append(spec)
            body["AdditionalInferenceSpecifications"] = existing
        body["LastModifiedTime"] = now

    ctx.resources.edit(KIND.name, row.name, [PackageStatus.COMPLETED], change, now=now)
    return row.arn


def delete_package(ctx: Context, name_or_arn: str) -> None:
    """The package's row goes; the model data it points to stays where it is (nothing in
    opensage deletes a ``model.tar.gz``), so models already made from it keep serving."""
    row = load_package(ctx, name_or_arn)
    try:
        _move(ctx, row.name, PackageStatus.DELETING, PackageStatus.COMPLETED,
              PackageStatus.FAILED)
    except StatusConflict as e:
        if e.current is None:
            raise KIND.not_found(row.arn, row.name) from None
        raise
    ctx.resources.delete(KIND.name, row.name)


# -- CreateModel with ModelPackageName -----------------------------------------------------
def serving_container(ctx: Context, container: dict[str, Any]) -> dict[str, Any]:
    """What a model container naming ``ModelPackageName`` serves: the package's first
    container (or, for a package made from an algorithm, the algorithm's inference image with
    the package's model data): ``{Image, ModelDataUrl, Environment}``, the model container's
    Environment over the package's. A versioned package must be Approved, as AWS requires."""
    row = load_package(ctx, container["ModelPackageName"])
    body = row.body
    if row.status != PackageStatus.COMPLETED:
        raise ValidationException(f"Model package {row.arn} is {row.status}, not Completed.")
    if is_versioned(row) and body.get("ModelApprovalStatus") != ApprovalStatus.APPROVED:
        raise ValidationException(
            f"Model package {row.arn} has ModelApprovalStatus "
            f"{body.get('ModelApprovalStatus')}: a versioned model package must be Approved "
            "to be deployed.")
    containers = (body.get("InferenceSpecification") or {}).get("Containers") or []
    if containers:
        first = containers[0]
        image, url = first.get("Image", ""), model_data_url(first)
        environment = dict(first.get("Environment") or {})
    elif body.get("SourceAlgorithmSpecification"):
        source = body["SourceAlgorithmSpecification"]["SourceAlgorithms"][0]
        algorithm = algorithms.load_algorithm(ctx, source["AlgorithmName"]).body
        first = algorithm["InferenceSpecification"]["Containers"][0]
        image, url = first.get("Image", ""), source.get("ModelDataUrl")
        environment = dict(first.get("Environment") or {})
    else:
        raise ValidationException(f"Model package {row.arn} has no InferenceSpecification to "
                                  "deploy.")
    environment.update(container.get("Environment") or {})
    return {"Image": image, "ModelDataUrl": url, "Environment": environment}
