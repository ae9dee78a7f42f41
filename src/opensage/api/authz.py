"""Authorisation under ``--auth sigv4``: each request's action, resource ARN and request
context, checked against the caller's identity policies (``services.iam.policies``) once
routing knows the operation: ``RpcService.dispatch`` (the JSON/CBOR services), ``QueryApi``
(IAM, STS), ``S3Api`` and the InvokeEndpoint fast path call ``require``.

Resources: a SageMaker operation's named resource (``CreateTrainingJob`` ->
``arn:aws:sagemaker:<region>:<account>:training-job/<name>``, ``ResourceArn`` members as given,
``*`` for List/Search and what names no resource); S3 ``arn:aws:s3:::bucket[/key]``; IAM users,
roles and policies by their ARNs. Context: the global keys of the caller, ``aws:SourceIp``,
``aws:RequestTag/*`` and ``aws:TagKeys`` from the request's ``Tags``,
``sagemaker:InstanceTypes``/``NetworkIsolation``/``VolumeKmsKey``, ``aws:ResourceTag/*``
(read only when a condition asks). ``iam:PassRole`` is checked for every role ARN a
SageMaker request hands over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opensage.errors import AccessDenied, AwsError
from opensage.services.iam import IamService, Principal
from opensage.services.iam.access import (
    ROLE_MEMBERS,
    pass_role_context,
    request_context,
    sagemaker_resource,
)
from opensage.services.iam.policies import denial_message

__all__ = ["ROLE_MEMBERS", "request_context", "sagemaker_resource"]

_PREFIXES = {"monitoring": "cloudwatch", "metrics.sagemaker": "sagemaker"}


def action_prefix(signing_name: str) -> str:
    return _PREFIXES.get(signing_name, signing_name)


def require(iam: IamService, principal: Principal | None, action: str, resource: str,
            context: Any, error: type[AwsError] | Callable[[str], AwsError]) -> None:
    """Raise ``error(message)`` (AWS's words) unless ``principal`` may do ``action``."""
    if principal is None:  # --auth none
        return
    result = iam.policies.authorize(principal, action, resource, context)
    if not result.allowed:
        raise error(denial_message(principal, action, resource, result))


def json_denied(message: str) -> AwsError:
    return AwsError(message, code="AccessDeniedException", status=400)


def query_denied(message: str) -> AwsError:
    return AwsError(message, code="AccessDenied", status=403)


def s3_denied(message: str) -> AwsError:
    return AccessDenied(message)


def check_rpc(iam: IamService, principal: Principal | None, prefix: str, operation: str,
              params: dict[str, Any], source_ip: str, region: str,
              resource_tags: Callable[[str], dict[str, str]]) -> None:
    if principal is None or principal.type == "Root":
        return
    resource = (sagemaker_resource(operation, params, region, iam.account)
                if prefix == "sagemaker" else "*")
    tags = (lambda: resource_tags(resource)) if resource.startswith("arn:") else None
    context, roles = request_context(iam, principal, source_ip, params, tags)
    require(iam, principal, f"{prefix}:{operation}", resource, context, json_denied)
    if prefix == "sagemaker" and operation.startswith("Create"):
        pass_context = pass_role_context(context)
        for role in roles:
            require(iam, principal, "iam:PassRole", role, pass_context, json_denied)


def query_resource(iam: IamService, service: str, params: dict[str, Any]) -> str:
    account = iam.account
    if service == "sts":
        return str(params.get("RoleArn", "*"))
    if "PolicyArn" in params and not any(k in params for k in ("UserName", "RoleName",
                                                               "GroupName")):
        return str(params["PolicyArn"])
    for member, kind in (("UserName", "user"), ("RoleName", "role"), ("GroupName", "group")):
        if isinstance(params.get(member), str):
            return f"arn:aws:iam::{account}:{kind}/{params[member]}"
    if "PolicySourceArn" in params:
        return str(params["PolicySourceArn"])
    return "*"
