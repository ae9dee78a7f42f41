"""AWS errors on the wire: one serialiser per protocol family, in one place.

Each turns an ``AwsError`` into the status, headers and body its family's clients parse
(botocore's ``parsers.py``, read backwards). ``ERROR_ENCODERS`` is keyed by the protocol
string of the service model (``metadata.protocol``), as botocore's ``PROTOCOL_PARSERS`` is:

- ``json`` (awsJson 1.0/1.1: SageMaker, Logs, Application Auto Scaling, CloudWatch's older
  clients) and ``smithy-rpc-v2-cbor`` (CloudWatch): ``__type`` and ``message`` in the body,
  the code in ``X-Amzn-ErrorType``; a query-compatible service also says ``x-amzn-query-error``.
- ``rest-json`` (sagemaker-runtime): ``message`` (and ``Message`` for ``ModelError``) in a
  JSON body, the code in ``X-Amzn-ErrorType``.
- ``rest-xml`` (S3): an ``<Error>`` document with the error's fields and the resource.
- ``query`` (STS, IAM): an ``<ErrorResponse>`` document.

The model-driven fronts (RPC, query) pick theirs through ``ServiceErrors``; the hand-written
REST fronts (S3, the runtime) serve one protocol and call its function directly.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import cbor2
from botocore.model import ServiceModel
from starlette.responses import Response

from opensage.api.s3_xml import el
from opensage.errors import AwsError, InvalidRange, ValidationException

_NO_METADATA: Mapping[str, Any] = {}


class ErrorAnswer(NamedTuple):
    """An error as it goes on the wire (headers include the content type)."""

    status: int
    headers: dict[str, str]
    body: bytes

    def without_body(self) -> ErrorAnswer:
        """The same answer to a HEAD request (or a 304): status and headers, nothing else."""
        headers = {k: v for k, v in self.headers.items() if k != "content-type"}
        return ErrorAnswer(self.status, headers, b"")

    def response(self) -> Response:
        return Response(self.body, self.status, self.headers)


# Every family's serialiser: (error, request id, the service model's metadata, the resource
# the request named) -> answer. Only REST-XML has a place for the resource.
ErrorEncoder = Callable[[AwsError, str, Mapping[str, Any], str], ErrorAnswer]


def json_error(err: AwsError, request_id: str, metadata: Mapping[str, Any] = _NO_METADATA,
               resource: str = "") -> ErrorAnswer:
    """awsJson (1.1 unless the model says otherwise): also the answer of requests no service
    claims, and of the server's own routes."""
    body = json.dumps(_rpc_body(err), separators=(",", ":")).encode()
    content_type = f"application/x-amz-json-{metadata.get('jsonVersion', '1.1')}"
    return ErrorAnswer(err.status, _rpc_headers(err, request_id, metadata, content_type), body)


def cbor_error(err: AwsError, request_id: str, metadata: Mapping[str, Any] = _NO_METADATA,
               resource: str = "") -> ErrorAnswer:
    """Smithy RPC v2 CBOR."""
    body = cbor2.dumps(_rpc_body(err), datetime_as_timestamp=True, timezone=dt.UTC)
    headers = _rpc_headers(err, request_id, metadata, "application/cbor")
    headers["smithy-protocol"] = "rpc-v2-cbor"
    return ErrorAnswer(err.status, headers, body)


def rest_json_error(err: AwsError, request_id: str, metadata: Mapping[str, Any] = _NO_METADATA,
                    resource: str = "") -> ErrorAnswer:
    body: dict[str, Any] = {"message": err.message, **err.fields}
    if err.code == "ModelError":  # InvokeEndpoint's ModelError has its message capitalised
        body["Message"] = err.message
    headers = {"content-type": "application/json", "x-amzn-requestid": request_id,
               "x-amzn-errortype": err.code}
    return ErrorAnswer(err.status, headers, json.dumps(body).encode())


def rest_xml_error(err: AwsError, request_id: str, metadata: Mapping[str, Any] = _NO_METADATA,
                   resource: str = "") -> ErrorAnswer:
    """S3's ``<Error>`` (a HEAD request's answer drops it: ``ErrorAnswer.without_body``)."""
    fields = "".join(el(k, v) for k, v in err.fields.items())
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{el("Code", err.code)}'
            f'{el("Message", err.message)}{fields}{el("Resource", resource)}'
            f'{el("RequestId", request_id)}{el("HostId", request_id)}</Error>'
            ).encode()
    headers = {"content-type": "application/xml"}
    if isinstance(err, InvalidRange) and "ActualObjectSize" in err.fields:
        headers["content-range"] = f"bytes */{err.fields['ActualObjectSize']}"
    return ErrorAnswer(err.status, headers, body)


def query_error(err: AwsError, request_id: str, metadata: Mapping[str, Any] = _NO_METADATA,
                resource: str = "") -> ErrorAnswer:
    # Query services call a failed input check ValidationError, not ValidationException.
    code = "ValidationError" if isinstance(err, ValidationException) else err.code
    root = ET.Element("ErrorResponse", xmlns=metadata.get("xmlNamespace", ""))
    error = ET.SubElement(root, "Error")
    ET.SubElement(error, "Type").text = _fault(err)
    ET.SubElement(error, "Code").text = code
    ET.SubElement(error, "Message").text = err.message
    ET.SubElement(root, "RequestId").text = request_id
    headers = {"x-amzn-RequestId": request_id, "content-type": "text/xml; charset=utf-8"}
    return ErrorAnswer(err.status, headers, ET.tostring(root, encoding="unicode").encode())


ERROR_ENCODERS: dict[str, ErrorEncoder] = {
    "json": json_error,
    "smithy-rpc-v2-cbor": cbor_error,
    "rest-json": rest_json_error,
    "rest-xml": rest_xml_error,
    "query": query_error,
}


class ServiceErrors:
    """The error serialiser of one service: its model's protocol family, or ``protocol``
    where a front serves the model in another of the protocols it lists (CloudWatch: CBOR
    and awsJson)."""

    def __init__(self, model: ServiceModel, protocol: str | None = None) -> None:
        self.metadata: Mapping[str, Any] = model.metadata
        self.encode = ERROR_ENCODERS[protocol or self.metadata["protocol"]]

    def __call__(self, err: AwsError, request_id: str, resource: str = "") -> ErrorAnswer:
        return self.encode(err, request_id, self.metadata, resource)


def plain_error_response(err: AwsError) -> Response:
    """awsJson 1.1, for answers outside any service (an unserved service, the server's own
    routes, the last-resort guard)."""
    return json_error(err, str(uuid.uuid4())).response()


def _rpc_body(err: AwsError) -> dict[str, Any]:
    return {"__type": err.code, "message": err.message, **err.fields}


def _rpc_headers(err: AwsError, request_id: str, metadata: Mapping[str, Any],
                 content_type: str) -> dict[str, str]:
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": err.code,
               "content-type": content_type}
    if "awsQueryCompatible" in metadata:  # clients of the service's older query protocol
        headers["x-amzn-query-error"] = f"{err.code};{_fault(err)}"
    return headers


def _fault(err: AwsError) -> str:
    """Who is to blame, as the query protocol says it."""
    return "Receiver" if err.status >= 500 else "Sender"

