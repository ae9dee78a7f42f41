"""Create, load, remove and list stored SageMaker resources, with AWS's ARNs and errors:
the generic part of every resource's API."""

from __future__ import annotations

from typing import Any

from opensage.errors import ValidationException
from opensage.services.context import Context
from opensage.services.kinds import Kind
from opensage.services.listing import list_query
from opensage.store.resources import AlreadyExists, Resource


def arn_of(ctx: Context, kind: Kind, name: str) -> str:
    # SageMaker ARNs carry the name in lower case, which also makes names unique regardless
    # of case, as on AWS.
    return ctx.arn(f"{kind.name}/{name.lower()}")


def load(ctx: Context, kind: Kind, name: str) -> Resource:
    found = ctx.resources.get(kind.name, name)
    if found is None:
        found = ctx.resources.get_by_arn(arn_of(ctx, kind, name))
    if found is None:
        raise kind.not_found(arn_of(ctx, kind, name), name)
    return found


def create(ctx: Context, kind: Kind, name: str, body: dict[str, Any],
           tag_list: list[dict[str, str]], *, noun: str, status: str | None = None,
           internal: dict[str, Any] | None = None) -> Resource:
    """``internal``: opensage's own state of the resource, kept apart from its API document."""
    arn = arn_of(ctx, kind, name)
    try:
        return ctx.resources.create(kind.name, name, arn, body, now=ctx.now(),
                                    status=status, tag_list=tag_list, internal=internal)
    except AlreadyExists:
        raise ValidationException(f'Cannot create already existing {noun} "{arn}".') from None


def remove(ctx: Context, kind: Kind, name: str) -> Resource:
    removed = ctx.resources.delete(kind.name, name)
    if removed is None:
        raise kind.not_found(arn_of(ctx, kind, name), name)
    return removed


def summaries(ctx: Context, kind: Kind, params: dict[str, Any], *, key: str,
              fields: dict[str, str]) -> dict[str, Any]:
    """A ``List*`` answer: ``{key: [summary...], NextToken}``, summaries picked from bodies."""
    rows, token = ctx.resources.list(kind.name, list_query(params))
    items = [{out: row.body.get(src) for out, src in fields.items()} for row in rows]
    return {key: items, "NextToken": token}
