"""Authentication: AWS Signature Version 4, verified as AWS does, for every service served.

``--auth none`` lets every request through (the server may then listen on loopback only).
``--auth sigv4`` verifies each request before any service sees it:

- header-signed (``Authorization: AWS4-HMAC-SHA256 Credential=...``) and presigned
  (``X-Amz-Algorithm``/``X-Amz-Credential``/``X-Amz-Signature`` in the query) requests;
- the canonical request and string to sign are botocore's own (``SigV4Auth`` /
  ``S3SigV4Auth``, fed an ``AWSRequest`` rebuilt from the incoming one with exactly the headers
  the client signed); the signing key (four HMACs) is cached per (secret, date, region,
  service), so a check costs one HMAC beyond building the canonical request;
- the payload: the services answered from a whole body (JSON, query, the runtime, metrics)
  read it first and sign its SHA-256; S3 signs ``x-amz-content-sha256`` and the body is
  checked as it streams (``PayloadCheck``, used by ``s3_http.Body``): a SHA-256, or
  ``aws-chunked`` chunk signatures (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``), or
  nothing (``UNSIGNED-PAYLOAD``, ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``);
- time: a header-signed request more than 15 minutes off the server's clock is refused, a
  presigned one after ``X-Amz-Expires``; session keys after their expiration.

Failures answer each protocol's own words (``Dialect``): S3's XML codes, STS/IAM's query
codes (CloudWatch too: it is query-compatible), and the awsJson codes of the others.
Verification runs on the event loop (tens of microseconds); only a key that memory does not
hold is read from the database, in the thread pool.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, unquote

from botocore.auth import EMPTY_SHA256_HASH, HmacV1Auth, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from opensage.api.error_encoding import ErrorAnswer, json_error, rest_json_error, rest_xml_error
from opensage.api.router import identify_service
from opensage.console.app import PREFIX as CONSOLE
from opensage.console.app import signed_request
from opensage.errors import AuthFailure, AwsError
from opensage.services.iam import Credential, IamService, Principal

log = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = 15 * 60  # seconds
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
MAX_SIGNED_BODY = 16 * 1024 * 1024  # the bodies read whole to be hashed (not S3's)
PRINCIPAL = "opensage.principal"  # scope key: the caller (a Principal), once verified
PAYLOAD = "opensage.payload"  # scope key: S3's PayloadCheck for the body
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
OPEN_PATHS = frozenset({"/_opensage/health"})  # answered to anyone: readiness probes
TIMESTAMP = "%Y%m%dT%H%M%SZ"


class Dialect(StrEnum):
    JSON = "json"  # sagemaker, runtime, metrics, logs, application-autoscaling
    QUERY = "query"  # sts, iam, cloudwatch (query-compatible)
    S3 = "s3"


def dialect_of(service: str) -> Dialect:
    if service == "s3":
        return Dialect.S3
    if service in ("sts", "iam", "cloudwatch", "cloudwatch-json"):
        return Dialect.QUERY
    return Dialect.JSON


class Failure(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown-key"
    SIGNATURE = "signature"
    SKEWED = "skewed"
    PRESIGN_EXPIRED = "presign-expired"
    TOKEN_EXPIRED = "token-expired"
    TOKEN_INVALID = "token-invalid"
    PAYLOAD = "payload"


_SIGNATURE_MESSAGE = ("The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method. Consult "
                      "the service documentation for details.")
_INVALID_TOKEN = "The security token included in the request is invalid."
# (code, status, message) per dialect; None: the message is the caller's (``detail``)
_WORDS: dict[Failure, dict[Dialect, tuple[str, int, str | None]]] = {
    Failure.MISSING: {
        Dialect.JSON: ("MissingAuthenticationTokenException", 403, ("Missing Authentication "
                       "Token")),
        Dialect.QUERY: ("MissingAuthenticationToken", 403, ("Request is missing "
                        "Authentication Token")),
        Dialect.S3: ("AccessDenied", 403, "Access Denied")},
    Failure.MALFORMED: {
        Dialect.JSON: ("IncompleteSignatureException", 400, None),
        Dialect.QUERY: ("IncompleteSignature", 400, None),
        Dialect.S3: ("AuthorizationHeaderMalformed", 400, None)},
    Failure.UNKNOWN_KEY: {
        Dialect.JSON: ("UnrecognizedClientException", 400, _INVALID_TOKEN),
        Dialect.QUERY: ("InvalidClientTokenId", 403, _INVALID_TOKEN),
        Dialect.S3: ("InvalidAccessKeyId", 403, ("The AWS Access Key Id you provided does not "
                     "exist in our records."))},
    Failure.SIGNATURE: {
        Dialect.JSON: ("InvalidSignatureException", 400, _SIGNATURE_MESSAGE),
        Dialect.QUERY: ("SignatureDoesNotMatch", 403, _SIGNATURE_MESSAGE),
        Dialect.S3: ("SignatureDoesNotMatch", 403, ("The request signature we calculated does "
                     "not match the signature you provided. Check your key and signing "
                     "method."))},
    Failure.SKEWED: {
        Dialect.JSON: ("InvalidSignatureException", 400, None),
        Dialect.QUERY: ("SignatureDoesNotMatch", 403, None),
        Dialect.S3: ("RequestTimeTooSkewed", 403, ("The difference between the request time "
                     "and the current time is too large."))},
    Failure.PRESIGN_EXPIRED: {
        Dialect.JSON: ("InvalidSignatureException", 400, None),
        Dialect.QUERY: ("SignatureDoesNotMatch", 403, None),
        Dialect.S3: ("AccessDenied", 403, "Request has expired")},
    Failure.TOKEN_EXPIRED: {
        Dialect.JSON: ("ExpiredTokenException", 400, ("The security token included in the "
                       "request is expired")),
        Dialect.QUERY: ("ExpiredToken", 403, ("The security token included in the request "
                        "is expired")),
        Dialect.S3: ("ExpiredToken", 400, "The provided token has expired.")},
    Failure.TOKEN_INVALID: {
        Dialect.JSON: ("UnrecognizedClientException", 400, _INVALID_TOKEN),
        Dialect.QUERY: ("InvalidClientTokenId", 403, _INVALID_TOKEN),
        Dialect.S3: ("InvalidToken", 400, ("The provided token is malformed or otherwise "
                     "invalid."))},
    Failure.PAYLOAD: {
        Dialect.JSON: ("InvalidSignatureException", 400, _SIGNATURE_MESSAGE),
        Dialect.QUERY: ("SignatureDoesNotMatch", 403, _SIGNATURE_MESSAGE),
        Dialect.S3: ("XAmzContentSHA256Mismatch", 400, ("The provided 'x-amz-content-sha256' "
                     "header does not match what was computed."))},
}


class AuthError(Exception):
    """A failed check, in no protocol's words yet (``as_aws`` chooses them)."""

    def __init__(self, failure: Failure, detail: str = "", **fields: str) -> None:
        super().__init__(failure.value)
        self.failure, self.detail, self.fields = failure, detail, fields

    def as_aws(self, dialect: Dialect) -> AwsError:
        code, status, message = _WORDS[self.failure][dialect]
        fields = self.fields if dialect is Dialect.S3 else {}
        return AuthFailure(message if message is not None else self.detail, code=code,
                           status=status, **fields)


def _stamp(seconds: float) -> str:
    return time.strftime(TIMESTAMP, time.gmtime(seconds))


def _parse_stamp(raw: str) -> float | None:
    """``YYYYMMDDTHHMMSSZ`` as epoch seconds (strptime costs ~40 µs: this, ~2)."""
    if len(raw) != 16 or raw[8] != "T" or raw[15] != "Z" or not (
            raw[:8].isdigit() and raw[9:15].isdigit()):
        return None
    fields = (int(raw[0:4]), int(raw[4:6]), int(raw[6:8]), int(raw[9:11]), int(raw[11:13]),
              int(raw[13:15]))
    if not (1 <= fields[1] <= 12 and 1 <= fields[2] <= 31 and fields[3] < 24
            and fields[4] < 60 and fields[5] < 61):
        return None
    return float(calendar.timegm((*fields, 0, 0, 0)))


# -- botocore's canonical request, fed what the client signed --------------------------------

class _Canonical(SigV4Auth):  # type: ignore[misc]
    """botocore's SigV4 canonical request and string to sign over exactly the signed
    headers, a given query and a given payload hash (the signature itself is ours: the
    signing key is cached)."""

    def __init__(self, service: str, region: str, headers: HTTPHeaders,
                 query: list[tuple[str, str]], payload_hash: str) -> None:
        super().__init__(None, service, region)
        self._headers, self._query, self._payload = headers, query, payload_hash

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._headers

    def canonical_query_string(self, request: AWSRequest) -> str:
        return str(self._canonical_query_string_params(self._query))

    def payload(self, request: AWSRequest) -> str:
        return self._payload


class _S3Canonical(_Canonical):
    def _normalize_url_path(self, path: str) -> str:
        return str(S3SigV4Auth._normalize_url_path(self, path))


@dataclass(frozen=True)
class SignedRequest:
    """The SigV4 parameters of a request, from its Authorization header or its query."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # X-Amz-Date
    presigned: bool
    expires: int = 0  # presigned: X-Amz-Expires
    token: str | None = None

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def parse_signed(headers: Mapping[str, str], query: list[tuple[str, str]]) -> SignedRequest:
    """The SigV4 parameters, or AuthError (MISSING when the request is not signed)."""
    auth = headers.get("authorization")
    params = dict(query)
    if auth is not None:
        algorithm, _, rest = auth.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise AuthError(Failure.MALFORMED, f"Unsupported authorization type "
                            f"{algorithm!r}: use {ALGORITHM}.")
        parts: dict[str, str] = {}
        for item in rest.split(","):
            name, sep, value = item.strip().partition("=")
            if sep:
                parts[name] = value
        missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in parts]
        if missing:
            raise AuthError(Failure.MALFORMED, f"Authorization header requires "
                            f"'{missing[0]}' parameter. Authorization={auth}")
        credential, signed, signature = (parts["Credential"], parts["SignedHeaders"],
                                         parts["Signature"])
        timestamp = headers.get("x-amz-date") or _from_http_date(headers.get("date", ""))
        token = headers.get("x-amz-security-token")
        presigned, expires = False, 0
    elif "X-Amz-Signature" in params or "X-Amz-Credential" in params:
        if params.get("X-Amz-Algorithm") != ALGORITHM:
            raise AuthError(Failure.MALFORMED, "X-Amz-Algorithm only supports "
                            f"'{ALGORITHM}'")
        try:
            credential, signed, signature = (params["X-Amz-Credential"],
                                             params["X-Amz-SignedHeaders"],
                                             params["X-Amz-Signature"])
            timestamp, expires = params["X-Amz-Date"], int(params["X-Amz-Expires"])
        except (KeyError, ValueError) as exc:
            raise AuthError(Failure.MALFORMED, f"Query-string authentication requires the "
                            f"X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                            f"X-Amz-SignedHeaders and X-Amz-Expires parameters ({exc})"
                            ) from None
        token, presigned = params.get("X-Amz-Security-Token"), True
        if not 0 < expires <= MAX_PRESIGN_EXPIRES:
            raise AuthError(Failure.MALFORMED, "X-Amz-Expires must be between 1 and 604800 "
                            "seconds")
    else:
        raise AuthError(Failure.MISSING)
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not scope[0]:
        raise AuthError(Failure.MALFORMED, f"Credential should be scoped to a valid region, "
                        f"service and terminated with aws4_request: {credential!r}")
    if not timestamp or _parse_stamp(timestamp) is None:
        raise AuthError(Failure.MALFORMED, "Authorization requires a valid X-Amz-Date "
                        "(or Date) header")
    if timestamp[:8] != scope[1]:
        raise AuthError(Failure.MALFORMED, f"Date in Credential scope does not match "
                        f"YYYYMMDD from ISO-8601 version of date from HTTP: {scope[1]!r} != "
                        f"{timestamp[:8]!r}")
    names = tuple(signed.split(";"))
    if "host" not in names:
        raise AuthError(Failure.MALFORMED, "'Host' or ':authority' must be a 'SignedHeader' "
                        "in the AWS Authorization.")
    return SignedRequest(scope[0], scope[1], scope[2], scope[3], names, signature.strip(),
                         timestamp, presigned, expires, token)


def _from_http_date(raw: str) -> str:
    import email.utils

    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return ""
    return parsed.astimezone(dt.UTC).strftime(TIMESTAMP)


class SigningKeys:
    """Derived SigV4 signing keys, cached per (secret, date, region, service)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._limit = limit

    def get(self, secret: str, date: str, region: str, service: str) -> bytes:
        index = (secret, date, region, service)
        key = self._keys.get(index)
        if key is None:
            key = _hmac(("AWS4" + secret).encode(), date)
            for part in (region, service, "aws4_request"):
                key = _hmac(key, part)
            if len(self._keys) >= self._limit:
                self._keys.clear()
            self._keys[index] = key
        return key


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _sign_hex(key: bytes, msg: str) -> str:
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


# -- S3's legacy presigned URLs (Signature Version 2) ----------------------------------------

V2_PARAMS = frozenset({"AWSAccessKeyId", "Signature", "Expires", "x-amz-security-token"})


class _V2Canonical(HmacV1Auth):  # type: ignore[misc]
    """botocore's S3 SigV2 string to sign, with the URL's ``Expires`` as its date: what
    ``generate_presigned_url`` makes unless the client is configured for ``s3v4``."""

    def __init__(self, expires: str) -> None:
        super().__init__(None)
        self._expires = expires

    def _get_date(self) -> str:
        return self._expires


def verify_v2_presigned(request: Incoming, raw_query: str, credential: Credential | None,
                        now: float) -> Principal:
    params = dict(request.query)
    key_id = params.get("AWSAccessKeyId", "")
    if credential is None or not credential.active:
        raise AuthError(Failure.UNKNOWN_KEY, AWSAccessKeyId=key_id)
    token = params.get("x-amz-security-token")
    if (credential.token_sha256 is not None or token is not None) and not (
            IamService.token_matches(credential, token)):
        raise AuthError(Failure.UNKNOWN_KEY if token is None else Failure.TOKEN_INVALID,
                        AWSAccessKeyId=key_id)
    try:
        expires = int(params.get("Expires", ""))
    except ValueError:
        raise AuthError(Failure.MALFORMED, "Expires must be a number of seconds since the "
                        "epoch") from None
    if now > expires:
        raise AuthError(Failure.PRESIGN_EXPIRED, "Request has expired",
                        Expires=_iso(expires), ServerTime=_iso(now))
    if credential.expiration is not None and now >= credential.expiration:
        raise AuthError(Failure.TOKEN_EXPIRED, **{"Token-0": token or ""})
    kept = "&".join(p for p in raw_query.split("&")
                    if p and unquote(p.partition("=")[0]) not in V2_PARAMS)
    headers = HTTPHeaders()
    for name, value in request.headers.items():
        if name in ("content-md5", "content-type") or name.startswith("x-amz-"):
            headers[name] = value
    if token is not None:
        headers["x-amz-security-token"] = token
    signer = _V2Canonical(str(expires))
    to_sign = signer.canonical_string(request.method, SplitResult(
        "http", request.host, request.raw_path, kept, ""), headers)
    expected = hmac.new(credential.secret.encode(), to_sign.encode(), hashlib.sha1).digest()
    if not hmac.compare_digest(base64.b64encode(expected).decode(), params.get("Signature", "")):
        raise AuthError(Failure.SIGNATURE, AWSAccessKeyId=key_id, StringToSign=to_sign,
                        SignatureProvided=params.get("Signature", ""))
    return credential.principal


# -- S3 payloads -----------------------------------------------------------------------------

@dataclass
class PayloadCheck:
    """How S3's body is checked as it streams (``s3_http.Body``): ``sha256`` (the hex the
    client signed), or chunk signatures (``chunks``) chained from ``seed``."""

    sha256: str | None = None
    chunks: bool = False
    signed_trailer: bool = False
    key: bytes = b""
    timestamp: str = ""
    scope: str = ""
    seed: str = ""
    _previous: str = field(default="", repr=False)
    _hash: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._previous = self.seed
        if self.sha256 is not None:
            self._hash = hashlib.sha256()

    # whole-body SHA-256
    def update(self, data: bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)

    def finish(self) -> None:
        if self._hash is not None and self._hash.hexdigest() != self.sha256:
            raise AuthError(Failure.PAYLOAD, ClientComputedContentSHA256=self.sha256 or "",
                            S3ComputedContentSHA256=self._hash.hexdigest()).as_aws(Dialect.S3)

    # aws-chunked chunk signatures
    def chunk(self, signature: str | None, digest: str) -> None:
        """One chunk's data was read (``digest``: its SHA-256 hex); ``signature`` is the
        one its header line carried."""
        if not self.chunks:
            return
        to_sign = (f"AWS4-HMAC-SHA256-PAYLOAD\n{self.timestamp}\n{self.scope}\n"
                   f"{self._previous}\n{EMPTY_SHA256_HASH}\n{digest}")
        self._previous = self._check(signature, to_sign)

    def trailer(self, lines: list[str], signature: str | None) -> None:
        """The trailers (``name:value`` lines, as sent) and their ``x-amz-trailer-signature``."""
        if not (self.chunks and self.signed_trailer):
            return
        canonical = "".join(line + "\n" for line in lines)
        to_sign = (f"AWS4-HMAC-SHA256-TRAILER\n{self.timestamp}\n{self.scope}\n"
                   f"{self._previous}\n{hashlib.sha256(canonical.encode()).hexdigest()}")
        self._previous = self._check(signature, to_sign)

    def _check(self, signature: str | None, to_sign: str) -> str:
        expected = _sign_hex(self.key, to_sign)
        if signature is None or not hmac.compare_digest(expected, signature):
            raise AuthError(Failure.SIGNATURE).as_aws(Dialect.S3)
        return expected


# -- the verifier ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Incoming:
    """What verification needs of a request, protocol-free."""

    method: str
    host: str
    raw_path: str  # as sent, percent-encoding kept
    query: list[tuple[str, str]]  # decoded
    headers: Mapping[str, str]  # names lower-cased; values of repeated headers comma-joined


class Verifier:
    def __init__(self, iam: IamService, clock: Callable[[], float] = time.time) -> None:
        self.iam = iam
        self.clock = clock
        self.keys = SigningKeys()

    def credential_of(self, access_key_id: str) -> Credential | None:
        """The key if memory holds it (no I/O); else ``iam.lookup`` in the thread pool."""
        return self.iam.cached(access_key_id)

    def verify(self, request: Incoming, signed: SignedRequest, credential: Credential | None,
               body: bytes | None) -> tuple[Principal, PayloadCheck | None]:
        """The caller, or AuthError. ``body``: the whole body (None for S3, whose payload is
        checked as it streams through the returned PayloadCheck)."""
        if credential is None or not credential.active:
            raise AuthError(Failure.UNKNOWN_KEY, AWSAccessKeyId=signed.access_key_id)
        if (credential.token_sha256 is not None or signed.token is not None) and not (
                self.iam.token_matches(credential, signed.token)):
            if signed.token is None:
                raise AuthError(Failure.UNKNOWN_KEY, AWSAccessKeyId=signed.access_key_id)
            raise AuthError(Failure.TOKEN_INVALID)
        now = self.clock()
        self._check_time(signed, now)
        if credential.expiration is not None and now >= credential.expiration:
            raise AuthError(Failure.TOKEN_EXPIRED, **{"Token-0": signed.token or ""})
        s3 = signed.service == "s3"
        payload_hash, check = self._payload(request, signed, body, s3)
        headers = HTTPHeaders()
        for name in signed.signed_headers:
            value = request.host if name == "host" else request.headers.get(name)
            if value is None:
                raise AuthError(Failure.SIGNATURE if not s3 else Failure.MALFORMED,
                                f"Signed header {name!r} is missing from the request")
            headers[name] = value
        query = [(k, v) for k, v in request.query if k != "X-Amz-Signature"]
        canonical_cls = _S3Canonical if s3 else _Canonical
        canonical = canonical_cls(signed.service, signed.region, headers, query, payload_hash)
        aws_request = AWSRequest(method=request.method,
                                 url=f"http://{request.host}{request.raw_path}")
        aws_request.context["timestamp"] = signed.timestamp
        canonical_request = canonical.canonical_request(aws_request)
        to_sign = canonical.string_to_sign(aws_request, canonical_request)
        key = self.keys.get(credential.secret, signed.date, signed.region, signed.service)
        expected = _sign_hex(key, to_sign)
        if not hmac.compare_digest(expected, signed.signature):
            raise AuthError(Failure.SIGNATURE, AWSAccessKeyId=signed.access_key_id,
                            StringToSign=to_sign, SignatureProvided=signed.signature,
                            CanonicalRequest=canonical_request)
        if check is not None and check.chunks:
            check.key, check.timestamp, check.scope = key, signed.timestamp, signed.scope
            check.seed = check._previous = signed.signature
        return credential.principal, check

    def _check_time(self, signed: SignedRequest, now: float) -> None:
        at = _parse_stamp(signed.timestamp)
        assert at is not None  # parse_signed checked it
        if signed.presigned:
            if now > at + signed.expires:
                raise AuthError(Failure.PRESIGN_EXPIRED,
                                f"Signature expired: {signed.timestamp} is now earlier than "
                                f"{_stamp(now - signed.expires)} ({_stamp(now)} - "
                                f"{signed.expires} sec.)",
                                **{"X-Amz-Expires": str(signed.expires),
                                   "Expires": _iso(at + signed.expires),
                                   "ServerTime": _iso(now)})
            if at > now + MAX_SKEW:
                raise AuthError(Failure.SKEWED, _not_yet(signed.timestamp, now),
                                RequestTime=signed.timestamp, ServerTime=_iso(now),
                                MaxAllowedSkewMilliseconds=str(MAX_SKEW * 1000))
            return
        if abs(now - at) > MAX_SKEW:
            detail = (f"Signature expired: {signed.timestamp} is now earlier than "
                      f"{_stamp(now - MAX_SKEW)} ({_stamp(now)} - 15 min.)" if at < now
                      else _not_yet(signed.timestamp, now))
            raise AuthError(Failure.SKEWED, detail, RequestTime=signed.timestamp,
                            ServerTime=_iso(now),
                            MaxAllowedSkewMilliseconds=str(MAX_SKEW * 1000))

    @staticmethod
    def _payload(request: Incoming, signed: SignedRequest, body: bytes | None,
                 s3: bool) -> tuple[str, PayloadCheck | None]:
        claimed = request.headers.get("x-amz-content-sha256")
        if body is not None:  # hashed here: the signature covers what was received
            actual = hashlib.sha256(body).hexdigest()
            if claimed is not None and claimed != UNSIGNED and claimed != actual:
                raise AuthError(Failure.PAYLOAD)
            return claimed if claimed is not None else actual, None
        if signed.presigned:
            return UNSIGNED, None
        if claimed is None:
            raise AuthError(Failure.MALFORMED if s3 else Failure.SIGNATURE,
                            "Missing required header for this request: x-amz-content-sha256",
                            )
        if claimed in (UNSIGNED, STREAMING_UNSIGNED_TRAILER):
            return claimed, None
        if claimed in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
            return claimed, PayloadCheck(chunks=True,
                                         signed_trailer=claimed == STREAMING_SIGNED_TRAILER)
        if len(claimed) != 64 or any(c not in "0123456789abcdef" for c in claimed):
            raise AuthError(Failure.MALFORMED, "x-amz-content-sha256 must be "
                            "UNSIGNED-PAYLOAD, STREAMING-... or a SHA-256 in lower-case hex",
                            )
        return claimed, PayloadCheck(sha256=claimed)


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _not_yet(timestamp: str, now: float) -> str:
    return (f"Signature not yet current: {timestamp} is still later than "
            f"{_stamp(now + MAX_SKEW)} ({_stamp(now)} + 15 min.)")


# -- the ASGI gate ---------------------------------------------------------------------------

ErrorWriter = Callable[[AwsError, str], ErrorAnswer]


def _answer_for(service: str, err: AwsError, request_id: str, resource: str) -> ErrorAnswer:
    if service == "s3":
        return rest_xml_error(err, request_id, resource=resource)
    if service in ("sagemaker-runtime", "sagemaker-metrics"):
        return rest_json_error(err, request_id)
    metadata: dict[str, Any] = {}
    if service in ("sts", "iam"):
        from opensage.api.error_encoding import query_error

        metadata = {"xmlNamespace": f"https://{service}.amazonaws.com/doc/"
                                    f"{'2011-06-15' if service == 'sts' else '2010-05-08'}/"}
        return query_error(err, request_id, metadata)
    if service in ("cloudwatch", "cloudwatch-json"):
        metadata = {"awsQueryCompatible": {}}
        if service == "cloudwatch":
            from opensage.api.error_encoding import cbor_error

            return cbor_error(err, request_id, metadata)
    return json_error(err, request_id, metadata)


def incoming(scope: Scope, headers: Mapping[str, str]) -> Incoming:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    raw_path = raw.split(b"?", 1)[0].decode("latin-1")
    query = [(unquote(k), unquote(v)) for k, _, v in
             (p.partition("=") for p in scope["query_string"].decode("latin-1").split("&") if p)]
    return Incoming(scope["method"], headers.get("host", ""), raw_path, query, headers)


def request_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for k, v in scope["headers"]:
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def is_console(scope: Scope) -> bool:
    """An unsigned request for the console (a signed one under its prefix is an AWS call)."""
    path: str = scope["path"]
    return (path == CONSOLE or path.startswith(CONSOLE + "/")) and not signed_request(scope)


class Gate:
    """Checks each request's signature before the app sees it (``--auth sigv4``).

    ``check`` answers a failure itself and returns None; on success it returns the
    ``receive`` the app must use (the body, when it was read to be hashed, is replayed)."""

    def __init__(self) -> None:
        self.verifier: Verifier | None = None  # set when the services start

    async def check(self, scope: Scope, receive: Receive, send: Send,
                    headers: Mapping[str, str] | None = None) -> Receive | None:
        if scope["path"] in OPEN_PATHS:
            return receive
        if is_console(scope):  # its own sign-in and session checks (console.session)
            return receive
        headers = headers if headers is not None else request_headers(scope)
        request = incoming(scope, headers)
        service = identify_service(scope["method"], scope["path"], headers, dict(request.query))
        verifier = self.verifier
        try:
            if verifier is None:
                raise AuthError(Failure.UNKNOWN_KEY)  # not started yet
            if (service == "s3" and "authorization" not in headers
                    and any(k == "AWSAccessKeyId" for k, _ in request.query)):
                key_id = dict(request.query)["AWSAccessKeyId"]
                credential = verifier.credential_of(key_id) or await run_in_threadpool(
                    verifier.iam.lookup, key_id)
                scope[PRINCIPAL] = verify_v2_presigned(
                    request, scope["query_string"].decode("latin-1"), credential,
                    verifier.clock())
                return receive
            signed = parse_signed(headers, request.query)
            body: bytes | None = None
            replay = receive
            if service != "s3":
                body = await _read_body(receive)
                replay = _replaying(body, receive)
            credential = verifier.credential_of(signed.access_key_id)
            if credential is None:
                credential = await run_in_threadpool(verifier.iam.lookup, signed.access_key_id)
            principal, check = verifier.verify(request, signed, credential, body)
        except AuthError as err:
            await self._refuse(scope, receive, send, service, err.as_aws(dialect_of(service)))
            return None
        except AwsError as err:
            await self._refuse(scope, receive, send, service, err)
            return None
        scope[PRINCIPAL] = principal
        if service == "sagemaker-runtime" and principal.type != "Root" and verifier is not None:
            try:
                await run_in_threadpool(_authorise_invoke, verifier.iam, principal, scope)
            except AwsError as err:
                await self._refuse(scope, receive, send, service, err)
                return None
        if check is not None:
            scope[PAYLOAD] = check
        return replay

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, service: str,
                      err: AwsError) -> None:
        answer = _answer_for(service, err, str(uuid.uuid4()), scope["path"])
        if scope["method"] == "HEAD":
            answer = answer.without_body()
        log.info("refused %s %s: %s", scope["method"], scope["path"], err.code)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
        raw.append((b"content-length", str(len(answer.body)).encode()))
        raw.append((b"connection", b"close"))  # the unread body must not be taken as a request
        await send({"type": "http.response.start", "status": answer.status, "headers": raw})
        await send({"type": "http.response.body", "body": answer.body})


def _authorise_invoke(iam: IamService, principal: Principal, scope: Scope) -> None:
    """sagemaker:InvokeEndpoint on the endpoint the path names (the fast path has no
    dispatcher of its own to check it)."""
    from opensage.api.authz import json_denied, request_context, require

    parts = scope["path"].split("/")
    name = unquote(parts[2]) if len(parts) > 2 else ""
    region = iam.settings.region
    resource = f"arn:aws:sagemaker:{region}:{iam.account}:endpoint/{name.lower()}"
    client = scope.get("client")
    context, _ = request_context(iam, principal, client[0] if client else "", {})
    require(iam, principal, "sagemaker:InvokeEndpoint", resource, context, json_denied)


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_SIGNED_BODY:
            raise AwsError(f"Request body exceeds {MAX_SIGNED_BODY} bytes",
                           code="RequestEntityTooLarge", status=413)
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class AuthMiddleware:
    """The gate as ASGI middleware: every route (the services, ``/_opensage/*``, the console)
    sits behind it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]],
                 gate: Gate) -> None:
        self.app, self.gate = app, gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        checked = await self.gate.check(scope, receive, send)
        if checked is not None:
            await self.app(scope, checked, send)
