"""Models and endpoint configurations: stored metadata with AWS's checks and errors."""

from __future__ import annotations

from typing import Any

from opensage.errors import ValidationException
from opensage.services import kinds
from opensage.services.artifacts import check_s3_object, model_data_url
from opensage.services.context import Context
from opensage.services.crud import arn_of, create, load
from opensage.services.registry import packages
from opensage.services.servable import check_image
from opensage.store.resources import Resource


# -- models ---------------------------------------------------------------------------------
def create_model(ctx: Context, params: dict[str, Any]) -> Resource:
    name = params["ModelName"]
    containers = params.get("Containers")
    primary = params.get("PrimaryContainer")
    if primary is None and not containers:
        raise ValidationException("Either PrimaryContainer or Containers must be specified.")
    if primary is not None and containers:
        raise ValidationException("Only one of PrimaryContainer or Containers can be specified.")
    served = []
    for container in ([primary] if primary else containers or []):
        _check_container(ctx, container)
        # A registered model version is resolved once, now: the model keeps serving what
        # the package named even if the package is deleted later.
        served.append(packages.serving_container(ctx, container)
                      if container.get("ModelPackageName") else None)
    body = {k: v for k, v in params.items() if k != "Tags"}
    body["ModelArn"] = arn_of(ctx, kinds.MODEL, name)
    body["CreationTime"] = ctx.now()
    body.setdefault("EnableNetworkIsolation", False)
    internal = {SERVED: served} if any(served) else None
    return create(ctx, kinds.MODEL, name, body, params.get("Tags") or [], noun="model",
                  internal=internal)


# The key of a model's internal state: per container, what its ModelPackageName resolved to.
SERVED = "ServedContainers"


def serving_container(model: Resource) -> dict[str, Any]:
    """What the model's (first) container serves: ``Image``, ``ModelDataUrl``,
    ``Environment``, a model package's resolved at CreateModel. Endpoints and batch transform
    read it here, never from the document."""
    body = model.body
    container = body.get("PrimaryContainer") or (body.get("Containers") or [{}])[0]
    resolved = (model.internal.get(SERVED) or [None])[0]
    if resolved:
        return dict(resolved)
    return {"Image": container.get("Image", ""), "ModelDataUrl": model_data_url(container),
            "Environment": container.get("Environment") or {}}


def _check_container(ctx: Context, container: dict[str, Any]) -> None:
    if "Image" not in container and "ModelPackageName" not in container:
        raise ValidationException("A container must specify Image or ModelPackageName.")
    if container.get("Image"):  # a framework version that cannot be had: refused now
        check_image(ctx.algorithms, container["Image"], container.get("Environment") or {},
                    ctx.containers)
    url = model_data_url(container)
    if url:
        check_s3_object(ctx, url, what="model data")


# -- endpoint configurations -----------------------------------------------------------------
def create_endpoint_config(ctx: Context, params: dict[str, Any]) -> Resource:
    name = params["EndpointConfigName"]
    variants = params["ProductionVariants"] + (params.get("ShadowProductionVariants") or [])
    seen: set[str] = set()
    for variant in variants:
        _check_variant(ctx, variant, seen)
    body = {k: v for k, v in params.items() if k != "Tags"}
    for variant in body["ProductionVariants"]:
        variant.setdefault("InitialVariantWeight", 1.0)
    body["EndpointConfigArn"] = arn_of(ctx, kinds.ENDPOINT_CONFIG, name)
    body["CreationTime"] = ctx.now()
    return create(ctx, kinds.ENDPOINT_CONFIG, name, body, params.get("Tags") or [],
                  noun="endpoint configuration")


def _check_variant(ctx: Context, variant: dict[str, Any], seen: set[str]) -> None:
    name = variant["VariantName"]
    if name.lower() in seen:
        raise ValidationException(f"Variant names must be unique: {name!r} is repeated.")
    seen.add(name.lower())
    if not variant.get("ModelName"):
        raise ValidationException(f"ModelName is required for production variant {name!r}.")
    load(ctx, kinds.MODEL, variant["ModelName"])
    if variant.get("ServerlessConfig") is None:
        for field in ("InstanceType", "InitialInstanceCount"):
            if variant.get(field) is None:
                raise ValidationException(
                    f"{field} is required for production variant {name!r} "
                    "unless ServerlessConfig is specified.")
    elif variant.get("InstanceType") or variant.get("InitialInstanceCount"):
        raise ValidationException(
            f"Production variant {name!r} cannot specify both ServerlessConfig and "
            "InstanceType/InitialInstanceCount.")
