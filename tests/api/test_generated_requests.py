"""Generated requests against every operation of every served protocol: never a 5xx (but 501
for an operation opensage does not implement), and the kept-alive connection keeps working.

Requests are drawn by Hypothesis from botocore's input shapes: values of the right type,
values matching the member's pattern, boundary numbers, control characters, and (for the
JSON and CBOR protocols, which are sent as built here) members of the wrong type. The
other protocols are serialised by botocore itself, as a client would send them. Runs are
deterministic (``derandomize``) and bounded: a few examples per operation.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import botocore.session
import cbor2
import pytest
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from tests.hostile_requests import json_ready

SESSION = botocore.session.get_session()
EXAMPLES_PER_OPERATION = 3
MAX_DEPTH = 5  # below this, optional members are left out
AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{}/aws4_request, "
        "SignedHeaders=host, Signature=00")
# No shrinking: the first failing request is reported as drawn, and the run stays bounded.
SETTINGS = settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None,
                    deadline=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck))
SERVICES = ["sagemaker", "sagemaker-runtime", "s3", "sts", "iam", "logs", "cloudwatch",
            "application-autoscaling"]

TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", " ", "a\nb", "a\r\nb: c", "\x00", "é" * 3, "../x", "%00", "x" * 300])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
ANY_JSON = SCALARS | st.lists(SCALARS, max_size=2) | st.dictionaries(TEXT, SCALARS, max_size=2)
NUMBERS = st.sampled_from([0, -1, 1, 2**31, -(2**63), 2**64, 1e20, -1e20, 1e308])


def _string(shape: Shape) -> st.SearchStrategy[str]:
    options = [TEXT]
    if shape.enum:  # type: ignore[attr-defined]
        options.append(st.sampled_from(shape.enum))  # type: ignore[attr-defined]
    pattern = shape.metadata.get("pattern")
    if pattern:
        try:
            options.append(st.from_regex(re.compile(pattern), fullmatch=True))
        except (re.error, ValueError, TypeError):
            pass  # a Java-only construct: plain text it is
    return st.one_of(options)


_STRATEGIES: dict[tuple[str, int, bool], st.SearchStrategy[Any]] = {}


def _value(shape: Shape, depth: int, wrong_types: bool) -> st.SearchStrategy[Any]:
    """A value for ``shape`` (built once per shape and depth: Hypothesis's per-strategy
    set-up, not the drawing, is most of the cost)."""
    key = (f"{shape.name}", min(depth, MAX_DEPTH), wrong_types)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _fresh_value(shape, depth, wrong_types)
    return _STRATEGIES[key]


def _fresh_value(shape: Shape, depth: int, wrong_types: bool) -> st.SearchStrategy[Any]:
    """With ``wrong_types``, sometimes any JSON value instead of one of the shape's type."""
    right = _right_value(shape, depth, wrong_types)
    if wrong_types and depth > 0:
        return st.one_of(right, right, right, ANY_JSON)
    return right


def _right_value(shape: Shape, depth: int, wrong_types: bool) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        required = set(shape.required_members)  # type: ignore[attr-defined]
        if depth >= MAX_DEPTH:
            members = {n: m for n, m in members.items() if n in required}
        return st.fixed_dictionaries(
            {n: _value(m, depth + 1, wrong_types) for n, m in members.items() if n in required},
            optional={n: _value(m, depth + 1, wrong_types)
                      for n, m in members.items() if n not in required})
    if kind in ("list", "map") and depth >= MAX_DEPTH:
        return st.just([] if kind == "list" else {})
    if kind == "list":
        return st.lists(_value(shape.member, depth + 1, wrong_types),  # type: ignore[attr-defined]
                        max_size=2)
    if kind == "map":
        return st.dictionaries(_string(shape.key),  # type: ignore[attr-defined]
                               _value(shape.value, depth + 1, wrong_types),  # type: ignore[attr-defined]
                               max_size=2)
    if kind == "string":
        return _string(shape)
    if kind in ("integer", "long"):
        return st.integers(min_value=-(2**63), max_value=2**63) | NUMBERS
    if kind in ("float", "double"):
        return st.floats(allow_nan=wrong_types, allow_infinity=wrong_types) | NUMBERS
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.datetimes(timezones=st.just(dt.UTC)) | (NUMBERS if wrong_types else st.nothing())
    if kind == "blob":
        return st.binary(max_size=16)
    return ANY_JSON


# -- turning params into HTTP requests ----------------------------------------------------
Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


def _json_request(model: ServiceModel, operation: OperationModel, params: Any) -> Request:
    version = model.metadata.get("jsonVersion", "1.1")
    body = json.dumps(json_ready(params)).encode()
    return "POST", "/", body, {
        "X-Amz-Target": f"{model.metadata['targetPrefix']}.{operation.name}",
        "Content-Type": f"application/x-amz-json-{version}",
        "Authorization": AUTH.format(model.metadata.get("signingName")
                                     or model.metadata["endpointPrefix"])}


def _cbor_request(model: ServiceModel, operation: OperationModel, params: Any) -> Request:
    return ("POST", f"/service/{model.metadata['targetPrefix']}/operation/{operation.name}",
            cbor2.dumps(params, datetime_as_timestamp=True),
            {"Content-Type": "application/cbor", "Accept": "application/cbor",
             "smithy-protocol": "rpc-v2-cbor", "Authorization": AUTH.format("monitoring")})


def _botocore_request(model: ServiceModel, operation: OperationModel, params: Any
                      ) -> Request | None:
    """As botocore sends it; None where botocore itself would not (it refuses the value)."""
    serializer = create_serializer(model.metadata["protocol"], include_validation=False)
    try:
        request = serializer.serialize_to_request(params, operation)
    except Exception:  # noqa: BLE001 - botocore's own refusal, not the server's
        return None
    path = request["url_path"] or "/"
    query = request["query_string"]
    if query:
        path += "?" + (query if isinstance(query, str) else urlencode(query, doseq=True))
    body = request["body"]
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, dict):  # the query protocol's form
        body = urlencode(body)
    body = body.encode() if isinstance(body, str) else (body or b"")
    headers = {k: str(v) for k, v in request["headers"].items()}
    if model.metadata["protocol"] == "query":
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    headers["Authorization"] = AUTH.format(model.metadata.get("signingName")
                                           or model.metadata["endpointPrefix"])
    return request["method"], path, body, headers


def build_request(service: str, model: ServiceModel, operation: OperationModel, params: Any
                  ) -> Request | None:
    if service == "cloudwatch":
        return _cbor_request(model, operation, params)
    if model.metadata["protocol"] == "json":
        return _json_request(model, operation, params)
    return _botocore_request(model, operation, params)


# -- the test ----------------------------------------------------------------------------
@pytest.fixture
def connection(endpoint: str) -> Iterator[Connection]:
    url = urlsplit(endpoint)
    assert url.hostname is not None and url.port is not None
    connection = Connection(url.hostname, url.port)
    yield connection
    connection.conn.close()


UNPARSABLE = (400, b"Invalid HTTP request received.")  # uvicorn's answer to a broken request


class Connection:
    """One kept-alive connection, and what was last sent on it (to blame a dropped one)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.last = "nothing"

    def reopen(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def send(self, request: Request, label: str, *, retried: bool = False
             ) -> tuple[int, bytes] | None:
        method, path, body, headers = request
        try:
            self.conn.request(method, path, headers=headers,
                              body=body if body or method in ("POST", "PUT") else None)
        except (ValueError, UnicodeEncodeError, http.client.InvalidURL):
            self.reopen()  # (close() would keep the half-written request buffered)
            return None  # http.client will not send it (a header with CR/LF): no client can
        try:
            response = self.conn.getresponse()
            answer = response.status, response.read()
        except (ConnectionError, http.client.RemoteDisconnected) as exc:
            self.reopen()
            raise AssertionError(f"the server dropped the connection after {self.last} "
                                 f"without Connection: close ({exc!r})") from None
        except BaseException:
            self.reopen()  # so that Hypothesis's replay of this example sees the same failure
            raise
        if answer == UNPARSABLE and not retried:  # not HTTP, or the last one left bytes behind
            previous = self.last
            self.reopen()
            again = self.send(request, label, retried=True)
            assert again == UNPARSABLE, f"the connection was out of step after {previous}"
        self.last = f"{label}: {method} {path[:200]} {headers} {body[:100]!r}"
        return answer


def check_operation(service: str, model: ServiceModel, name: str,
                    conn: Connection) -> Callable[[], None]:
    operation = model.operation_model(name)
    wrong_types = model.metadata["protocol"] == "json" or service == "cloudwatch"
    shape = operation.input_shape
    params = _value(shape, 0, wrong_types) if shape is not None else st.just({})

    @SETTINGS
    @given(params=params)
    def check(params: Any) -> None:
        request = build_request(service, model, operation, params)
        if request is None:
            return
        method, path, body, _ = request
        note(f"{service} {name}: {method} {path[:300]} {body[:300]!r}")
        answer = conn.send(request, f"{service} {name}")
        if answer is None:
            return
        status, body = answer
        assert status < 500 or status == 501, (service, name, status, body[:500])

    return check


@pytest.mark.timeout(600)
@pytest.mark.parametrize("service", SERVICES)
def test_generated_requests_never_fail_the_server(service, connection):
    model = SESSION.get_service_model(service)
    for name in model.operation_names:
        check_operation(service, model, name, connection)()
    health = connection.send(("GET", "/_opensage/health", b"", {}), "health")
    assert health is not None and health[0] == 200  # and the connection still answers
