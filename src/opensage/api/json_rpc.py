"""The JSON 1.1 protocol (``X-Amz-Target: Prefix.Operation``): SageMaker, Logs, ...

Request -> decode_input (validation) -> handler(backend, params) -> encode_output -> response.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from botocore.model import ServiceModel
from starlette.requests import Request
from starlette.responses import Response

from opensage.api.registry import Handler
from opensage.api.shapes import decode_input, encode_output
from opensage.errors import (
    AwsError, InternalFailure, NotImplementedOperation, RequestEntityTooLarge,
    SerializationException, UnknownOperationException,
)

log = logging.getLogger(__name__)
MAX_JSON_BODY = 8 * 1024 * 1024


class JsonRpcService:
    def __init__(self, model: ServiceModel, handlers: dict[str, Handler], backend: Any) -> None:
        self.model = model
        self.handlers = handlers
        self.backend = backend
        self.prefix = model.metadata["targetPrefix"] + "."
        self.content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.1')}"
        self._operations = {name: model.operation_model(name) for name in model.operation_names}

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = await request.body()
            result = self.dispatch(request.headers.get("x-amz-target", ""), body)
            return Response(json.dumps(result, separators=(",", ":")), 200,
                            {"x-amzn-RequestId": request_id}, media_type=self.content_type)
        except AwsError as err:
            return self.error_response(err, request_id)

    def dispatch(self, target: str, body: bytes) -> dict[str, Any]:
        if not target.startswith(self.prefix):
            raise UnknownOperationException(f"Unknown target {target!r} for {self.model.service_name}")
        name = target[len(self.prefix):]
        operation = self._operations.get(name)
        if operation is None:
            raise UnknownOperationException(f"Operation {name} is not an operation of "
                                            f"{self.model.service_name}")
        if len(body) > MAX_JSON_BODY:
            raise RequestEntityTooLarge(f"Request body of {len(body)} bytes exceeds the "
                                        f"{MAX_JSON_BODY} byte limit")
        try:
            document = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise SerializationException(f"Request body is not valid JSON: {exc}") from None
        params = decode_input(operation.input_shape, document)
        handler = self.handlers.get(name)
        if handler is None:
            raise NotImplementedOperation(f"opensage does not implement {name} yet")
        try:
            result = handler(self.backend, params)
        except AwsError:
            raise
        except Exception as exc:  # a bug, not the caller's fault: log it, answer 500
            log.exception("%s failed", name)
            raise InternalFailure(f"{name} failed: {type(exc).__name__}: {exc}") from exc
        return encode_output(operation.output_shape, result or {}) or {}

    def error_response(self, err: AwsError, request_id: str) -> Response:
        body = {"__type": err.code, "message": err.message, **err.fields}
        return Response(json.dumps(body), err.status,
                        {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": err.code},
                        media_type=self.content_type)
