"""The query protocol (form-encoded ``Action=...``, XML answers) for STS and IAM.

Both call ``services.iam``. The caller is the principal the SigV4 gate verified
(``--auth sigv4``); without authentication there is none, and ``GetCallerIdentity`` answers
the implicit assumed role ``opensage`` in the configured account. That ARN (not ``:root``)
matters: the SageMaker SDK's ``get_execution_role()`` turns it into
``arn:aws:iam::<account>:role/opensage`` and asks IAM ``GetRole`` for its path, which is
answered for any role name (a role nobody created is implicit until authorisation lands).
"""

from __future__ import annotations

import logging
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from botocore.model import OperationModel, ServiceModel, Shape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from opensage.api.auth import PRINCIPAL
from opensage.api.authz import query_denied, query_resource, request_context, require
from opensage.api.error_encoding import ServiceErrors
from opensage.api.shapes import decode_input, parse_timestamp
from opensage.errors import AwsError, InternalFailure, NotImplementedOperation
from opensage.services.iam import IamService, Principal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryCall:
    iam: IamService
    caller: Principal | None  # None: --auth none
    source_ip: str = ""


QueryHandler = Callable[[QueryCall, dict[str, Any]], dict[str, Any]]
MAX_FORM_BODY = 1024 * 1024
# Answered to any caller, as AWS does (no policy can deny them)
ALWAYS_ALLOWED = frozenset({"GetCallerIdentity"})
_SCALARS = {"string", "integer", "long", "boolean", "float", "double", "timestamp"}


class QueryApi:
    """One query-protocol service: parse the form, validate, call a handler, answer XML."""

    def __init__(self, model: ServiceModel, iam: IamService,
                 handlers: dict[str, QueryHandler]) -> None:
        self.model, self.iam, self.handlers = model, iam, handlers
        self.namespace = model.metadata["xmlNamespace"]
        self.errors = ServiceErrors(model)

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = await request.body()
            if len(body) > MAX_FORM_BODY:
                raise AwsError("Request body too large", code="RequestEntityTooLarge", status=413)
            form = dict(request.query_params)
            form.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            call = QueryCall(self.iam, request.scope.get(PRINCIPAL),
                             request.client.host if request.client else "")
            return await run_in_threadpool(self.dispatch, call, form, request_id)
        except AwsError as err:
            return self.errors(err, request_id).response()
        except Exception as exc:  # a bug, not the caller's fault: log it, answer 500
            log.exception("%s request failed", self.model.service_name)
            return self.errors(InternalFailure(type(exc).__name__), request_id).response()

    def dispatch(self, call: QueryCall, form: dict[str, str], request_id: str) -> Response:
        action = form.get("Action")
        if not action:
            raise AwsError("Missing Action", code="MissingAction")
        if action not in self.model.operation_names:
            raise AwsError(f"Could not find operation {action} for version "
                           f"{self.model.api_version}", code="InvalidAction")
        operation = self.model.operation_model(action)
        params = decode_input(operation.input_shape, _members(operation.input_shape, form, ""))
        handler = self.handlers.get(action)
        if handler is None:
            raise NotImplementedOperation(f"opensage does not implement {action} yet")
        if (call.caller is not None and call.caller.type != "Root"
                and action not in ALWAYS_ALLOWED):
            service = self.model.metadata["endpointPrefix"]
            context, _ = request_context(self.iam, call.caller, call.source_ip, params)
            require(self.iam, call.caller, f"{service}:{action}",
                    query_resource(self.iam, service, params), context, query_denied)
        try:
            result = handler(call, params)
        except AwsError:
            raise
        except Exception as exc:  # a bug, not the caller's fault: log it, answer 500
            log.exception("%s failed", action)
            raise InternalFailure(f"{action} failed: {type(exc).__name__}") from exc
        return self.result_response(operation, result, request_id)

    def result_response(self, operation: OperationModel, result: dict[str, Any],
                        request_id: str) -> Response:
        root = ET.Element(f"{operation.name}Response", xmlns=self.namespace)
        shape = operation.output_shape
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper", f"{operation.name}Result")
            _append(ET.SubElement(root, wrapper), shape, result)
        meta = ET.SubElement(root, "ResponseMetadata")
        ET.SubElement(meta, "RequestId").text = request_id
        return Response(ET.tostring(root, encoding="unicode"), 200,
                        {"x-amzn-RequestId": request_id}, media_type="text/xml")


def _members(shape: Shape | None, form: dict[str, str], prefix: str) -> dict[str, Any]:
    """The input structure from the form: scalars, ``Name.member.N`` lists and
    ``Name.entry.N.key/value`` maps, nested."""
    if shape is None:
        return {}
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        value = _value(member, form, f"{prefix}{name}")
        if value is not None:
            out[name] = value
    return out


def _value(shape: Shape, form: dict[str, str], key: str) -> Any:
    kind = shape.type_name
    if kind in _SCALARS:
        raw = form.get(key)
        return None if raw is None else _scalar(kind, raw)
    if kind == "structure":
        if not any(k.startswith(key + ".") for k in form):
            return None
        return _members(shape, form, key + ".")
    if kind == "list":
        items = []
        for n in range(1, 1001):
            item = _value(shape.member, form, f"{key}.member.{n}")
            if item is None:
                break
            items.append(item)
        return items if items or f"{key}" in form else None
    if kind == "map":
        entries: dict[str, Any] = {}
        for n in range(1, 1001):
            k = form.get(f"{key}.entry.{n}.key")
            if k is None:
                break
            entries[k] = _value(shape.value, form, f"{key}.entry.{n}.value")
        return entries or None
    return None


# The query protocol's numbers in ASCII: Python's int() and float() would also take "\u0661"
# (an Arabic-Indic one), "1_000", " 7 ", "nan" and "infinity".
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _scalar(kind: str, raw: str) -> Any:
    if kind in ("integer", "long"):
        return int(raw) if _INTEGER.fullmatch(raw) else raw  # decode_input: the wrong type
    if kind in ("float", "double"):
        return float(raw) if _DECIMAL.fullmatch(raw) else raw
    if kind == "boolean":
        return raw.lower() == "true" if raw.lower() in ("true", "false") else raw
    return raw


def _append(parent: ET.Element, shape: Shape, value: Any) -> None:
    """Write ``value`` into ``parent`` as the query protocol's XML for ``shape``."""
    kind = shape.type_name
    if kind == "structure":
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                _append(ET.SubElement(parent, member.serialization.get("name", name)),
                        member, item)
    elif kind == "list":
        member = shape.member
        for item in value:
            _append(ET.SubElement(parent, "member"), member, item)
    elif kind == "map":
        for key, item in value.items():
            entry = ET.SubElement(parent, "entry")
            ET.SubElement(entry, "key").text = str(key)
            _append(ET.SubElement(entry, "value"), shape.value, item)
    elif kind == "timestamp":
        parsed = parse_timestamp(value)
        parent.text = parsed.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else ""
    elif kind == "boolean":
        parent.text = "true" if value else "false"
    else:
        parent.text = str(value)


# --- STS -----------------------------------------------------------------------------------

STS_HANDLERS: dict[str, QueryHandler] = {
    "GetCallerIdentity": lambda call, params: call.iam.caller_identity(call.caller),
    "AssumeRole": lambda call, params: call.iam.assume_role(params, call.caller),
    "GetSessionToken": lambda call, params: call.iam.get_session_token(params, call.caller),
    "GetAccessKeyInfo": lambda call, params: {"Account": call.iam.account},
}

# --- IAM -----------------------------------------------------------------------------------

IAM_HANDLERS: dict[str, QueryHandler] = {
    "CreateUser": lambda call, params: call.iam.create_user(params),
    "GetUser": lambda call, params: call.iam.get_user(params, call.caller),
    "ListUsers": lambda call, params: call.iam.list_users(params),
    "DeleteUser": lambda call, params: call.iam.delete_user(params),
    "CreateAccessKey": lambda call, params: call.iam.create_access_key(params, call.caller),
    "ListAccessKeys": lambda call, params: call.iam.list_access_keys(params, call.caller),
    "UpdateAccessKey": lambda call, params: call.iam.update_access_key(params, call.caller),
    "DeleteAccessKey": lambda call, params: call.iam.delete_access_key(params, call.caller),
    "CreateRole": lambda call, params: call.iam.create_role(params),
    "GetRole": lambda call, params: call.iam.get_role(params),
    "ListRoles": lambda call, params: call.iam.list_roles(params),
    "UpdateRole": lambda call, params: call.iam.update_role(params),
    "UpdateRoleDescription": lambda call, params: call.iam.update_role_description(params),
    "DeleteRole": lambda call, params: call.iam.delete_role(params),
    "CreatePolicy": lambda call, params: call.iam.policies.create_policy(params),
    "GetPolicy": lambda call, params: call.iam.policies.get_policy(params),
    "GetPolicyVersion": lambda call, params: call.iam.policies.get_policy_version(params),
    "ListPolicies": lambda call, params: call.iam.policies.list_policies(params),
    "DeletePolicy": lambda call, params: call.iam.policies.delete_policy(params),
    "CreateGroup": lambda call, params: call.iam.policies.create_group(params),
    "AddUserToGroup": lambda call, params: call.iam.policies.add_user_to_group(params),
    "RemoveUserFromGroup": lambda call, params: call.iam.policies.remove_user_from_group(
        params),
    "SimulatePrincipalPolicy": lambda call, params: call.iam.policies.simulate(params),
}


def _owner_handlers(kind: str) -> dict[str, QueryHandler]:
    """Put/Get/Delete/List<Kind>Policy (inline) and Attach/Detach/ListAttached<Kind>Policies."""
    owner = kind.lower()

    def bind(method: str) -> QueryHandler:
        return lambda call, params: getattr(call.iam.policies, method)(owner, params)

    return {f"Put{kind}Policy": bind("put_inline"), f"Get{kind}Policy": bind("get_inline"),
            f"Delete{kind}Policy": bind("delete_inline"),
            f"List{kind}Policies": bind("list_inline"),
            f"Attach{kind}Policy": bind("attach"), f"Detach{kind}Policy": bind("detach"),
            f"ListAttached{kind}Policies": bind("list_attached")}


for _kind in ("User", "Role", "Group"):
    IAM_HANDLERS.update(_owner_handlers(_kind))


class StsApi(QueryApi):
    def __init__(self, model: ServiceModel, iam: IamService) -> None:
        super().__init__(model, iam, STS_HANDLERS)


class IamApi(QueryApi):
    def __init__(self, model: ServiceModel, iam: IamService) -> None:
        super().__init__(model, iam, IAM_HANDLERS)
