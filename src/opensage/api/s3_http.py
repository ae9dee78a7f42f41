"""S3's HTTP details: aws-chunked bodies, byte ranges, conditions, metadata <-> headers."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import QueryParams
from starlette.requests import Request

from opensage.api.auth import PAYLOAD, PayloadCheck
from opensage.errors import (
    IncompleteBody,
    InvalidArgument,
    InvalidRange,
    NotModified,
    PreconditionFailed,
)
from opensage.store import checksums, pagination
from opensage.store.objects import ObjectInfo

from .s3_xml import http_date, parse_http_date

# Object metadata kept as S3 member names, sent and answered as these headers.
META_HEADERS = {
    "content-type": "ContentType", "content-encoding": "ContentEncoding",
    "content-disposition": "ContentDisposition", "cache-control": "CacheControl",
    "content-language": "ContentLanguage", "expires": "Expires",
    "x-amz-website-redirect-location": "WebsiteRedirectLocation",
    "x-amz-storage-class": "StorageClass",
    "x-amz-server-side-encryption": "ServerSideEncryption",
    "x-amz-server-side-encryption-aws-kms-key-id": "SSEKMSKeyId",
    "x-amz-server-side-encryption-context": "SSEKMSEncryptionContext",
    "x-amz-server-side-encryption-bucket-key-enabled": "BucketKeyEnabled",
}
SSE_HEADERS = {h: n for h, n in META_HEADERS.items() if h.startswith("x-amz-server-side")}
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                   "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR",
                   "SNOW", "EXPRESS_ONEZONE")
_RESPONSE_OVERRIDES = {
    "response-content-type": "content-type", "response-content-language": "content-language",
    "response-expires": "expires", "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}


def meta_from_headers(headers: Mapping[str, str], account: str, region: str) -> dict[str, Any]:
    """System and user metadata of a PutObject / CreateMultipartUpload / CopyObject(REPLACE)."""
    meta: dict[str, Any] = {n: headers[h] for h, n in META_HEADERS.items() if h in headers}
    encodings = [e.strip() for e in meta.pop("ContentEncoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "aws-chunked"]
    if encodings:
        meta["ContentEncoding"] = ",".join(encodings)
    meta.setdefault("ContentType", "binary/octet-stream")
    sse_meta(meta, account, region)
    if meta.get("StorageClass", "STANDARD") not in STORAGE_CLASSES:
        raise InvalidArgument("The storage class you specified is not valid",
                              code="InvalidStorageClass", StorageClassRequested=meta["StorageClass"])
    if meta.get("StorageClass") == "STANDARD":
        del meta["StorageClass"]
    user = {k[len("x-amz-meta-"):]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}
    if user:
        meta["Metadata"] = user
    return meta


def sse_meta(meta: dict[str, Any], account: str, region: str) -> None:
    sse = meta.get("ServerSideEncryption")
    if sse is None:
        if "SSEKMSKeyId" in meta:
            raise InvalidArgument("Server Side Encryption with KMS managed key requires HTTP "
                                  "header x-amz-server-side-encryption : aws:kms")
        return
    if sse not in SSE_ALGORITHMS:
        raise InvalidArgument("The encryption method specified is not supported",
                              ArgumentName="x-amz-server-side-encryption", ArgumentValue=sse)
    if sse.startswith("aws:kms"):
        key = meta.get("SSEKMSKeyId") or "alias/aws/s3"
        if not key.startswith("arn:"):
            key = f"arn:aws:kms:{region}:{account}:{key if '/' in key else 'key/' + key}"
        meta["SSEKMSKeyId"] = key
    else:
        for name in ("SSEKMSKeyId", "SSEKMSEncryptionContext", "BucketKeyEnabled"):
            meta.pop(name, None)


def sse_headers(meta: Mapping[str, Any]) -> dict[str, str]:
    """What S3 echoes about encryption (every object is at least AES256 since 2023)."""
    out = {h: str(meta[n]) for h, n in SSE_HEADERS.items() if n in meta}
    out.setdefault("x-amz-server-side-encryption", "AES256")
    return out


def header_value(param: str, value: str) -> str:
    """A query parameter echoed as a response header: control characters (CR/LF) would end
    the header early, and HTTP headers are ISO-8859-1, so both are refused."""
    if any(ord(c) < 32 and c != "\t" or c == "\x7f" or ord(c) > 255 for c in value):
        raise InvalidArgument(f"Header value cannot be represented using ISO-8859-1: {param} "
                              "contains a character it cannot carry.", ArgumentName=param,
                              ArgumentValue=value.encode("unicode_escape").decode())
    return value


def response_overrides(query: Mapping[str, str]) -> dict[str, str]:
    """The headers GetObject's ``response-*`` parameters replace, checked."""
    return {header: header_value(param, query[param])
            for param, header in _RESPONSE_OVERRIDES.items() if param in query}


def object_headers(info: ObjectInfo, overrides: Mapping[str, str], *, checksum: bool
                   ) -> dict[str, str]:
    meta = info.meta
    out = {"etag": info.etag, "last-modified": http_date(info.last_modified),
           "accept-ranges": "bytes"}
    out.update({h: str(meta[n]) for h, n in META_HEADERS.items() if n in meta})
    out.setdefault("content-type", "binary/octet-stream")
    out.update(sse_headers(meta))
    for k, v in (meta.get("Metadata") or {}).items():
        out[f"x-amz-meta-{k}"] = v
    out.update(overrides)
    if checksum and info.checksum:
        alg, value = info.checksum
        out[f"x-amz-checksum-{alg}"] = value
        out["x-amz-checksum-type"] = meta.get("ChecksumType", "FULL_OBJECT")
    return out


def checksum_headers(meta: Mapping[str, Any]) -> dict[str, str]:
    alg, value = meta.get("ChecksumAlgorithm"), meta.get("Checksum")
    if not alg or not value:
        return {}
    return {f"x-amz-checksum-{alg.lower()}": value,
            "x-amz-checksum-type": meta.get("ChecksumType", "FULL_OBJECT")}


def request_checksum(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(algorithm, expected value) the client sent; the value may come later in a trailer."""
    try:
        for alg in checksums.ALGORITHMS:
            value = headers.get(f"x-amz-checksum-{alg}")
            if value:
                return alg, value
        trailer = headers.get("x-amz-trailer", "").strip().lower()
        if trailer.startswith("x-amz-checksum-"):
            return checksums.normalize(trailer[len("x-amz-checksum-"):]), None
        return checksums.normalize(headers.get("x-amz-sdk-checksum-algorithm")), None
    except ValueError:
        raise InvalidArgument("Value for x-amz-sdk-checksum-algorithm header is invalid.",
                              ArgumentName="x-amz-sdk-checksum-algorithm") from None


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range of a ``Range`` header; None for the whole object.

    As S3 does, a header it cannot parse (or several ranges) is ignored; an unsatisfiable one
    answers InvalidRange (416).
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[6:].strip().partition("-")
    try:
        if not sep or (not first and not last):
            return None
        if not first:
            n = int(last)
            if n <= 0 or size == 0:
                raise _unsatisfiable(size)
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if end < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> InvalidRange:
    return InvalidRange("The requested range is not satisfiable", ActualObjectSize=str(size))


def check_conditions(info: ObjectInfo, headers: Mapping[str, str], prefix: str = "") -> None:
    """If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (304)."""
    etag = info.etag.strip('"')
    modified = int(info.last_modified)

    def etags(value: str) -> set[str]:
        return {v.strip().strip('"') for v in value.split(",")}

    if_match = headers.get(prefix + "if-match")
    if if_match is not None:
        if "*" not in etags(if_match) and etag not in etags(if_match):
            raise PreconditionFailed("At least one of the pre-conditions you specified did not "
                                     "hold", Condition="If-Match")
    else:
        since = parse_http_date(headers.get(prefix + "if-unmodified-since", ""))
        if since is not None and modified > since:
            raise PreconditionFailed("At least one of the pre-conditions you specified did not "
                                     "hold", Condition="If-Unmodified-Since")
    failed = PreconditionFailed if prefix else NotModified
    if_none = headers.get(prefix + "if-none-match")
    if if_none is not None:
        if "*" in etags(if_none) or etag in etags(if_none):
            raise failed("At least one of the pre-conditions you specified did not hold",
                         Condition="If-None-Match")
    else:
        since = parse_http_date(headers.get(prefix + "if-modified-since", ""))
        if since is not None and modified <= since:
            raise failed("At least one of the pre-conditions you specified did not hold",
                         Condition="If-Modified-Since")


class AwsChunkedDecoder:
    """Incremental decoder of ``Content-Encoding: aws-chunked`` (signed or unsigned, with
    trailers): ``<hex size>[;chunk-signature=..]\\r\\n<data>\\r\\n`` ... ``0\\r\\n<trailers>\\r\\n``.
    With a ``PayloadCheck`` (``--auth sigv4``), each chunk's signature and the trailer's are
    verified as they complete, chained from the request's signature."""

    MAX_LINE = 8192

    def __init__(self, check: PayloadCheck | None = None) -> None:
        self._buf = bytearray()
        self._remaining = 0
        self._state = "size"  # size -> data -> crlf -> size ... -> trailers -> done
        self.trailers: dict[str, str] = {}
        self._check = check if check is not None and check.chunks else None
        self._signature: str | None = None
        self._hash = hashlib.sha256()
        self._trailer_lines: list[str] = []
        self._trailer_signature: str | None = None

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        buf, pos = self._buf, 0
        check = self._check
        while True:
            if self._state == "data":
                take = min(self._remaining, len(buf) - pos)
                if take == 0:
                    break
                piece = bytes(buf[pos:pos + take])
                out.append(piece)
                if check is not None:
                    self._hash.update(piece)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "crlf"
                    if check is not None:
                        check.chunk(self._signature, self._hash.hexdigest())
                continue
            if self._state == "done":
                break
            end = buf.find(b"\n", pos)
            if end < 0:
                if len(buf) - pos > self.MAX_LINE:
                    raise IncompleteBody("Malformed aws-chunked encoding: line too long")
                break
            line = bytes(buf[pos:end]).rstrip(b"\r")
            pos = end + 1
            if self._state == "crlf":
                if line:
                    raise IncompleteBody("Malformed aws-chunked encoding: missing CRLF")
                self._state = "size"
            elif self._state == "size":
                size, _, extension = line.partition(b";")
                try:
                    self._remaining = int(size.strip(), 16)
                except ValueError:
                    raise IncompleteBody("Malformed aws-chunked encoding: bad chunk size") from None
                name, _, value = extension.decode("latin-1").partition("=")
                self._signature = value.strip() if name.strip() == "chunk-signature" else None
                self._hash = hashlib.sha256()
                self._state = "data" if self._remaining else "trailers"
                if not self._remaining and check is not None:
                    check.chunk(self._signature, self._hash.hexdigest())
            elif not line:  # the blank line that ends the trailers
                self._end_trailers()
            else:
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip()
                if name == "x-amz-trailer-signature":
                    self._trailer_signature = value
                else:
                    self.trailers[name] = value
                    self._trailer_lines.append(f"{name}:{value}")
        del buf[:pos]
        return out

    def _end_trailers(self) -> None:
        self._state = "done"
        if self._check is not None:
            self._check.trailer(self._trailer_lines, self._trailer_signature)

    def finish(self) -> None:
        if self._state == "trailers" and not self._buf:
            self._end_trailers()  # tolerate a missing final blank line
        if self._state != "done":
            raise IncompleteBody("The request body ended before the aws-chunked terminator")


BODY_READ = "opensage.s3.body_read"  # scope key: the request body was read to its end


def unread_body(request: Request) -> bool:
    """Whether the client declared a body that was not read (then the connection must close:
    a client waiting on ``Expect: 100-continue`` never sends it)."""
    headers = request.headers
    declared = headers.get("content-length", "0") not in ("", "0") or (
        "transfer-encoding" in headers)
    return declared and not request.scope.get(BODY_READ)


class Body:
    """A request body as decoded chunks (aws-chunked undone), with its trailers and length."""

    def __init__(self, request: Request) -> None:
        self._request = request
        headers = request.headers
        chunked = "aws-chunked" in headers.get("content-encoding", "") or headers.get(
            "x-amz-content-sha256", "").startswith("STREAMING-")
        check = request.scope.get(PAYLOAD)  # --auth sigv4: what the signature covers
        self._decoder = AwsChunkedDecoder(check) if chunked else None
        self._check: PayloadCheck | None = check if not chunked else None
        declared = headers.get("x-amz-decoded-content-length") if chunked else headers.get(
            "content-length")
        try:
            self.declared = int(declared) if declared is not None else None
        except ValueError:
            raise InvalidArgument("Content-Length is not a number") from None
        self.received = 0

    @property
    def trailers(self) -> dict[str, str]:
        return self._decoder.trailers if self._decoder is not None else {}

    async def chunks(self) -> AsyncIterator[bytes]:
        async for data in self._request.stream():
            if not data:
                continue
            if self._check is not None:
                self._check.update(data)
            pieces = [data] if self._decoder is None else self._decoder.feed(data)
            for piece in pieces:
                self.received += len(piece)
                yield piece
        self._request.scope[BODY_READ] = True
        if self._decoder is not None:
            self._decoder.finish()
        if self._check is not None:
            self._check.finish()
        if self.declared is not None and self.received != self.declared:
            raise IncompleteBody("You did not provide the number of bytes specified by the "
                                 "Content-Length HTTP header.")

    async def read(self, limit: int) -> bytes:
        out = bytearray()
        async for piece in self.chunks():
            out += piece
            if len(out) > limit:
                raise InvalidArgument("The request body is too large for this operation",
                                      code="MaxMessageLengthExceeded")
        return bytes(out)


def int_param(q: QueryParams, name: str, default: int) -> int:
    raw = q.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidArgument(f"Provided {name} not an integer or within integer range",
                              ArgumentName=name, ArgumentValue=raw)
    return value


def encode_token(last: str) -> str:
    return pagination.encode(("s3-list-objects",), (last,))


def decode_token(token: str) -> str:
    (last,) = pagination.decode(token, ("s3-list-objects",), 1, _invalid_token)
    if not isinstance(last, str):
        raise _invalid_token("not a key")
    return last


def _invalid_token(message: str) -> Exception:
    return InvalidArgument("The continuation token provided is incorrect",
                           ArgumentName="continuation-token")


def copy_source(header: str) -> tuple[str, str]:
    """``/bucket/key`` or ``bucket/key`` (URL-encoded, maybe ``?versionId=``) -> parts."""
    source = unquote(header.split("?versionId=", 1)[0]).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise InvalidArgument("Copy Source must mention the source bucket and key: "
                              "sourcebucket/sourcekey", ArgumentName="x-amz-copy-source",
                              ArgumentValue=header)
    return bucket, key


def copy_range(header: str | None) -> tuple[int, int] | None:
    if header is None:
        return None
    first, _, last = header.removeprefix("bytes=").partition("-")
    try:
        return int(first), int(last)
    except ValueError:
        raise InvalidArgument("The x-amz-copy-source-range value must be of the form "
                              "bytes=first-last where first and last are the zero-based "
                              "offsets of the first and last bytes to copy",
                              ArgumentName="x-amz-copy-source-range",
                              ArgumentValue=header) from None
