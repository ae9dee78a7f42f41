"""What the registry's resources share: addressing by name or ARN, the AWS list defaults, and
the check that an inference specification's containers can be served here."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from opensage.errors import ValidationException
from opensage.runner.environments import framework_for_image
from opensage.services.artifacts import check_s3_object, model_data_url
from opensage.services.context import Context
from opensage.services.crud import arn_of
from opensage.services.kinds import Kind
from opensage.services.listing import list_query
from opensage.services.servable import script_mode
from opensage.store.resources import ListQuery, Resource


def load_named(ctx: Context, kind: Kind, name_or_arn: str,
               missing: Callable[[str], Exception] | None = None) -> Resource:
    """A resource of ``kind`` by its name or its ARN (any case, as AWS matches ARNs)."""
    found: Resource | None
    if name_or_arn.startswith("arn:"):
        arn = name_or_arn
        found = ctx.resources.get_by_arn(arn) or ctx.resources.get_by_arn(arn.lower())
        if found is not None and found.kind != kind.name:
            found = None
    else:
        arn = arn_of(ctx, kind, name_or_arn)
        found = ctx.resources.get(kind.name, name_or_arn) or ctx.resources.get_by_arn(arn)
    if found is None:
        raise missing(arn) if missing is not None else kind.not_found(arn, name_or_arn)
    return found


def registry_list_query(params: dict[str, Any], **extra: Any) -> ListQuery:
    """A ``List*`` request of the registry: CreationTime, Ascending unless asked otherwise
    (the documented defaults of ListModelPackages, ListModelPackageGroups, ListAlgorithms)."""
    query = list_query(params)
    return dataclasses.replace(query, sort_order=params.get("SortOrder") or "Ascending", **extra)


def summaries(ctx: Context, kind: Kind, query: ListQuery, *, key: str,
              fields: Sequence[str]) -> dict[str, Any]:
    rows, token = ctx.resources.list(kind.name, query)
    return {key: [{f: row.body.get(f) for f in fields} for row in rows], "NextToken": token}


def check_serving_image(ctx: Context, image: str, environment: dict[str, str],
                        where: str) -> None:
    """Refuse an image that cannot be served here in any version: a framework image or a
    built-in algorithm whose version opensage does not have. A user's own image is taken as
    given (it is served by a container engine where one exists)."""
    if not image:
        raise ValidationException(f"{where}: Image must be specified.")
    # UnsupportedFramework is a ValidationException; an own image is not checked here
    framework_for_image(image, script_mode=script_mode(environment))
    ctx.algorithms.lookup(image)  # a built-in with an unsupported version raises


def check_inference_specification(ctx: Context, spec: dict[str, Any], where: str, *,
                                  check_model_data: bool = True) -> None:
    """An ``InferenceSpecification``: 1 to 15 containers whose images can be served, whose
    model data exists in the object store."""
    containers = spec.get("Containers") or []
    if not containers:
        raise ValidationException(f"{where}.Containers must have at least one container.")
    for index, container in enumerate(containers):
        path = f"{where}.Containers[{index}]"
        check_serving_image(ctx, container.get("Image") or "",
                            container.get("Environment") or {}, path)
        url = model_data_url(container)
        if url and check_model_data:
            check_s3_object(ctx, url, what="model data")
