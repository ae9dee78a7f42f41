"""The RPC protocols: JSON 1.0/1.1 (``X-Amz-Target: Prefix.Operation``: SageMaker, Logs)
and Smithy RPC v2 CBOR (``POST /service/<Service>/operation/<Operation>``: CloudWatch).

Request -> decode_input (validation) -> handler(services, params) -> encode_output -> response.
The two differ only in how the operation is named and how bodies are encoded: a codec (errors:
``error_encoding``, by the codec's protocol).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import math
import uuid
from typing import Any, ClassVar

import cbor2
from botocore.model import ServiceModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from opensage.api.auth import PRINCIPAL
from opensage.api.authz import action_prefix, check_rpc
from opensage.api.error_encoding import ServiceErrors
from opensage.api.registry import Handler
from opensage.api.shapes import decode_input, encode_output
from opensage.errors import (
    AwsError,
    InternalFailure,
    NotImplementedOperation,
    RequestEntityTooLarge,
    SerializationException,
    UnknownOperationException,
)
from opensage.services.iam import Principal
from opensage.services.wiring import Services

log = logging.getLogger(__name__)
MAX_JSON_BODY = 8 * 1024 * 1024


class JsonCodec:
    """awsJson: the operation in ``X-Amz-Target``, JSON bodies, epoch-second timestamps."""

    protocol = "json"

    def __init__(self, model: ServiceModel) -> None:
        metadata = model.metadata
        self.prefix = metadata["targetPrefix"] + "."
        self.content_type = f"application/x-amz-json-{metadata.get('jsonVersion', '1.1')}"
        self.headers: dict[str, str] = {}

    def operation(self, request: Request) -> str:
        target = request.headers.get("x-amz-target", "")
        if not target.startswith(self.prefix):
            raise UnknownOperationException(f"Unknown target {target!r}")
        return target[len(self.prefix):]

    def loads(self, body: bytes) -> Any:
        return load_json(body)

    def dumps(self, document: Any) -> bytes:
        return json.dumps(document, separators=(",", ":")).encode()

    @staticmethod
    def timestamp(value: dt.datetime) -> Any:
        return round(value.timestamp(), 3)


class CborCodec:
    """Smithy RPC v2 CBOR: the operation in the path, CBOR bodies, tag-1 timestamps."""

    protocol = "smithy-rpc-v2-cbor"
    content_type = "application/cbor"
    headers: ClassVar[dict[str, str]] = {"smithy-protocol": "rpc-v2-cbor"}

    def __init__(self, model: ServiceModel) -> None:
        self.path_prefix = f"/service/{model.metadata['targetPrefix']}/operation/"

    def operation(self, request: Request) -> str:
        path = request.url.path
        if not path.startswith(self.path_prefix):
            raise UnknownOperationException(f"Unknown operation path {path!r}")
        return path[len(self.path_prefix):]

    def loads(self, body: bytes) -> Any:
        if not body:
            return {}
        stream = io.BytesIO(body)
        try:
            document = cbor2.CBORDecoder(stream).decode()
            if stream.tell() != len(body):  # cbor2.loads would ignore what follows
                raise ValueError(f"{len(body) - stream.tell()} bytes after the data item")
        except (cbor2.CBORDecodeError, ValueError) as exc:
            raise SerializationException(f"Request body is not valid CBOR: {exc}") from None
        except RecursionError:
            raise SerializationException("Request body is not valid CBOR: nested too "
                                         "deeply") from None
        return _object(document, "CBOR")

    def dumps(self, document: Any) -> bytes:
        return cbor2.dumps(document, datetime_as_timestamp=True, timezone=dt.UTC)

    @staticmethod
    def timestamp(value: dt.datetime) -> Any:
        return value


def load_json(body: bytes) -> dict[str, Any]:
    """A JSON request body: an object (an empty body is ``{}``), in strict UTF-8 (Python's
    reader of bytes lets UTF-8-encoded surrogates through), without NaN or Infinity."""
    if not body.strip():
        return {}
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant,
                              parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationException(f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise SerializationException("Request body is not valid JSON: nested too "
                                     "deeply") from None
    return _object(document, "JSON")


def _object(document: Any, what: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        kind = "null" if document is None else type(document).__name__
        raise SerializationException(f"Request body must be a {what} object, not {kind}")
    return document


def _finite(text: str) -> float:
    """A JSON number Python would read as an infinity (``1e999``) is out of range."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]} is out of range")
    return number


def _refuse_constant(name: str) -> Any:
    """JSON has no NaN or Infinity (Python's reader accepts them unless told not to)."""
    raise ValueError(f"{name} is not a JSON value")


class RpcService:
    """One RPC service. Decoding, the handler (SQL, files) and encoding run in the thread
    pool: the event loop only moves bytes, so S3 streams and InvokeEndpoint never wait on
    the store."""

    def __init__(self, model: ServiceModel, handlers: dict[str, Handler], services: Services,
                 codec: JsonCodec | CborCodec | None = None) -> None:
        self.model = model
        self.handlers = handlers
        self.services = services
        self.codec = codec or JsonCodec(model)
        self.errors = ServiceErrors(model, self.codec.protocol)
        self._operations = {name: model.operation_model(name) for name in model.operation_names}
        self.action_prefix = action_prefix(model.metadata.get("signingName")
                                           or model.metadata["endpointPrefix"])

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            name = self.codec.operation(request)
            body = await request.body()
            caller: Principal | None = request.scope.get(PRINCIPAL)
            source_ip = request.client.host if request.client else ""
            answer = await run_in_threadpool(self.answer, name, body, caller, source_ip)
            return Response(answer, 200, {"x-amzn-RequestId": request_id, **self.codec.headers},
                            media_type=self.codec.content_type)
        except AwsError as err:
            return self.errors(err, request_id).response()
        except Exception as exc:  # a bug, not the caller's fault: log it, answer 500
            log.exception("%s request failed", self.model.service_name)
            return self.errors(InternalFailure(f"{type(exc).__name__}: {exc}"),
                               request_id).response()

    def answer(self, name: str, body: bytes, caller: Principal | None = None,
               source_ip: str = "") -> bytes:
        """The encoded answer to one call (blocking: run it off the event loop)."""
        return self.codec.dumps(self.dispatch(name, body, caller, source_ip))

    def _resource_tags(self, arn: str) -> dict[str, str]:
        items, _ = self.services.context.resources.list_tags(arn, 100, None)
        return {t["Key"]: t.get("Value", "") for t in items}

    def dispatch(self, name: str, body: bytes, caller: Principal | None = None,
                 source_ip: str = "") -> dict[str, Any]:
        operation = self._operations.get(name)
        if operation is None:
            raise UnknownOperationException(f"Operation {name} is not an operation of "
                                            f"{self.model.service_name}")
        if len(body) > MAX_JSON_BODY:
            raise RequestEntityTooLarge(f"Request body of {len(body)} bytes exceeds the "
                                        f"{MAX_JSON_BODY} byte limit")
        document = self.codec.loads(body)
        params = decode_input(operation.input_shape, document)
        check_rpc(self.services.iam, caller, self.action_prefix, name, params, source_ip,
                  self.services.context.settings.region, self._resource_tags)
        handler = self.handlers.get(name)
        if handler is None:
            raise NotImplementedOperation(f"opensage does not implement {name} yet")
        try:
            result = handler(self.services, params)
        except AwsError:
            raise
        except Exception as exc:  # a bug, not the caller's fault: log it, answer 500
            log.exception("%s failed", name)
            raise InternalFailure(f"{name} failed: {type(exc).__name__}: {exc}") from exc
        return encode_output(operation.output_shape, result or {}, self.codec.timestamp) or {}
