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

import re
from collections.abc import Callable
from typing import Any

from opensage.errors import AccessDenied, AwsError
from opensage.services.iam import IamService, Principal
from opensage.services.iam.policies import LazyContext, denial_message

_VERBS = re.compile(r"^(Create|Describe|Delete|Update|Stop|Start|Retry|Send|Invoke)")
_PREFIXES = {"monitoring": "cloudwatch", "metrics.sagemaker": "sagemaker"}
ROLE_MEMBERS = ("RoleArn", "ExecutionRoleArn")


def action_prefix(signing_name: str) -> str:
    return _PREFIXES.get(signing_name, signing_name)


def _kebab(noun: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", noun).lower()


def sagemaker_resource(operation: str, params: dict[str, Any], region: str,
                       account: str) -> str:
    arn = params.get("ResourceArn")
    if isinstance(arn, str):
        return arn
    match = _VERBS.match(operation)
    if match is not None:
        noun = operation[match.end():]
        name = params.get(f"{noun}Name")
        if isinstance(name, str):
            return f"arn:aws:sagemaker:{region}:{account}:{_kebab(noun)}/{name.lower()}"
    return "*"


def _walk(value: Any, found: dict[str, list[Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("InstanceType", "VolumeKmsKeyId", "EnableNetworkIsolation",
                       *ROLE_MEMBERS) and not isinstance(item, (dict, list)):
                found.setdefault(key, []).append(item)
            else:
                _walk(item, found)
    elif isinstance(value, list):
        for item in value:
            _walk(item, found)


def request_context(iam: IamService, principal: Principal, source_ip: str,
                    params: dict[str, Any],
                    resource_tags: Callable[[], dict[str, str]] | None = None
                    ) -> tuple[LazyContext, list[str]]:
    """The request context and the role ARNs the request passes."""
    values = iam.policies.base_context(principal)
    values["aws:sourceip"] = source_ip
    tags = params.get("Tags")
    if isinstance(tags, list):
        keys = [t["Key"] for t in tags if isinstance(t, dict) and "Key" in t]
        values["aws:tagkeys"] = keys
        for tag in tags:
            if isinstance(tag, dict) and "Key" in tag:
                values[f"aws:requesttag/{tag['Key']}".lower()] = tag.get("Value", "")
    found: dict[str, list[Any]] = {}
    _walk(params, found)
    if "InstanceType" in found:
        values["sagemaker:instancetypes"] = [str(v) for v in found["InstanceType"]]
    if "VolumeKmsKeyId" in found:
        values["sagemaker:volumekmskey"] = str(found["VolumeKmsKeyId"][0])
    if "EnableNetworkIsolation" in found:
        values["sagemaker:networkisolation"] = bool(found["EnableNetworkIsolation"][0])
    roles = [str(r) for key in ROLE_MEMBERS for r in found.get(key, [])]
    return LazyContext(values, resource_tags), roles


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
        pass_context = LazyContext({**context.known,
                                    "iam:passedtoservice": "sagemaker.amazonaws.com"}, None)
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
