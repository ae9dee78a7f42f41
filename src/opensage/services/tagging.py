"""AddTags / ListTags / DeleteTags over any SageMaker resource, addressed by ARN."""

from __future__ import annotations

from typing import Any

from opensage.errors import ValidationException
from opensage.services.backend import Backend


def _require(backend: Backend, arn: str) -> str:
    prefix = backend.arn("")
    if not arn.startswith(prefix):
        raise ValidationException(
            f"Resource ARN {arn!r} is not a SageMaker resource of account "
            f"{backend.settings.account_id} in region {backend.settings.region}.")
    if backend.resources.get_by_arn(arn) is None:
        raise ValidationException(f"Resource {arn} does not exist.")
    return arn


def add_tags(backend: Backend, arn: str, tag_list: list[dict[str, str]]) -> list[dict[str, str]]:
    backend.resources.add_tags(_require(backend, arn), tag_list)
    return tag_list


def list_tags(backend: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = _require(backend, params["ResourceArn"])
    items, token = backend.resources.list_tags(arn, params.get("MaxResults") or 50,
                                               params.get("NextToken"))
    return {"Tags": items, "NextToken": token}


def delete_tags(backend: Backend, arn: str, keys: list[str]) -> None:
    backend.resources.delete_tags(_require(backend, arn), keys)
