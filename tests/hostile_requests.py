"""Malformed requests generated from botocore's service models, and a campaign that sends them.

Shared by ``tests/api/test_hostile_requests.py`` (a bounded, derandomised sample) and
``benchmarks/fuzz_api.py`` (100,000 requests). Every case is built in two steps:

1. a request of the right shape for one operation of one served service: its required
   members (and some optional ones), values drawn from the member shapes;
2. one *breaker* that makes it certainly invalid, so that the server must refuse it and may
   change nothing: a required member missing, a member of the wrong type, a length, range or
   enum constraint violated, a body that is not JSON / CBOR / XML / a form (truncated,
   invalid UTF-8, nested 100,000 deep, not an object, NaN), an unknown operation or target, a
   bucket that does not exist or cannot, a key over 1,024 bytes, a wrong Content-MD5, an
   upload id never issued, an endpoint that does not exist, an oversize body;

plus noise that alone would be harmless: a wrong or missing Content-Type, a garbled or
missing signature, huge strings, control and non-BMP characters, unknown members.

A :class:`Campaign` sends each case raw (``http.client``) on one kept-alive connection and
classifies the answer: a 4xx carrying the error of the protocol that answered (JSON
``__type``, CBOR ``__type``, query/REST XML ``<Code>``) is a refusal; anything else, a 5xx
above all, is a finding, kept with the request that caused it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import io
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import botocore.session
import cbor2
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.serialize import create_serializer
from hypothesis import strategies as st

SESSION = botocore.session.get_session()
# Every service the server answers (api/app.py:build_protocols), with how it is spoken.
SERVICES = ("sagemaker", "sagemaker-runtime", "sagemaker-metrics", "s3", "sts", "iam", "logs",
            "cloudwatch", "application-autoscaling")
EXISTING_BUCKET = "hostile-keep"  # seeded by the campaign's caller; breakers never reach it
AUTH = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/{}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature={}")
MAX_DEPTH = 3  # below this, optional members are left out
DEEP = 100_000  # nesting of the deep-nesting bodies
# The only 5xx a campaign accepts: S3's 501 NotImplemented for a feature opensage lacks (a
# subresource, versionId, SSE-C), on a bucket that exists.


@dataclass(frozen=True)
class Request:
    service: str
    operation: str
    breaker: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str]

    def describe(self, limit: int = 400) -> str:
        return (f"{self.service} {self.operation} [{self.breaker}] {self.method} "
                f"{self.path[:limit]!r} headers={self.headers!r} body={self.body[:limit]!r}"
                f"{'...' if len(self.body) > limit else ''} ({len(self.body)} bytes)")


# -- values ------------------------------------------------------------------------------
ODD_TEXT = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\x1b[31m", "\r\n", "\u202e", "\ufeff", "\U0001f600",
    "e\u0301", "\u00e9", "../../etc/passwd", "%00", "%2e%2e%2f", "${jndi:x}", "'; DROP --",
    "\ud7ff", "\ud800", "a\udfffb", "x" * 300])
TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | ODD_TEXT
HUGE = st.sampled_from([1025, 4097, 70_000]).map(lambda n: "\u00e9" * n)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
ANY_JSON = SCALARS | st.lists(SCALARS, max_size=2) | st.dictionaries(TEXT, SCALARS, max_size=2)
NUMBERS = st.sampled_from([0, -1, 1, 2**31, -(2**63), 2**63 - 1, 1e20, -1e20])

_STRATEGIES: dict[tuple[str, int, bool], st.SearchStrategy[Any]] = {}


def _pattern_text(shape: Shape) -> st.SearchStrategy[str]:
    options = [TEXT]
    enum = getattr(shape, "enum", None)
    if enum:
        options = [st.sampled_from(enum)] * 3 + options
    pattern = shape.metadata.get("pattern")
    if pattern:
        try:
            options = [st.from_regex(re.compile(pattern), fullmatch=True)] * 2 + options
        except (re.error, ValueError, TypeError):
            pass  # a Java-only construct: plain text it is
    return st.one_of(options)


def value(shape: Shape, depth: int = 0, optional: bool = True) -> st.SearchStrategy[Any]:
    """A value of ``shape``'s type (constraints may or may not hold); built once per shape."""
    key = (shape.name, min(depth, MAX_DEPTH), optional)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _value(shape, depth, optional)
    return _STRATEGIES[key]


def _value(shape: Shape, depth: int, optional: bool) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        required = set(shape.required_members)  # type: ignore[attr-defined]
        return st.fixed_dictionaries(
            {n: value(m, depth + 1) for n, m in members.items() if n in required},
            optional={n: value(m, depth + 1) for n, m in members.items()
                      if n not in required and optional and depth < MAX_DEPTH})
    if kind in ("list", "map") and depth >= MAX_DEPTH:
        return st.just([] if kind == "list" else {})
    if kind == "list":
        return st.lists(value(shape.member, depth + 1), max_size=2)  # type: ignore[attr-defined]
    if kind == "map":
        return st.dictionaries(_pattern_text(shape.key),  # type: ignore[attr-defined]
                               value(shape.value, depth + 1),  # type: ignore[attr-defined]
                               max_size=2)
    if kind == "string":
        return _pattern_text(shape)
    if kind in ("integer", "long"):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        return st.integers(min_value=low, max_value=high) | NUMBERS
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False, width=32) | NUMBERS
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1),
                            timezones=st.just(dt.UTC))
    if kind == "blob":
        return st.binary(max_size=16)
    return ANY_JSON


def wrong_value(shape: Shape) -> st.SearchStrategy[Any]:
    """A JSON/CBOR value no decoder of ``shape``'s type accepts."""
    kind = shape.type_name
    container = st.sampled_from([[1], {"x": 1}, [[[]]], {"": None}])
    if kind == "string":
        return container | st.integers() | st.booleans() | st.floats(allow_nan=False)
    if kind in ("integer", "long"):
        return (container | TEXT | st.booleans() | st.sampled_from([0.5, -1.25])
                | st.sampled_from([2**64, -(2**64) - 1, 10**30]))
    if kind in ("float", "double"):
        return container | TEXT.filter(lambda s: not _is_number(s)) | st.booleans()
    if kind == "boolean":
        return container | st.sampled_from(["true", "false", "yes", 0, 1, 0.0])
    if kind == "structure":
        return st.sampled_from([[1], [], "a", 1, True, 1.5])
    if kind == "list":
        return st.sampled_from([{"a": 1}, "a", 1, True, {}])
    if kind == "map":
        return st.sampled_from([[1], [], "a", 1, True])
    if kind == "timestamp":
        return container | st.sampled_from(["yesterday", "2026-13-45", "", True, 1e300])
    if kind == "blob":
        return container | st.sampled_from([1, True, "!!not base64!!"])
    return st.nothing()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def violation(shape: Shape) -> st.SearchStrategy[Any] | None:
    """A value of the right type that breaks a length, range or enum constraint, if any."""
    kind, meta = shape.type_name, shape.metadata
    low, high = meta.get("min"), meta.get("max")
    options: list[st.SearchStrategy[Any]] = []
    if kind == "string":
        if high is not None and high < 300_000:
            options.append(st.integers(high + 1, high + 40).map(lambda n: "a" * n))
        if low:
            options.append(st.just("a" * (int(low) - 1)))
        enum = getattr(shape, "enum", None)
        if enum:
            options.append(TEXT.filter(lambda s: s not in enum))
    elif kind in ("integer", "long"):
        limit = 2**31 - 1 if kind == "integer" else 2**63 - 1
        if high is not None and high < limit:
            options.append(st.integers(int(high) + 1, limit))
        if low is not None and low > -limit:
            options.append(st.integers(-limit, int(low) - 1))
    elif kind in ("float", "double"):
        if high is not None:
            options.append(st.just(float(high) * 2 + 1))
        if low is not None:
            options.append(st.just(float(low) - 1 - abs(float(low))))
    elif kind in ("list", "map"):
        if high is not None and high < 2000:
            many = int(high) + 1
            options.append(st.just(["x"] * many if kind == "list"
                                   else {f"k{i}": "v" for i in range(many)}))
        if low:
            options.append(st.just([] if kind == "list" else {}))
    return st.one_of(options) if options else None


# -- breaking a parameter document -------------------------------------------------------
def broken_params(shape: Shape | None) -> st.SearchStrategy[tuple[str, Any]]:
    """(breaker name, params) where params fail ``shape``'s checks for certain."""
    if shape is None:
        return st.nothing()
    base = value(shape, optional=True)
    members = shape.members  # type: ignore[attr-defined]
    required = list(shape.required_members)  # type: ignore[attr-defined]
    options: list[st.SearchStrategy[tuple[str, Any]]] = []
    if required:
        def drop(params: dict[str, Any], name: str, null: bool) -> tuple[str, Any]:
            params = dict(params)
            if null:
                params[name] = None
            else:
                params.pop(name, None)
            return "missing-required", params
        options.append(st.builds(drop, base, st.sampled_from(required), st.booleans()))
    typed = [n for n, m in members.items() if m.type_name != "structure" or m.members]
    if typed:
        options.append(st.sampled_from(typed).flatmap(lambda name: st.builds(
            lambda params, bad: ("wrong-type", {**params, name: bad}),
            base, wrong_value(members[name]))))
    constrained = {n: v for n, m in members.items() if (v := violation(m)) is not None}
    if constrained:
        options.append(st.sampled_from(sorted(constrained)).flatmap(lambda name: st.builds(
            lambda params, bad: ("constraint", {**params, name: bad}),
            base, constrained[name])))
    return st.one_of(options) if options else st.nothing()


def json_ready(item: Any) -> Any:
    """Params as JSON can carry them: datetimes as epoch seconds, blobs as base64."""
    if isinstance(item, dt.datetime):
        return item.timestamp()
    if isinstance(item, bytes):
        return base64.b64encode(item).decode()
    if isinstance(item, dict):
        return {k: json_ready(v) for k, v in item.items()}
    if isinstance(item, list):
        return [json_ready(v) for v in item]
    return item


def _no_surrogates(item: Any) -> Any:
    """CBOR text is UTF-8 and cannot carry a lone surrogate (the bad-cbor bodies do)."""
    if isinstance(item, str):
        return item.encode("utf-8", "replace").decode()
    if isinstance(item, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in item.items()}
    if isinstance(item, list):
        return [_no_surrogates(v) for v in item]
    return item


def _deep(open_: bytes, close: bytes, depth: int = DEEP) -> bytes:
    return open_ * depth + close * depth


# Built once: a strategy per operation holds them by reference.
DEEP_JSON = (b'{"a":' + _deep(b"[", b"]") + b"}", _deep(b'{"a":', b"}")[:-1] + b"1}")
DEEP_CBOR = (b"\xa1\x61a" + b"\x81" * DEEP + b"\x00",
             b"\xbf\x61a" * 1000)  # indefinite maps, never closed
OVERSIZE = "oversize"  # the body is made when sent: 8 MiB and a byte


# Bodies that are not a document of the protocol at all.
def bad_json_bodies(valid: bytes) -> st.SearchStrategy[tuple[str, bytes]]:
    return st.one_of(
        st.sampled_from(DEEP_JSON).map(lambda b: ("deep-nesting", b)),
        st.integers(1, max(1, len(valid) - 1)).map(lambda n: ("truncated", valid[:n])),
        st.sampled_from([b"[]", b'"x"', b"1", b"null", b"true", b"[{}]"]).map(
            lambda b: ("not-an-object", b)),
        st.sampled_from([b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}',
                         b'{"a": 1e999}', b"{'a': 1}", b'{"a": 1,}', b"{,}", b"\x00",
                         b'{"a":1} trailing', b'{"a":1}{}']).map(
            lambda b: ("bad-json", b)),
        st.binary(min_size=1, max_size=64).filter(_not_json).map(lambda b: ("bytes", b)),
        st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]).map(
            lambda bad: ("invalid-utf8", valid.replace(b'"', b'"' + bad, 1)
                         if b'"' in valid else b'{"' + bad + b'":1}')))


def _not_json(data: bytes) -> bool:
    try:
        return not isinstance(json.loads(data), dict)
    except (ValueError, UnicodeDecodeError):
        return True


def bad_cbor_bodies(valid: bytes) -> st.SearchStrategy[tuple[str, bytes]]:
    return st.one_of(
        st.sampled_from(DEEP_CBOR).map(lambda b: ("deep-nesting", b)),
        st.integers(1, max(1, len(valid) - 1)).map(  # (an empty map is one byte: b"\xa1")
            lambda n: ("truncated", valid[:n] if n < len(valid) else b"\xa1")),
        st.sampled_from([cbor2.dumps(x) for x in ([], "x", 1, None, True, [{}], b"raw")]).map(
            lambda b: ("not-an-object", b)),
        st.sampled_from([
            b"\xa1\x61a\x7f",  # an indefinite text string without its break
            b"\xa1\x62\xff\xfe\x01",  # a text key of invalid UTF-8
            b"\xa1\x61a\x9b\x00\x00\x00\x01\x00\x00\x00\x00",  # an array claiming 2**32 items
            b"\xa1\x61a\x5b\x00\x00\x00\x01\x00\x00\x00\x00",  # a byte string of 4 GiB
            b"\xa1\x61a\xd8\x1d\x00",  # a shared reference to nothing
            b"\xa1\x61a\x63\xed\xa0\x80",  # a text of UTF-8-encoded surrogate
            b"\xa0\x00",  # one item, then another
            b"\xa1\xa0\x00",  # a map as a key
            b"\xff", b"\x1c",
        ]).map(lambda b: ("bad-cbor", b)),
        st.binary(min_size=1, max_size=64).filter(_not_cbor_map).map(lambda b: ("bytes", b)))


def _not_cbor_map(data: bytes) -> bool:
    stream = io.BytesIO(data)
    try:
        return not isinstance(cbor2.CBORDecoder(stream).decode(), dict) or (
            stream.tell() != len(data))
    except Exception:  # noqa: BLE001 - any refusal at all is what is wanted
        return True


# -- noise -------------------------------------------------------------------------------
def auth_header(signing: str) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.just(AUTH.format(signing, "0" * 64)),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
            lambda sig: AUTH.format(signing, sig)),
        st.sampled_from([None, "", "garbage", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=//",
                         f"AWS4-HMAC-SHA256 Credential=a/b/c/{signing}/aws4_request",
                         "AWS AKID:c2lnbmF0dXJl", "Bearer x" * 100]))


def noisy_headers(headers: dict[str, str], signing: str, *, keep_type: bool
                  ) -> st.SearchStrategy[dict[str, str]]:
    """``headers`` with the signature garbled or dropped and, unless ``keep_type``, the
    Content-Type replaced or dropped (the router needs neither to find a JSON/CBOR
    service)."""
    types = st.sampled_from([None, "", "text/plain", "application/xml", "application/json",
                             "application/cbor", "application/x-amz-json-1.0",
                             "multipart/form-data; boundary=x", "\u00e9/\u00e9"])

    def build(auth: str | None, content_type: str | None, change_type: bool,
              date: str | None) -> dict[str, str]:
        out = dict(headers)
        out.pop("Authorization", None)
        if auth is not None:
            out["Authorization"] = auth
        if change_type and not keep_type:
            out.pop("Content-Type", None)
            if content_type is not None:
                out["Content-Type"] = content_type
        if date is not None:
            out["X-Amz-Date"] = date
        return out

    return st.builds(build, auth_header(signing), types, st.booleans(),
                     st.sampled_from([None, "20260101T000000Z", "19700101T000000Z", "garbage"]))


def _latin1_safe(headers: dict[str, str]) -> dict[str, str]:
    """http.client sends headers as latin-1: non-latin-1 text goes as its UTF-8 bytes."""
    return {k: v.encode("utf-8", "surrogatepass").decode("latin-1") for k, v in headers.items()}


# -- the protocols -----------------------------------------------------------------------
def _signing(model: ServiceModel) -> str:
    return str(model.metadata.get("signingName") or model.metadata["endpointPrefix"])


def _rpc_case(service: str, model: ServiceModel, operation: OperationModel, *, cbor: bool
              ) -> st.SearchStrategy[Request]:
    prefix = model.metadata["targetPrefix"]
    signing = _signing(model)

    def encode(params: Any) -> bytes:
        if cbor:
            return cbor2.dumps(_no_surrogates(params), datetime_as_timestamp=True,
                               timezone=dt.UTC)
        return json.dumps(json_ready(params)).encode()  # a lone surrogate as "\\ud800"

    def locate(name: str) -> tuple[str, dict[str, str]]:
        if cbor:
            return (f"/service/{prefix}/operation/{name}",
                    {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                     "Accept": "application/cbor"})
        version = model.metadata.get("jsonVersion", "1.1")
        return "/", {"X-Amz-Target": f"{prefix}.{name}",
                     "Content-Type": f"application/x-amz-json-{version}"}

    by_params = broken_params(operation.input_shape).map(
        lambda case: (case[0], operation.name, encode(case[1])))
    valid = value(operation.input_shape, optional=False) if operation.input_shape else st.just({})
    by_body = valid.flatmap(lambda params: (bad_cbor_bodies if cbor else bad_json_bodies)(
        encode(params))).map(lambda case: (case[0], operation.name, case[1]))
    unknown = st.builds(lambda name, params: ("unknown-operation", name, encode(params)),
                        st.sampled_from([operation.name + "X", operation.name.lower(), "",
                                         "../" + operation.name, operation.name + "/x",
                                         "DescribeEverything", "\u00e9"]), valid)
    oversize = st.just((OVERSIZE, operation.name, b""))
    weighted = st.one_of([by_params] * 6 + [by_body] * 3 + [unknown] + [
        st.integers(0, 199).flatmap(lambda n: oversize if n == 0 else by_params)])

    def request(case: tuple[str, str, bytes], headers: dict[str, str]) -> Request:
        breaker, name, body = case
        if breaker == OVERSIZE:
            body = encode({"Pad": "x" * (8 * 1024 * 1024 + 1)})
        path, base = locate(name)
        if breaker == "unknown-operation" and not cbor and name.startswith("DescribeE"):
            base["X-Amz-Target"] = f"NoSuchService_2026.{name}"
        return Request(service, operation.name, breaker, "POST", quote(path, safe="/"), body,
                       {**base, **headers})

    headers = noisy_headers({}, signing, keep_type=False)
    return st.builds(request, weighted, headers)


def _rest_json_metrics_case(model: ServiceModel, operation: OperationModel
                            ) -> st.SearchStrategy[Request]:
    http_ = operation.http
    valid = value(operation.input_shape, optional=False)
    by_params = broken_params(operation.input_shape).map(
        lambda case: (case[0], http_["method"], http_["requestUri"],
                      json.dumps(json_ready(case[1])).encode()))
    by_body = valid.flatmap(lambda params: bad_json_bodies(
        json.dumps(json_ready(params)).encode())).map(
        lambda case: (case[0], http_["method"], http_["requestUri"], case[1]))
    wrong_route = valid.map(lambda params: (
        "unknown-operation", "DELETE" if http_["method"] != "DELETE" else "GET",
        http_["requestUri"], json.dumps(json_ready(params)).encode()))

    def request(case: tuple[str, str, str, bytes], headers: dict[str, str]) -> Request:
        breaker, method, path, body = case
        return Request("sagemaker-metrics", operation.name, breaker, method, path, body,
                       {"Content-Type": "application/json", **headers})

    return st.builds(request, st.one_of([by_params] * 4 + [by_body] * 2 + [wrong_route]),
                     noisy_headers({}, "sagemaker", keep_type=True))


def _serialized(model: ServiceModel, operation: OperationModel, params: Any
                ) -> tuple[str, str, bytes, dict[str, str]] | None:
    """The request as botocore would send it; None where botocore itself refuses the value."""
    serializer = create_serializer(model.metadata["protocol"], include_validation=False)
    try:
        request = serializer.serialize_to_request(params, operation)
    except Exception:  # noqa: BLE001 - botocore's own refusal, not the server's
        return None
    path = request["url_path"] or "/"
    query = request["query_string"]
    if query:
        path += ("&" if "?" in path else "?") + (
            query if isinstance(query, str)
            else urlencode(query, doseq=True, errors="surrogatepass"))
    body = request["body"]
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, dict):  # the query protocol's form
        body = urlencode(body, errors="surrogatepass")
    body = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else (body or b"")
    headers = {k: str(v) for k, v in request["headers"].items()}
    return request["method"], path, body, headers


def _query_case(service: str, model: ServiceModel, operation: OperationModel
                ) -> st.SearchStrategy[Request]:
    signing = _signing(model)
    form_type = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    version = model.metadata["apiVersion"]
    shape = operation.input_shape
    scalar = {n: m for n, m in (shape.members.items() if shape else {}.items())
              if m.type_name in ("string", "integer", "long", "boolean", "timestamp")}

    def form(params: dict[str, Any], action: str | None = operation.name) -> dict[str, str]:
        out = {"Version": version}
        if action is not None:
            out["Action"] = action
        for name, item in params.items():
            if name in scalar and item is not None:
                out[name] = (item.strftime("%Y-%m-%dT%H:%M:%SZ")
                             if isinstance(item, dt.datetime) else
                             str(item).lower() if isinstance(item, bool) else str(item))
        return out

    valid = value(shape, optional=True) if shape is not None else st.just({})
    options: list[st.SearchStrategy[tuple[str, dict[str, str] | bytes]]] = [
        valid.map(lambda p: ("missing-action", form(p, None))),
        st.builds(lambda p, a: ("unknown-operation", form(p, a)), valid,
                  st.sampled_from([operation.name + "X", "", operation.name.lower(),
                                   "\u00e9", "Assume Role"])),
    ]
    required = [n for n in (shape.required_members if shape else []) if n in scalar]
    if required:
        options.append(st.builds(lambda p, n: ("missing-required", {
            k: v for k, v in form(p).items() if k != n}), valid, st.sampled_from(required)))
    numeric = [n for n, m in scalar.items() if m.type_name in ("integer", "long")]
    if numeric:
        options.append(st.builds(lambda p, n, bad: ("wrong-type", {**form(p), n: bad}), valid,
                                 st.sampled_from(numeric),
                                 st.sampled_from(["abc", "1.5", "", "0x10", "1e3", "\u0661"])))
    limited = {n: v for n, m in scalar.items() if (v := violation(m)) is not None}
    if limited:
        options.append(st.sampled_from(sorted(limited)).flatmap(lambda n: st.builds(
            lambda p, bad: ("constraint", {**form(p), n: str(bad)}), valid, limited[n])))
    options.append(st.builds(lambda bad: ("bad-form", bad), st.sampled_from([
        b"Action=" + b"%" * 10, b"\xff\xfe=\xff", b"Action=%FF%FE", b"&&&=&=",
        b"Action=" + operation.name.encode() + b"\x00", b"=" * 1000])))

    def request(case: tuple[str, dict[str, str] | bytes], headers: dict[str, str]) -> Request:
        breaker, data = case
        body = data if isinstance(data, bytes) else urlencode(data, errors="surrogatepass").encode()
        return Request(service, operation.name, breaker, "POST", "/", body,
                       {**form_type, **headers})

    return st.builds(request, st.one_of(options), noisy_headers({}, signing, keep_type=True))


def _runtime_case(model: ServiceModel, operation: OperationModel) -> st.SearchStrategy[Request]:
    """Every endpoint name is one no endpoint has (the campaign creates none)."""
    names = st.sampled_from(["nope", "..", ".", "a%2Fb", "%00", "x" * 64, "\u00e9",
                             "a b", "-leading"]) | st.from_regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*",
                                                                   fullmatch=True)

    def build(params: dict[str, Any], name: str, headers: dict[str, str]) -> Request | None:
        params = {**params, "EndpointName": name}
        serialized = _serialized(model, operation, params)
        if serialized is None:
            return None
        method, path, body, base = serialized
        return Request("sagemaker-runtime", operation.name, "no-such-endpoint", method, path,
                       body, {**base, **headers})

    return st.builds(build, value(operation.input_shape, optional=True), names,
                     noisy_headers({}, "sagemaker", keep_type=True)).filter(
        lambda r: r is not None)  # type: ignore[arg-type,return-value]


# S3: what each operation's request may be broken with.
def _s3_case(model: ServiceModel, operation: OperationModel) -> st.SearchStrategy[Request]:
    shape = operation.input_shape
    members = shape.members if shape is not None else {}
    name = operation.name
    breakers = ["invalid-utf8-path", "bad-method"]
    if "Bucket" in members:
        breakers += ["no-such-bucket", "invalid-bucket"]
    if "Key" in members:
        breakers.append("key-too-long")
    if "UploadId" in members:
        breakers.append("no-such-upload")
    payload = operation.input_shape.serialization.get("payload") if shape else None
    if name in ("PutObject", "UploadPart", "DeleteObjects") or payload:
        breakers.append("bad-md5")
    if name in ("DeleteObjects", "CompleteMultipartUpload", "CreateBucket") or (
            payload and members[payload].type_name == "structure"):
        breakers.append("malformed-xml")

    valid = value(shape, optional=True) if shape is not None else st.just({})
    return st.builds(_s3_request(model, operation), valid, st.sampled_from(breakers),
                     st.sampled_from(["nosuch-bucket-1", "a..b", "UPPER", "x", "-a-",
                                      "192.168.0.1", ".tmp", "xn--a", "a" * 64]),
                     noisy_headers({}, "s3", keep_type=True)).filter(
        lambda r: r is not None)  # type: ignore[arg-type,return-value]


def _s3_request(model: ServiceModel, operation: OperationModel
                ) -> Callable[[dict[str, Any], str, str, dict[str, str]], Request | None]:
    def build(params: dict[str, Any], breaker: str, bad_bucket: str,
              noise: dict[str, str]) -> Request | None:
        params = dict(params)
        if "Bucket" in params or operation.name == "CreateBucket":
            params["Bucket"] = {"no-such-bucket": "nosuch-bucket-1",
                                "invalid-bucket": bad_bucket if bad_bucket != "nosuch-bucket-1"
                                else "a..b"}.get(breaker, EXISTING_BUCKET)
        if "Bucket" in params and operation.name == "CreateBucket" and breaker not in (
                "invalid-bucket", "bad-method", "invalid-utf8-path", "malformed-xml",
                "bad-md5"):
            params["Bucket"] = "a..b"  # never a valid new bucket
        if breaker == "key-too-long":
            params["Key"] = "k/" + "\u00e9" * 600  # 1,202 bytes of UTF-8
        if breaker == "no-such-upload":
            params["UploadId"] = "never-issued-" + str(len(str(params)))
        serialized = _serialized(model, operation, params)
        if serialized is None:
            return None
        method, path, body, headers = serialized
        if "Key" in params and not params.get("Key"):
            return None  # botocore sends no key: it is another operation
        headers = {**headers, **noise}
        if breaker == "bad-method":
            method = {"GET": "PATCH", "PUT": "OPTIONS", "POST": "TRACE", "HEAD": "PATCH",
                      "DELETE": "PATCH"}[method]
        elif breaker == "invalid-utf8-path":
            path = "/" + EXISTING_BUCKET + "/%FF%FEkey" + (path[path.index("?"):]
                                                          if "?" in path else "")
            if operation.name in ("CreateBucket", "ListBuckets", "DeleteBucket", "HeadBucket"):
                path = "/%C3%28bucket"
        elif breaker == "bad-md5":
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(body + b"!").digest()).decode()
        elif breaker == "malformed-xml":
            body = body[: max(1, len(body) // 2)] if body.startswith(b"<") else b"<Delete><Obj"
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
            if operation.name == "CreateBucket":
                body = b"<CreateBucketConfiguration><LocationConstraint>"
                headers.pop("Content-MD5")
        if breaker in ("no-such-bucket", "invalid-bucket") and operation.name == "CreateBucket":
            path = "/a..b" + (path[path.index("?"):] if "?" in path else "")
        return Request("s3", operation.name, breaker, method, quote(path, safe="/?&=%+~"),
                       body, headers)

    return build


def case_strategy(service: str, operation: str) -> st.SearchStrategy[Request]:
    model_name = {"sagemaker-metrics": "sagemaker-metrics"}.get(service, service)
    model = SESSION.get_service_model(model_name)
    op = model.operation_model(operation)
    protocol = model.metadata["protocol"]
    if service == "cloudwatch":
        return _rpc_case(service, model, op, cbor=True)
    if service == "sagemaker-runtime":
        return _runtime_case(model, op)
    if service == "sagemaker-metrics":
        return _rest_json_metrics_case(model, op)
    if service == "s3":
        return _s3_case(model, op)
    if protocol == "json":
        return _rpc_case(service, model, op, cbor=False)
    if protocol == "query":
        return _query_case(service, model, op)
    raise AssertionError(f"no generator for {service} ({protocol})")


def operations(services: tuple[str, ...] = SERVICES) -> list[tuple[str, str]]:
    return [(service, name) for service in services
            for name in SESSION.get_service_model(service).operation_names]


_CASES: dict[tuple[str, str], st.SearchStrategy[Request]] = {}
VARIANTS = 3  # requests derived from each drawn one (drawing is the cost: ~10-20 ms a case)


def any_case(services: tuple[str, ...] = SERVICES) -> st.SearchStrategy[list[Request]]:
    """One hostile request for any operation of any served service (services equally
    likely, then operations), and ``VARIANTS`` more derived from it, as broken."""
    def for_operation(key: tuple[str, str]) -> st.SearchStrategy[Request]:
        if key not in _CASES:
            _CASES[key] = case_strategy(*key)
        return _CASES[key]
    by_service = {s: [op for svc, op in operations((s,))] for s in services}
    drawn = st.sampled_from(services).flatmap(
        lambda s: st.sampled_from(by_service[s]).map(lambda op: (s, op))).flatmap(for_operation)
    return st.builds(variants, drawn, st.randoms(use_true_random=False))


def variants(request: Request, rng: random.Random) -> list[Request]:
    """``request`` and requests derived from it that stay certainly invalid: a JSON or CBOR
    body cut short (no proper prefix of one object is a whole one), its operation renamed,
    an S3 request's bucket gone or its method wrong, a query request's Action renamed."""
    out = [request]
    for _ in range(VARIANTS):
        choice = rng.random()
        if request.service in ("s3", "sagemaker-runtime"):
            if request.service == "s3" and choice < 0.5:
                method = {"GET": "PATCH", "HEAD": "PATCH"}.get(request.method, "TRACE")
                out.append(_derived(request, "bad-method", method=method))
            else:
                body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
                path = request.path
                if request.service == "s3":
                    path = re.sub(r"^/[^/?]*", "/nosuch-bucket-2", path)
                out.append(_derived(request, "no-such-bucket" if request.service == "s3"
                                    else "no-such-endpoint", path=path, body=body))
        elif request.service in ("sts", "iam"):
            body = re.sub(rb"Action=[^&]*", b"Action=" + quote(
                rng.choice(["", "Nope", "\u00e9", request.operation + "s"])).encode(),
                request.body) if b"Action=" in request.body else request.body
            out.append(_derived(request, "unknown-operation" if b"Action=" in request.body
                                else request.breaker, body=body))
        elif choice < 0.7 and request.breaker in WHOLE_DOCUMENT and len(request.body) > 1:
            cut = rng.randrange(1, len(request.body))
            out.append(_derived(request, "truncated", body=request.body[:cut]))
        else:
            name = rng.choice(["Nope", request.operation + "s", request.operation.upper()])
            headers = dict(request.headers)
            path = request.path
            if "X-Amz-Target" in headers:
                headers["X-Amz-Target"] = headers["X-Amz-Target"].rsplit(".", 1)[0] + "." + name
            elif request.service == "cloudwatch":
                path = path.rsplit("/", 1)[0] + "/" + name
            else:
                path = "/" + name
            out.append(_derived(request, "unknown-operation", path=path, headers=headers))
    return out


# Breakers whose body is one whole JSON object / CBOR item: no proper prefix of it is one.
WHOLE_DOCUMENT = frozenset({"missing-required", "wrong-type", "constraint",
                            "unknown-operation"})


def _derived(request: Request, breaker: str, **changes: Any) -> Request:
    return Request(**{**request.__dict__, "breaker": breaker, **changes})


# -- the answers -------------------------------------------------------------------------
UNPARSABLE = (400, b"Invalid HTTP request received.")  # uvicorn's answer to a broken request


def error_code(status: int, headers: dict[str, str], body: bytes, method: str) -> str | None:
    """The AWS error code the answer carries in its protocol, or None if it carries none."""
    content_type = headers.get("content-type", "")
    if method == "HEAD" and not body:
        return f"HEAD {status}"  # S3 answers HEAD errors without a body, as AWS does
    if "cbor" in content_type:
        try:
            document = cbor2.loads(body)
        except Exception:  # noqa: BLE001 - not CBOR: no code
            return None
        return str(document.get("__type")) if isinstance(document, dict) else None
    if "json" in content_type:
        try:
            document = json.loads(body)
        except ValueError:
            return None
        if not isinstance(document, dict):
            return None
        code = document.get("__type") or document.get("code") or headers.get("x-amzn-errortype")
        return str(code) if code else None
    if "xml" in content_type:
        match = re.search(rb"<Code>([^<]+)</Code>", body)
        return match.group(1).decode() if match else None
    return None


def _on_existing_bucket(request: Request) -> bool:
    """S3 answers a missing bucket (404) before a feature it lacks (501): opensage's 501 is
    accepted only for the bucket that exists."""
    return request.path.split("?", 1)[0].split("/")[1] == EXISTING_BUCKET


@dataclass
class Finding:
    request: Request
    status: int
    body: bytes
    why: str

    def __str__(self) -> str:
        return f"{self.why}: {self.status} {self.body[:300]!r}\n    {self.request.describe()}"


@dataclass
class Campaign:
    """Sends cases on one kept-alive connection and keeps the tally."""

    host: str
    port: int
    sent: int = 0
    unsendable: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    breakers: Counter[str] = field(default_factory=Counter)
    services: Counter[str] = field(default_factory=Counter)
    not_implemented: int = 0  # S3's 501 for a subresource opensage does not serve
    unparsable: int = 0  # uvicorn's plain 400 for what is not HTTP
    findings: list[Finding] = field(default_factory=list)
    bytes_sent: int = 0

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def close(self) -> None:
        self.conn.close()

    def _reopen(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def send(self, request: Request, *, retried: bool = False) -> None:
        headers = _latin1_safe(request.headers)
        try:
            self.conn.putrequest(request.method, request.path, skip_accept_encoding=True)
            for name, item in headers.items():
                self.conn.putheader(name, item)
            if request.body or request.method in ("POST", "PUT"):
                self.conn.putheader("Content-Length", str(len(request.body)))
            self.conn.endheaders(request.body or None)
        except (ValueError, UnicodeEncodeError, http.client.InvalidURL):
            self._reopen()  # http.client will not send it (CR/LF in a header): no client can
            self.unsendable += 1
            return
        except OSError:  # the server answered before reading the body, and closed
            try:
                response = self.conn.getresponse()  # its answer is still there to read
                status, body = response.status, response.read()
            except (OSError, http.client.HTTPException):
                pass
            else:
                self._reopen()
                self._count(request, status)
                self._judge(request, status, {k.lower(): v for k, v in
                                              response.getheaders()}, body)
                return
            self._reopen()
            if retried:
                self._found(request, 0, b"", "could not send on a fresh connection")
                return
            self.send(request, retried=True)
            return
        try:
            response = self.conn.getresponse()
            status, body = response.status, response.read()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            self._reopen()
            self._found(request, 0, b"", f"connection lost ({exc!r})")
            return
        if answer_headers.get("connection", "").lower() == "close":
            self._reopen()
        self._count(request, status)
        self._judge(request, status, answer_headers, body)

    def _count(self, request: Request, status: int) -> None:
        self.sent += 1
        self.bytes_sent += len(request.body)
        self.statuses[status] += 1
        self.breakers[request.breaker] += 1
        self.services[request.service] += 1

    def _judge(self, request: Request, status: int, headers: dict[str, str],
               body: bytes) -> None:
        if (status, body) == UNPARSABLE:
            self.unparsable += 1
            self._reopen()
            return
        code = error_code(status, headers, body, request.method)
        self.codes[code or "-"] += 1
        if status >= 500:
            if (status == 501 and code in ("NotImplemented", "HEAD 501")
                    and request.service == "s3" and _on_existing_bucket(request)):
                self.not_implemented += 1
                return
            self._found(request, status, body, "server error")
        elif not 400 <= status < 500:
            self._found(request, status, body, "accepted a malformed request")
        elif code is None:
            self._found(request, status, body, "a 4xx without an AWS error of its protocol")

    def _found(self, request: Request, status: int, body: bytes, why: str) -> None:
        self.findings.append(Finding(request, status, body, why))

    def summary(self) -> dict[str, Any]:
        return {"sent": self.sent, "unsendable": self.unsendable,
                "statuses": dict(sorted(self.statuses.items())),
                "5xx": sum(n for s, n in self.statuses.items() if s >= 500),
                "s3_not_implemented_501": self.not_implemented,
                "uvicorn_unparsable_400": self.unparsable,
                "findings": len(self.findings), "bytes_sent": self.bytes_sent,
                "services": dict(sorted(self.services.items())),
                "breakers": dict(sorted(self.breakers.items()))}


# -- the server's state and memory -------------------------------------------------------
def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def state_snapshot(data_dir: Path) -> dict[str, Any]:
    """Every table's rows (a digest and a count) and every file under ``data_dir`` but the
    database's own: what a request could have changed. ``leases`` is left out: the server's
    background loops (the autoscaler's, housekeeping's) claim and renew their leases on
    their own clock, whatever the requests. ``audit_events`` is the append-only record of
    every call, refused ones included: only its newest ``seq`` is kept here, and
    :func:`audit_since` reads what was added (each must be a refusal)."""
    from sqlalchemy import func, select

    from opensage.settings import Settings
    from opensage.store.db import Database
    from opensage.store.schema import ALL_TABLES

    settings = Settings(data_dir=data_dir)
    db = Database(settings.database_url)
    tables: dict[str, tuple[int, str]] = {}
    try:
        with db.engine.connect() as conn:
            for table in ALL_TABLES:
                if table.name == "leases":
                    continue
                if table.name == "audit_events":
                    tables["audit_events.seq"] = (conn.execute(
                        select(func.max(table.c.seq))).scalar() or 0, "")
                    continue
                rows = sorted(repr(tuple(r)) for r in conn.execute(select(table)))
                digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
                tables[table.name] = (len(rows), digest)
    finally:
        db.engine.dispose()
    return {"tables": tables, "files": file_tree(data_dir, skip=("opensage.db",))}


def audit_since(data_dir: Path, seq: int) -> list[dict[str, Any]]:
    """The CloudTrail records written after ``seq`` (empty where there is no audit table)."""
    from sqlalchemy import select

    from opensage.settings import Settings
    from opensage.store.db import Database
    from opensage.store.schema import ALL_TABLES

    table = next((t for t in ALL_TABLES if t.name == "audit_events"), None)
    if table is None:
        return []
    db = Database(Settings(data_dir=data_dir).database_url)
    try:
        with db.engine.connect() as conn:
            return [json.loads(r) for (r,) in conn.execute(
                select(table.c.record).where(table.c.seq > seq))]
    finally:
        db.engine.dispose()


def state_unchanged(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """The same rows and files, the audit record aside (it may only have grown)."""
    def strip(state: dict[str, Any]) -> dict[str, Any]:
        tables = {k: v for k, v in state["tables"].items() if k != "audit_events.seq"}
        return {**state, "tables": tables}
    return strip(before) == strip(after)


def file_tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[str, int, str]]:
    """path -> (kind, size, sha256 of a file's bytes or a link's target), without following
    links; names in ``skip`` (and their -wal/-shm/-journal companions) left out."""
    out: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            if any(name == s or name.startswith(s + "-") for s in skip):
                continue
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", 0, os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", 0, "")
            else:
                data = path.read_bytes()
                out[rel] = ("file", len(data), hashlib.sha256(data).hexdigest())
    return out


def run(campaign: Campaign, strategy: st.SearchStrategy[list[Request]], count: int, seed: int,
        every: Callable[[int], None] | None = None) -> None:
    """Send ``count`` drawn cases (each a list of requests) drawn by Hypothesis from a fixed seed (reproducible: the same
    seed draws the same requests), generation only: a finding is kept, not shrunk."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed

    @fixed_seed(seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def send(cases: list[Request]) -> None:
        for case in cases:
            campaign.send(case)
        if every is not None:
            every(campaign.sent)

    send()


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
