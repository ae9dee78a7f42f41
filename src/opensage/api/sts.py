"""The query protocol (form-encoded ``Action=...``, XML answers) for STS and IAM.

opensage has one implicit identity: the assumed role ``opensage`` in the configured account.
Answering ``GetCallerIdentity`` with an assumed-role ARN (not ``:root``) matters: the SageMaker
SDK's ``get_execution_role()`` turns it into ``arn:aws:iam::<account>:role/opensage`` and asks
IAM ``GetRole`` for its path, which ``IamApi`` answers for any role name (opensage never checks
permissions, so every role "exists").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote

from botocore.model import OperationModel, ServiceModel, Shape
from starlette.requests import Request
from starlette.responses import Response

from opensage.api.error_encoding import ServiceErrors
from opensage.api.shapes import decode_input, parse_timestamp
from opensage.errors import AwsError, InternalFailure, NotImplementedOperation
from opensage.settings import Settings

log = logging.getLogger(__name__)

QueryHandler = Callable[[Settings, dict[str, Any]], dict[str, Any]]
MAX_FORM_BODY = 1024 * 1024
ROLE_NAME = "opensage"
SESSION_NAME = "opensage"
# Roles are implicit, so they have no real creation date: a fixed one keeps answers stable.
ROLE_CREATE_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
TRUST_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}
_SCALARS = {"string", "integer", "long", "boolean", "float", "double", "timestamp"}


class QueryApi:
    """One query-protocol service: parse the form, validate, call a handler, answer XML."""

    def __init__(self, model: ServiceModel, settings: Settings,
                 handlers: dict[str, QueryHandler]) -> None:
        self.model, self.settings, self.handlers = model, settings, handlers
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
            return self.dispatch(form, request_id)
        except AwsError as err:
            return self.errors(err, request_id).response()
        except Exception as exc:  # a bug, not the caller's fault: log it, answer 500
            log.exception("%s request failed", self.model.service_name)
            return self.errors(InternalFailure(type(exc).__name__), request_id).response()

    def dispatch(self, form: dict[str, str], request_id: str) -> Response:
        action = form.get("Action")
        if not action:
            raise AwsError("Missing Action", code="MissingAction")
        if action not in self.model.operation_names:
            raise AwsError(f"Could not find operation {action} for version "
                           f"{self.model.api_version}", code="InvalidAction")
        operation = self.model.operation_model(action)
        params = decode_input(operation.input_shape, _top_level(operation.input_shape, form))
        handler = self.handlers.get(action)
        if handler is None:
            raise NotImplementedOperation(f"opensage does not implement {action} yet")
        try:
            result = handler(self.settings, params)
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


def _top_level(shape: Shape | None, form: dict[str, str]) -> dict[str, Any]:
    """The scalar members of the input (nested ``Tags.member.N`` forms are not needed yet)."""
    if shape is None:
        return {}
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        raw = form.get(name)
        if raw is None or member.type_name not in _SCALARS:
            continue
        out[name] = _scalar(member.type_name, raw)
    return out


def _scalar(kind: str, raw: str) -> Any:
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
    except ValueError:
        return raw  # decode_input reports the wrong type
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


def _unique_id(prefix: str, seed: str) -> str:
    """A stable AWS-looking id (``AROA...``) derived from a name."""
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[:17].upper()


def _credentials(seconds: int) -> dict[str, Any]:
    # opensage does not verify signatures, so any well-formed credentials work.
    return {
        "AccessKeyId": "ASIA" + secrets.token_hex(8).upper(),
        "SecretAccessKey": secrets.token_urlsafe(30)[:40],
        "SessionToken": secrets.token_urlsafe(96),
        "Expiration": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds),
    }


# --- STS -----------------------------------------------------------------------------------

def get_caller_identity(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    account = settings.account_id
    return {"Account": account,
            "UserId": f"{_unique_id('AROA', account + ROLE_NAME)}:{SESSION_NAME}",
            "Arn": f"arn:aws:sts::{account}:assumed-role/{ROLE_NAME}/{SESSION_NAME}"}


def assume_role(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    account = settings.account_id
    role_arn, session = params["RoleArn"], params["RoleSessionName"]
    role_name = role_arn.rsplit("/", 1)[-1]
    return {
        "Credentials": _credentials(params.get("DurationSeconds", 3600)),
        "AssumedRoleUser": {
            "AssumedRoleId": f"{_unique_id('AROA', role_arn)}:{session}",
            "Arn": f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}",
        },
        "PackedPolicySize": 0,
    }


def get_session_token(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    return {"Credentials": _credentials(params.get("DurationSeconds", 43200))}


def get_access_key_info(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    return {"Account": settings.account_id}


STS_HANDLERS: dict[str, QueryHandler] = {
    "GetCallerIdentity": get_caller_identity,
    "AssumeRole": assume_role,
    "GetSessionToken": get_session_token,
    "GetAccessKeyInfo": get_access_key_info,
}


# --- IAM -----------------------------------------------------------------------------------

def get_role(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    account, name = settings.account_id, params["RoleName"]
    return {"Role": {
        "Path": "/",
        "RoleName": name,
        "RoleId": _unique_id("AROA", account + name),
        "Arn": f"arn:aws:iam::{account}:role/{name}",
        "CreateDate": ROLE_CREATE_DATE,
        "AssumeRolePolicyDocument": quote(json.dumps(TRUST_POLICY)),  # AWS URL-encodes it
        "MaxSessionDuration": 3600,
    }}


class StsApi(QueryApi):
    def __init__(self, model: ServiceModel, settings: Settings) -> None:
        super().__init__(model, settings, STS_HANDLERS)


class IamApi(QueryApi):
    """Only ``GetRole``: what ``sagemaker.get_execution_role()`` asks IAM."""

    def __init__(self, model: ServiceModel, settings: Settings) -> None:
        super().__init__(model, settings, {"GetRole": get_role})
