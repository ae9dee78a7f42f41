"""What an authorisation check is made of, shared by the API (``api/authz.py``) and the
console (``console/access.py``): a SageMaker operation's resource ARN, and the request context
(the caller's global keys, ``aws:SourceIp``, the request's tags and SageMaker's condition keys)
with the role ARNs a request passes (``iam:PassRole``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from opensage.services.iam.policies import LazyContext
from opensage.services.iam.principal import Principal
from opensage.services.iam.service import IamService

_VERBS = re.compile(r"^(Create|Describe|Delete|Update|Stop|Start|Retry|Send|Invoke)")
ROLE_MEMBERS = ("RoleArn", "ExecutionRoleArn")


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


def pass_role_context(context: LazyContext) -> LazyContext:
    """The context of the ``iam:PassRole`` check a SageMaker ``Create*`` makes per role."""
    return LazyContext({**context.known, "iam:passedtoservice": "sagemaker.amazonaws.com"},
                       None)
