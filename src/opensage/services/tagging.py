"""AddTags / ListTags / DeleteTags over any SageMaker resource, addressed by ARN."""

from __future__ import annotations

from typing import Any

from opensage.errors import ValidationException
from opensage.services.context import Context


def _require(ctx: Context, arn: str) -> str:
    prefix = ctx.arn("")
    if not arn.startswith(prefix):
        raise ValidationException(
            f"Resource ARN {arn!r} is not a SageMaker resource of account "
            f"{ctx.settings.account_id} in region {ctx.settings.region}.")
    if ctx.resources.get_by_arn(arn) is None:
        raise ValidationException(f"Resource {arn} does not exist.")
    return arn


def add_tags(ctx: Context, arn: str, tag_list: list[dict[str, str]]) -> list[dict[str, str]]:
    ctx.resources.add_tags(_require(ctx, arn), tag_list)
    return tag_list


def list_tags(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    arn = _require(ctx, params["ResourceArn"])
    items, token = ctx.resources.list_tags(arn, params.get("MaxResults") or 50,
                                           params.get("NextToken"))
    return {"Tags": items, "NextToken": token}


def delete_tags(ctx: Context, arn: str, keys: list[str]) -> None:
    ctx.resources.delete_tags(_require(ctx, arn), keys)
