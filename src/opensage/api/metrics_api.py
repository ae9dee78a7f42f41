"""sagemaker-metrics (REST-JSON, signed as ``sagemaker``): ``PUT /BatchPutMetrics`` (what the
SDK's ``sagemaker.experiments.Run`` sends ``log_metric`` through) and ``POST
/BatchGetMetrics``. The operation is the path; the body is JSON, checked against the
model's input shape like every other front (``api.shapes``); the work is
``services.experiments``'s, run off the event loop."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from botocore.model import ServiceModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from opensage.api.error_encoding import ServiceErrors
from opensage.api.rpc import load_json
from opensage.api.shapes import decode_input, encode_output
from opensage.errors import (
    AwsError,
    InternalFailure,
    RequestEntityTooLarge,
    UnknownOperationException,
)
from opensage.services.wiring import Services

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024


class MetricsApi:
    def __init__(self, model: ServiceModel, services: Services) -> None:
        self.model = model
        self.services = services
        self.errors = ServiceErrors(model)
        self._routes = {}
        for name in model.operation_names:
            operation = model.operation_model(name)
            self._routes[(operation.http["method"], operation.http["requestUri"])] = operation

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            # The body first, even for a route that does not exist: answering before it is
            # read leaves the client writing into a closed connection, its answer lost.
            body = await request.body()
            operation = self._routes.get((request.method, request.url.path))
            if operation is None:
                raise UnknownOperationException(
                    f"No sagemaker-metrics operation at {request.method} {request.url.path}")
            answer = await run_in_threadpool(self._answer, operation.name, body)
            return Response(answer, 200, {"x-amzn-RequestId": request_id},
                            media_type="application/json")
        except AwsError as err:
            return self.errors(err, request_id).response()
        except Exception as exc:  # a bug, not the caller's fault: log it, answer 500
            log.exception("sagemaker-metrics request failed")
            return self.errors(InternalFailure(f"{type(exc).__name__}: {exc}"),
                               request_id).response()

    def _answer(self, name: str, body: bytes) -> bytes:
        if len(body) > MAX_BODY:
            raise RequestEntityTooLarge(f"Request body of {len(body)} bytes exceeds the "
                                        f"{MAX_BODY} byte limit")
        document = load_json(body)
        operation = self.model.operation_model(name)
        params = decode_input(operation.input_shape, document)
        experiments = self.services.experiments
        result: dict[str, Any]
        if name == "BatchPutMetrics":
            result = experiments.put_metrics(params["TrialComponentName"], params["MetricData"])
        else:
            result = experiments.get_metrics(params["MetricQueries"])
        encoded = encode_output(operation.output_shape, result, lambda t: t.timestamp()) or {}
        return json.dumps(encoded, separators=(",", ":")).encode()
