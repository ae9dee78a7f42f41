"""Models and endpoint configurations: stored metadata with AWS's checks and errors."""

from __future__ import annotations

from typing import Any

from opensage.errors import NoSuchBucket, NoSuchKey, ValidationException
from opensage.services import kinds
from opensage.services.backend import Backend
from opensage.services.kinds import Kind
from opensage.services.listing import list_query
from opensage.store.resources import AlreadyExists, Resource


def arn_of(backend: Backend, kind: Kind, name: str) -> str:
    # SageMaker ARNs carry the name in lower case, which also makes names unique regardless
    # of case, as on AWS.
    return backend.arn(f"{kind.name}/{name.lower()}")


def load(backend: Backend, kind: Kind, name: str) -> Resource:
    found = backend.resources.get(kind.name, name)
    if found is None:
        found = backend.resources.get_by_arn(arn_of(backend, kind, name))
    if found is None:
        raise kind.not_found(arn_of(backend, kind, name), name)
    return found


def create(backend: Backend, kind: Kind, name: str, body: dict[str, Any],
           tag_list: list[dict[str, str]], *, noun: str, status: str | None = None) -> Resource:
    arn = arn_of(backend, kind, name)
    try:
        return backend.resources.create(kind.name, name, arn, body, now=backend.now(),
                                        status=status, tag_list=tag_list)
    except AlreadyExists:
        raise ValidationException(f'Cannot create already existing {noun} "{arn}".') from None


def remove(backend: Backend, kind: Kind, name: str) -> Resource:
    removed = backend.resources.delete(kind.name, name)
    if removed is None:
        raise kind.not_found(arn_of(backend, kind, name), name)
    return removed


def summaries(backend: Backend, kind: Kind, params: dict[str, Any], *, key: str,
              fields: dict[str, str]) -> dict[str, Any]:
    """A ``List*`` answer: ``{key: [summary...], NextToken}``, summaries picked from bodies."""
    rows, token = backend.resources.list(kind.name, list_query(params))
    items = [{out: row.body.get(src) for out, src in fields.items()} for row in rows]
    return {key: items, "NextToken": token}


# -- models ---------------------------------------------------------------------------------
def create_model(backend: Backend, params: dict[str, Any]) -> Resource:
    name = params["ModelName"]
    containers = params.get("Containers")
    primary = params.get("PrimaryContainer")
    if primary is None and not containers:
        raise ValidationException("Either PrimaryContainer or Containers must be specified.")
    if primary is not None and containers:
        raise ValidationException("Only one of PrimaryContainer or Containers can be specified.")
    for container in ([primary] if primary else containers or []):
        _check_container(backend, container)
    body = {k: v for k, v in params.items() if k != "Tags"}
    body["ModelArn"] = arn_of(backend, kinds.MODEL, name)
    body["CreationTime"] = backend.now()
    body.setdefault("EnableNetworkIsolation", False)
    return create(backend, kinds.MODEL, name, body, params.get("Tags") or [], noun="model")


def _check_container(backend: Backend, container: dict[str, Any]) -> None:
    if "Image" not in container and "ModelPackageName" not in container:
        raise ValidationException("A container must specify Image or ModelPackageName.")
    url = container.get("ModelDataUrl")
    if url:
        check_s3_object(backend, url, what="model data")


def check_s3_object(backend: Backend, url: str, *, what: str) -> None:
    """AWS refuses to create a model whose artifact it cannot read: so do we."""
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ValidationException(f"Invalid {what} URL {url!r}: expected s3://bucket/key")
    bucket, key = url[5:].split("/", 1)
    try:
        backend.objects.head_object(bucket, key)
    except (NoSuchBucket, NoSuchKey):
        raise ValidationException(
            f"Could not access {what} at {url}. Please ensure that the object exists and "
            "that the role has access to it.") from None


# -- endpoint configurations -----------------------------------------------------------------
def create_endpoint_config(backend: Backend, params: dict[str, Any]) -> Resource:
    name = params["EndpointConfigName"]
    variants = params["ProductionVariants"] + (params.get("ShadowProductionVariants") or [])
    seen: set[str] = set()
    for variant in variants:
        _check_variant(backend, variant, seen)
    body = {k: v for k, v in params.items() if k != "Tags"}
    for variant in body["ProductionVariants"]:
        variant.setdefault("InitialVariantWeight", 1.0)
    body["EndpointConfigArn"] = arn_of(backend, kinds.ENDPOINT_CONFIG, name)
    body["CreationTime"] = backend.now()
    return create(backend, kinds.ENDPOINT_CONFIG, name, body, params.get("Tags") or [],
                  noun="endpoint configuration")


def _check_variant(backend: Backend, variant: dict[str, Any], seen: set[str]) -> None:
    name = variant["VariantName"]
    if name.lower() in seen:
        raise ValidationException(f"Variant names must be unique: {name!r} is repeated.")
    seen.add(name.lower())
    if not variant.get("ModelName"):
        raise ValidationException(f"ModelName is required for production variant {name!r}.")
    load(backend, kinds.MODEL, variant["ModelName"])
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
