"""Model package groups: the registry's folders of numbered model versions, and their
resource policies (kept beside the document: DescribeModelPackageGroup does not show them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opensage.errors import ValidationException
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, create
from opensage.services.registry.common import load_named, registry_list_query, summaries
from opensage.services.registry.group_states import LIFECYCLE, GroupStatus
from opensage.store.resources import ListQuery, Resource, StatusConflict

KIND = kinds.MODEL_PACKAGE_GROUP
POLICY = "ResourcePolicy"  # key of the group's internal state
VERSION_COUNTER = "LastVersion"  # the last version number given (never reused)


def load_group(ctx: Context, name_or_arn: str,
               missing: Callable[[str], Exception] | None = None) -> Resource:
    return load_named(ctx, KIND, name_or_arn, missing)


def versions_query(group: Resource, max_results: int = 10) -> ListQuery:
    """The versions of ``group``: packages named ``<group>/<n>``."""
    return ListQuery(name_prefix=group.name + "/", children=True, max_results=max_results)


def create_group(ctx: Context, params: dict[str, Any]) -> Resource:
    name = params["ModelPackageGroupName"]
    body = {k: v for k, v in params.items() if k != "Tags"}
    now = ctx.now()
    body.update(ModelPackageGroupArn=arn_of(ctx, KIND, name), CreationTime=now,
                CreatedBy={}, ModelPackageGroupStatus=GroupStatus.PENDING)
    create(ctx, KIND, name, body, params.get("Tags") or [], noun="model package group",
           status=GroupStatus.PENDING, internal={VERSION_COUNTER: 0})
    row = None
    for target in (GroupStatus.IN_PROGRESS, GroupStatus.COMPLETED):
        row = _move(ctx, name, target)
    assert row is not None
    return row


def _move(ctx: Context, name: str, target: GroupStatus,
          check: Any = None) -> Resource:
    current = {GroupStatus.IN_PROGRESS: (GroupStatus.PENDING,),
               GroupStatus.COMPLETED: (GroupStatus.IN_PROGRESS,),
               GroupStatus.DELETING: (GroupStatus.COMPLETED, GroupStatus.FAILED,
                                      GroupStatus.DELETE_FAILED)}[target]

    def change(body: dict[str, Any]) -> None:
        if check is not None:
            check()
        body["ModelPackageGroupStatus"] = target

    return ctx.resources.transition(KIND.name, name, LIFECYCLE.sources(target, *current),
                                    target, change, now=ctx.now())


def describe_group(ctx: Context, name_or_arn: str) -> dict[str, Any]:
    return load_group(ctx, name_or_arn).body


def list_groups(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return summaries(ctx, KIND, registry_list_query(params), key="ModelPackageGroupSummaryList",
                     fields=("ModelPackageGroupName", "ModelPackageGroupArn",
                             "ModelPackageGroupDescription", "CreationTime",
                             "ModelPackageGroupStatus", "ManagedConfiguration"))


def delete_group(ctx: Context, name_or_arn: str) -> None:
    """Only an empty group goes: one with versions is refused, as AWS refuses it. The check
    runs inside the status compare-and-set; a version registered meanwhile moves the group's
    modification time, so the move is re-read and refused."""
    group = load_group(ctx, name_or_arn)

    def empty() -> None:
        versions, _ = ctx.resources.list(kinds.MODEL_PACKAGE.name, versions_query(group, 1))
        if versions:
            raise ValidationException(
                f"Model Package Group {group.name} cannot be deleted because it contains "
                "model packages. Delete the model packages in the group first.")

    try:
        _move(ctx, group.name, GroupStatus.DELETING, empty)
    except StatusConflict as e:
        if e.current is None:  # deleted meanwhile
            raise KIND.not_found(group.arn, group.name) from None
        raise
    ctx.resources.delete(KIND.name, group.name)


# -- resource policies ---------------------------------------------------------------------
def put_policy(ctx: Context, name_or_arn: str, policy: str) -> str:
    group = load_group(ctx, name_or_arn)
    try:
        document = json.loads(policy)
    except ValueError:
        raise ValidationException("ResourcePolicy is not a valid JSON policy document.") from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise ValidationException("ResourcePolicy must be a policy document with a Statement.")

    def change(internal: dict[str, Any]) -> None:
        internal[POLICY] = policy

    ctx.resources.edit(KIND.name, group.name, [GroupStatus.COMPLETED], change_internal=change,
                       now=ctx.now())
    return group.arn


def get_policy(ctx: Context, name_or_arn: str) -> str:
    group = load_group(ctx, name_or_arn)
    policy = group.internal.get(POLICY)
    if policy is None:
        raise ValidationException(
            f"Cannot find resource policy for model package group {group.arn}.")
    return str(policy)


def delete_policy(ctx: Context, name_or_arn: str) -> None:
    group = load_group(ctx, name_or_arn)
    if group.internal.get(POLICY) is None:
        raise ValidationException(
            f"Cannot find resource policy for model package group {group.arn}.")

    def change(internal: dict[str, Any]) -> None:
        internal.pop(POLICY, None)

    ctx.resources.edit(KIND.name, group.name, [GroupStatus.COMPLETED], change_internal=change,
                       now=ctx.now())
