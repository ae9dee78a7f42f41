"""The S3 facade: REST-XML over the object store, path-style (and ``<bucket>.localhost``).

Bodies stream from ``request.stream()`` into the store in ~1 MiB writes run in the thread
pool (MD5 and checksums computed there), and objects stream back from their blob; small
objects take one thread hop each way. Errors answer S3's XML (bodiless for HEAD).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote, unquote_to_bytes
from xml.sax.saxutils import escape

import botocore.session
from starlette.concurrency import run_in_threadpool as run
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from opensage.api.auth import PRINCIPAL
from opensage.api.authz import request_context, require, s3_denied
from opensage.api.error_encoding import rest_xml_error
from opensage.errors import (
    AccessDenied,
    AwsError,
    BadDigest,
    BucketAlreadyOwnedByYou,
    EntityTooLarge,
    InternalFailure,
    InvalidArgument,
    MalformedXML,
    MethodNotAllowed,
    NotModified,
    S3Error,
    S3NotImplemented,
)
from opensage.services.iam import IamService, Principal
from opensage.services.iam.bucket_policies import BucketPolicies, MalformedBucketPolicy
from opensage.settings import Settings
from opensage.store import checksums
from opensage.store.objects import (
    CHUNK,
    BlobWriter,
    CompletedPart,
    ObjectInfo,
    ObjectStore,
    iter_file,
    validate_key,
)

from . import s3_xml
from .s3_http import (
    SSE_HEADERS,
    Body,
    check_conditions,
    checksum_headers,
    copy_range,
    copy_source,
    decode_token,
    encode_token,
    int_param,
    meta_from_headers,
    object_headers,
    parse_range,
    request_checksum,
    response_overrides,
    sse_headers,
    sse_meta,
    unread_body,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Handler = Callable[[Request, str, str], Awaitable[Response]]
SMALL_OBJECT = 256 * 1024  # read in one go and answered without streaming
XML_LIMIT = 4 * 1024 * 1024
KEEPALIVE_AFTER = 2.0  # seconds before a slow Complete/Copy starts sending whitespace
# Subresources opensage does not implement: answered 501 rather than misread as a plain op
# (a PUT of an unknown subresource on a missing bucket would otherwise create it). Every
# subresource botocore's S3 model names, less those routed below, and a few query names that
# select a feature opensage lacks.
ROUTED = frozenset({"uploadId", "uploads", "location", "delete", "versioning", "list-type",
                    "x-id", "policy", "policyStatus"})
_SUBRESOURCES = ("uploadId", "uploads", "location", "delete", "versioning", "policy",
                 "policyStatus")


def _model_subresources() -> frozenset[str]:
    model = botocore.session.get_session().get_service_model("s3")
    names = set()
    for operation in model.operation_names:
        uri = model.operation_model(operation).http["requestUri"]
        for part in uri.partition("?")[2].split("&"):
            if part:
                names.add(part.split("=", 1)[0])
    return frozenset(names)


UNSUPPORTED = (_model_subresources() | {"versionId", "policyStatus", "restore", "select"}) - ROUTED


# handler -> the IAM action it needs (CopyObject: PutObject here, GetObject on the source)
_S3_ACTIONS = {
    "list_buckets": "s3:ListAllMyBuckets", "create_bucket": "s3:CreateBucket",
    "head_bucket": "s3:ListBucket", "get_bucket_location": "s3:GetBucketLocation",
    "versioning": "s3:GetBucketVersioning", "delete_bucket": "s3:DeleteBucket",
    "list_objects": "s3:ListBucket", "delete_objects": "s3:DeleteObject",
    "put_object": "s3:PutObject", "get_object": "s3:GetObject", "head_object": "s3:GetObject",
    "delete_object": "s3:DeleteObject", "copy_object": "s3:PutObject",
    "create_upload": "s3:PutObject", "upload_part": "s3:PutObject",
    "complete_upload": "s3:PutObject", "abort_upload": "s3:AbortMultipartUpload",
    "list_parts": "s3:ListMultipartUploadParts",
    "list_uploads": "s3:ListBucketMultipartUploads",
    "put_bucket_policy": "s3:PutBucketPolicy", "get_bucket_policy": "s3:GetBucketPolicy",
    "delete_bucket_policy": "s3:DeleteBucketPolicy",
    "get_bucket_policy_status": "s3:GetBucketPolicyStatus"}


class S3Api:
    _ids = itertools.count(1)
    _id_prefix = f"{os.getpid() & 0xFFFF:04X}{int.from_bytes(os.urandom(2)):04X}"

    def __init__(self, store: ObjectStore, settings: Settings,
                 iam: IamService | None = None,
                 bucket_policies: BucketPolicies | None = None) -> None:
        self.store = store
        self.iam = iam  # --auth sigv4: requests are authorised against it
        # stored under either --auth; evaluated (with the identity policies) under sigv4
        self.bucket_policies = bucket_policies
        self.account: str = settings.account_id
        self.region: str = settings.region
        self.max_bytes: int = settings.max_request_bytes

    async def __call__(self, request: Request) -> Response:
        rid = f"{self._id_prefix}{next(self._ids) & 0xFFFFFFFF:08X}"  # unique, not secret
        bucket = key = ""
        try:
            bucket, key = _locate(request)
            try:
                handler = self._route(request.method, bucket, key, request.query_params)
                _check_owner(request, "x-amz-expected-bucket-owner", self.account)
                caller: Principal | None = request.scope.get(PRINCIPAL)
                if caller is not None and caller.type != "Root" and self.iam is not None:
                    await run(self._authorise, caller, request, handler, bucket, key)
                response = await handler(request, bucket, key)
            except S3NotImplemented:
                if bucket:  # as S3: a bucket that does not exist first (404), then the 501
                    await run(self.store.head_bucket, bucket)
                raise
        except AwsError as err:
            response = _error(err, request, rid, bucket, key)
        except ClientDisconnect:
            response = Response(status_code=400)
        except Exception:
            log.exception("S3 %s %s failed", request.method, request.url.path)
            response = _error(InternalFailure("We encountered an internal error. Please try "
                                              "again.", code="InternalError"),
                              request, rid, bucket, key)
        response.headers["x-amz-request-id"] = rid
        response.headers["x-amz-id-2"] = rid
        if unread_body(request):
            response.headers["connection"] = "close"
        return response

    def _authorise(self, caller: Principal, request: Request, handler: Handler, bucket: str,
                   key: str) -> None:
        assert self.iam is not None
        name = getattr(handler, "__name__", "")
        action = _S3_ACTIONS.get(name, "s3:*")
        source = request.headers.get("x-amz-copy-source")
        q = request.query_params
        values: dict[str, Any] = {}
        if name == "list_objects":
            values = {"s3:prefix": q.get("prefix", ""), "s3:delimiter": q.get("delimiter"),
                      "s3:max-keys": q.get("max-keys")}
        context, _ = request_context(self.iam, caller,
                                     request.client.host if request.client else "", {})
        context.known.update({k: v for k, v in values.items() if v is not None})
        resource = ("*" if not bucket else f"arn:aws:s3:::{bucket}/{key}" if key
                    else f"arn:aws:s3:::{bucket}/*" if name == "delete_objects"
                    else f"arn:aws:s3:::{bucket}")
        require(self.iam, caller, action, resource, context, s3_denied)
        if source is not None and name in ("put_object", "upload_part"):
            src_bucket, src_key = copy_source(source)
            require(self.iam, caller, "s3:GetObject", f"arn:aws:s3:::{src_bucket}/{src_key}",
                    context, s3_denied)

    def _route(self, method: str, bucket: str, key: str, q: QueryParams) -> Handler:
        if not bucket:
            if method == "GET":
                return self.list_buckets
            raise MethodNotAllowed("The specified method is not allowed against this resource.",
                                   Method=method, ResourceType="SERVICE")
        if not key:
            table: dict[tuple[str, str], Handler] = {
                ("GET", "location"): self.get_bucket_location,
                ("GET", "uploads"): self.list_uploads, ("GET", "versioning"): self.versioning,
                ("POST", "delete"): self.delete_objects, ("GET", ""): self.list_objects,
                ("PUT", ""): self.create_bucket, ("HEAD", ""): self.head_bucket,
                ("DELETE", ""): self.delete_bucket, ("PUT", "policy"): self.put_bucket_policy,
                ("GET", "policy"): self.get_bucket_policy,
                ("DELETE", "policy"): self.delete_bucket_policy,
                ("GET", "policyStatus"): self.get_bucket_policy_status}
        else:
            table = {  # CopyObject / UploadPartCopy are told apart by x-amz-copy-source
                ("PUT", "uploadId"): self.upload_part, ("GET", "uploadId"): self.list_parts,
                ("DELETE", "uploadId"): self.abort_upload,
                ("POST", "uploadId"): self.complete_upload,
                ("POST", "uploads"): self.create_upload, ("PUT", ""): self.put_object,
                ("GET", ""): self.get_object, ("HEAD", ""): self.head_object,
                ("DELETE", ""): self.delete_object}
        sub = next((s for s in _SUBRESOURCES if s in q), "")
        if not sub and UNSUPPORTED.intersection(q.keys()):
            names = ", ".join(sorted(UNSUPPORTED.intersection(q.keys())))
            raise S3NotImplemented(f"opensage does not implement the {names} subresource",
                                   Method=method)
        handler = table.get((method, sub))
        if handler is None:
            raise MethodNotAllowed("The specified method is not allowed against this resource.",
                                   Method=method, ResourceType="OBJECT" if key else "BUCKET")
        return handler

    # -- buckets ---------------------------------------------------------------------------

    async def list_buckets(self, request: Request, bucket: str, key: str) -> Response:
        prefix = request.query_params.get("prefix", "")
        buckets = await run(self.store.list_buckets, prefix)
        return _xml(s3_xml.list_buckets(buckets, self.account, prefix))

    async def create_bucket(self, request: Request, bucket: str, key: str) -> Response:
        raw = await Body(request).read(XML_LIMIT)
        region = None
        if raw.strip():
            region = s3_xml.text(s3_xml.parse(raw), "LocationConstraint") or None
        try:
            await run(self.store.create_bucket, bucket, region)
        except BucketAlreadyOwnedByYou:
            # S3 keeps a legacy answer in us-east-1: re-creating your own bucket is a 200.
            if (await run(self.store.head_bucket, bucket)).region != "us-east-1":
                raise
        return Response(status_code=200, headers={"location": f"/{bucket}"})

    async def head_bucket(self, request: Request, bucket: str, key: str) -> Response:
        found = await run(self.store.head_bucket, bucket)
        return Response(status_code=200, headers={"x-amz-bucket-region": found.region,
                                                  "x-amz-access-point-alias": "false"})

    async def get_bucket_location(self, request: Request, bucket: str, key: str) -> Response:
        found = await run(self.store.head_bucket, bucket)
        region = "" if found.region == "us-east-1" else found.region
        return _xml(s3_xml.document("LocationConstraint", escape(region)))

    async def versioning(self, request: Request, bucket: str, key: str) -> Response:
        await run(self.store.head_bucket, bucket)
        return _xml(s3_xml.document("VersioningConfiguration", ""))

    async def delete_bucket(self, request: Request, bucket: str, key: str) -> Response:
        await run(self.store.delete_bucket, bucket)
        if self.bucket_policies is not None:
            self.bucket_policies.forget(bucket)  # its policy went with its row
        return Response(status_code=204)

    # -- bucket policies -------------------------------------------------------------------

    def _policies(self) -> BucketPolicies:
        if self.bucket_policies is None:
            raise S3NotImplemented("opensage does not implement the policy subresource here")
        return self.bucket_policies

    async def put_bucket_policy(self, request: Request, bucket: str, key: str) -> Response:
        policies = self._policies()
        body = Body(request)
        raw = await body.read(XML_LIMIT)
        _verify_small(request, raw, body.trailers)
        try:
            document = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedBucketPolicy("Policies must be valid JSON and the first byte must "
                                        "be '{'") from None
        await run(policies.put, bucket, document)
        return Response(status_code=204)

    async def get_bucket_policy(self, request: Request, bucket: str, key: str) -> Response:
        document = await run(self._policies().get, bucket)
        return Response(document.encode("utf-8"), status_code=200,
                        media_type="application/json")

    async def delete_bucket_policy(self, request: Request, bucket: str, key: str) -> Response:
        await run(self._policies().delete, bucket)
        return Response(status_code=204)

    async def get_bucket_policy_status(self, request: Request, bucket: str,
                                       key: str) -> Response:
        public = await run(self._policies().is_public, bucket)
        return _xml(s3_xml.document("PolicyStatus",
                                    f"<IsPublic>{'true' if public else 'false'}</IsPublic>"))

    async def list_objects(self, request: Request, bucket: str, key: str) -> Response:
        q = request.query_params
        v2 = q.get("list-type") == "2"
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        encoding = q.get("encoding-type", "")
        if encoding not in ("", "url"):
            raise InvalidArgument("Invalid Encoding Method specified in Request",
                                  ArgumentName="encoding-type", ArgumentValue=encoding)
        max_keys = min(int_param(q, "max-keys", 1000), 1000)
        token, start_after, marker = q.get("continuation-token"), q.get("start-after", ""), ""
        if v2:
            after = decode_token(token) if token is not None else start_after
        else:
            after = marker = q.get("marker", "")
        listing = await run(self.store.list_objects, bucket, prefix, delimiter, after, max_keys)
        next_token = (encode_token(listing.last)
                      if v2 and listing.is_truncated and listing.last else "")
        return _xml(s3_xml.list_objects(
            bucket, listing, v2=v2, prefix=prefix, delimiter=delimiter, max_keys=max_keys,
            encode=encoding == "url", account=self.account,
            fetch_owner=q.get("fetch-owner") == "true", marker=marker,
            start_after=start_after, token=token or "", next_token=next_token))

    async def delete_objects(self, request: Request, bucket: str, key: str) -> Response:
        body = Body(request)
        raw = await body.read(XML_LIMIT)
        _verify_small(request, raw, body.trailers)
        root = s3_xml.parse(raw)
        quiet = s3_xml.text(root, "Quiet").strip().lower() == "true"
        keys = [s3_xml.text(o, "Key") for o in root.findall("Object")]
        if not keys or len(keys) > 1000:
            raise MalformedXML("The XML you provided was not well-formed or did not validate "
                               "against our published schema")
        errors: list[tuple[str, AwsError]] = []
        valid = []
        for k in keys:
            try:
                validate_key(k)
                valid.append(k)
            except AwsError as err:
                errors.append((k, err))
        await run(self.store.delete_objects, bucket, valid)
        return _xml(s3_xml.delete_result(valid, errors, quiet))

    # -- objects ---------------------------------------------------------------------------

    async def put_object(self, request: Request, bucket: str, key: str) -> Response:
        if "x-amz-copy-source" in request.headers:
            return await self.copy_object(request, bucket, key)
        validate_key(key)
        headers = request.headers
        meta = meta_from_headers(headers, self.account, self.region)
        alg, expected = request_checksum(headers)
        body = self._body(request)
        if body.declared is None or body.declared > CHUNK:
            await run(self.store.head_bucket, bucket)  # fail before a big upload, not after

        def commit(w: BlobWriter) -> ObjectInfo:
            return self.store.commit_object(
                w, bucket, key, meta, content_md5=headers.get("content-md5"),
                checksum=expected or body.trailers.get(f"x-amz-checksum-{alg}"),
                if_none_match=headers.get("if-none-match"), if_match=headers.get("if-match"))

        info = await self._receive(body, bucket, alg, commit)
        return Response(status_code=200, headers={"etag": info.etag,
                                                  **checksum_headers(info.meta),
                                                  **sse_headers(info.meta)})

    async def get_object(self, request: Request, bucket: str, key: str) -> Response:
        return await self._get(request, bucket, key, head=False)

    async def head_object(self, request: Request, bucket: str, key: str) -> Response:
        return await self._get(request, bucket, key, head=True)

    async def _get(self, request: Request, bucket: str, key: str, head: bool) -> Response:
        headers, q = request.headers, request.query_params
        if "partNumber" in q:
            raise S3NotImplemented("opensage does not implement GetObject by partNumber")
        overrides = response_overrides(q)

        def work() -> tuple[ObjectInfo, tuple[int, int] | None, Any]:
            if head:
                info = self.store.head_object(bucket, key)
                check_conditions(info, headers)
                return info, parse_range(headers.get("range"), info.size), None
            info, f = self.store.open_object(bucket, key)
            try:
                check_conditions(info, headers)
                rng = parse_range(headers.get("range"), info.size)
                start, end = rng or (0, info.size - 1)
                if start:
                    f.seek(start)
                if end - start + 1 <= SMALL_OBJECT:
                    data = f.read(end - start + 1)
                    f.close()
                    return info, rng, data
                return info, rng, f
            except BaseException:
                f.close()
                raise

        try:
            info, rng, body = await run(work)
        except NotModified:
            info = await run(self.store.head_object, bucket, key)
            return Response(status_code=304, headers={"etag": info.etag,
                                                      "last-modified": s3_xml.http_date(
                                                          info.last_modified)})
        out = object_headers(info, overrides, checksum=rng is None and headers.get(
            "x-amz-checksum-mode", "").upper() == "ENABLED")
        start, end = rng or (0, info.size - 1)
        out["content-length"] = str(end - start + 1)
        status = 200
        if rng is not None:
            status = 206
            out["content-range"] = f"bytes {start}-{end}/{info.size}"
        if body is None or isinstance(body, bytes):
            return Response(body or b"", status_code=status, headers=out)
        return StreamingResponse(iter_file(body, end - start + 1), status_code=status,
                                 headers=out)

    async def delete_object(self, request: Request, bucket: str, key: str) -> Response:
        validate_key(key)  # a key no PUT could store: KeyTooLongError, not a silent 204
        await run(self.store.delete_object, bucket, key)
        return Response(status_code=204)

    async def copy_object(self, request: Request, bucket: str, key: str) -> Response:
        validate_key(key)
        headers = request.headers
        src_bucket, src_key = copy_source(headers["x-amz-copy-source"])
        _check_owner(request, "x-amz-source-expected-bucket-owner", self.account)
        directive = headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise InvalidArgument("Unknown metadata directive.",
                                  ArgumentName="x-amz-metadata-directive", ArgumentValue=directive)
        changes = {n: headers[h] for h, n in SSE_HEADERS.items() if h in headers}
        if "x-amz-storage-class" in headers:
            changes["StorageClass"] = headers["x-amz-storage-class"]

        def work() -> ObjectInfo:
            src = self.store.head_object(src_bucket, src_key)
            check_conditions(src, headers, prefix="x-amz-copy-source-")
            if directive == "REPLACE":
                meta = meta_from_headers(headers, self.account, self.region)
            else:
                if (src_bucket, src_key) == (bucket, key) and not changes:
                    raise S3Error("This copy request is illegal because it is trying to copy an "
                                  "object to itself without changing the object's metadata, "
                                  "storage class, website redirect location or encryption "
                                  "attributes.", code="InvalidRequest")
                meta = dict(src.meta)
                if any(n in changes for n in SSE_HEADERS.values()):
                    for n in SSE_HEADERS.values():
                        meta.pop(n, None)
                meta.update(changes)
                sse_meta(meta, self.account, self.region)
            return self.store.copy_object(src_bucket, src_key, bucket, key, meta)

        return await self._slow(work, lambda i: s3_xml.copy_result("CopyObjectResult", i),
                                lambda i: sse_headers(i.meta))

    # -- multipart -------------------------------------------------------------------------

    async def create_upload(self, request: Request, bucket: str, key: str) -> Response:
        validate_key(key)
        headers = request.headers
        meta = meta_from_headers(headers, self.account, self.region)
        try:
            alg = checksums.normalize(headers.get("x-amz-checksum-algorithm"))
        except ValueError:
            raise InvalidArgument("Checksum algorithm provided is unsupported.",
                                  ArgumentName="x-amz-checksum-algorithm") from None
        kind = headers.get("x-amz-checksum-type", "").upper()
        if kind not in ("", "COMPOSITE", "FULL_OBJECT") or (kind and not alg) or (
                kind == "FULL_OBJECT" and alg not in checksums.FULL_OBJECT_CAPABLE) or (
                kind == "COMPOSITE" and alg == "crc64nvme"):
            raise InvalidArgument("The checksum type and algorithm are not compatible.",
                                  code="InvalidRequest")
        if alg:
            meta["ChecksumAlgorithm"] = alg.upper()
            meta["ChecksumType"] = kind or ("FULL_OBJECT" if alg == "crc64nvme" else "COMPOSITE")
        upload = await run(self.store.create_multipart_upload, bucket, key, meta)
        out = sse_headers(meta)
        if alg:
            out.update({"x-amz-checksum-algorithm": alg.upper(),
                        "x-amz-checksum-type": meta["ChecksumType"]})
        return _xml(s3_xml.initiate_result(upload), headers=out)

    async def upload_part(self, request: Request, bucket: str, key: str) -> Response:
        q, headers = request.query_params, request.headers
        number = int_param(q, "partNumber", 0)
        upload = await run(self.store.get_upload, bucket, key, q["uploadId"])
        if "x-amz-copy-source" in headers:
            src_bucket, src_key = copy_source(headers["x-amz-copy-source"])
            _check_owner(request, "x-amz-source-expected-bucket-owner", self.account)
            rng = copy_range(headers.get("x-amz-copy-source-range"))

            def copy() -> Any:
                src = self.store.head_object(src_bucket, src_key)
                check_conditions(src, headers, prefix="x-amz-copy-source-")
                return self.store.upload_part_copy(bucket, key, upload.upload_id, number,
                                                   src_bucket, src_key, rng)

            return await self._slow(copy, lambda p: s3_xml.copy_result("CopyPartResult", p),
                                    lambda p: sse_headers(upload.meta))
        alg, expected = request_checksum(headers)
        alg = alg or checksums.normalize(upload.meta.get("ChecksumAlgorithm"))
        body = self._body(request)

        def commit(w: BlobWriter) -> Any:
            return self.store.commit_part(
                w, upload, number, content_md5=headers.get("content-md5"),
                checksum=expected or body.trailers.get(f"x-amz-checksum-{alg}"))

        part = await self._receive(body, bucket, alg, commit)
        out = {"etag": part.etag, **sse_headers(upload.meta)}
        if alg and part.checksum:
            out[f"x-amz-checksum-{alg}"] = part.checksum
        return Response(status_code=200, headers=out)

    async def complete_upload(self, request: Request, bucket: str, key: str) -> Response:
        body = Body(request)
        raw = await body.read(XML_LIMIT)
        # On Complete, x-amz-checksum-* is the whole object's checksum, not the body's.
        _verify_small(request, raw, body.trailers, flexible=False)
        parts = []
        try:
            for node in s3_xml.parse(raw).findall("Part"):
                value = next((c.text for c in node if c.tag.startswith("Checksum")
                              and c.tag != "ChecksumType" and c.text), None)
                parts.append(CompletedPart(int(s3_xml.text(node, "PartNumber")),
                                           s3_xml.text(node, "ETag"), value))
        except ValueError:
            raise MalformedXML("The XML you provided was not well-formed or did not validate "
                               "against our published schema") from None
        headers = request.headers
        location = f"{request.base_url}{quote(bucket)}/{quote(key)}"
        _, whole = request_checksum(headers)
        size = headers.get("x-amz-mp-object-size")
        if size is not None and not size.isdigit():
            raise InvalidArgument("x-amz-mp-object-size must be an integer",
                                  ArgumentName="x-amz-mp-object-size", ArgumentValue=size)

        def work() -> ObjectInfo:
            return self.store.complete_multipart_upload(
                bucket, key, request.query_params["uploadId"], parts,
                checksum_type=headers.get("x-amz-checksum-type"), checksum=whole,
                object_size=int(size) if size is not None else None,
                if_none_match=headers.get("if-none-match"), if_match=headers.get("if-match"))

        return await self._slow(work, lambda i: s3_xml.complete_result(location, i),
                                lambda i: sse_headers(i.meta))

    async def abort_upload(self, request: Request, bucket: str, key: str) -> Response:
        await run(self.store.abort_multipart_upload, bucket, key,
                  request.query_params["uploadId"])
        return Response(status_code=204)

    async def list_parts(self, request: Request, bucket: str, key: str) -> Response:
        q = request.query_params
        marker = int_param(q, "part-number-marker", 0)
        max_parts = min(int_param(q, "max-parts", 1000), 1000)
        upload, parts, truncated = await run(self.store.list_parts, bucket, key, q["uploadId"],
                                             marker, max_parts)
        return _xml(s3_xml.list_parts(upload, parts, truncated, marker, max_parts, self.account))

    async def list_uploads(self, request: Request, bucket: str, key: str) -> Response:
        q = request.query_params
        prefix, key_marker = q.get("prefix", ""), q.get("key-marker", "")
        id_marker = q.get("upload-id-marker", "")
        max_uploads = min(int_param(q, "max-uploads", 1000), 1000)
        uploads, truncated = await run(self.store.list_uploads, bucket, prefix, key_marker,
                                       id_marker, max_uploads)
        return _xml(s3_xml.list_uploads(
            bucket, uploads, truncated, prefix=prefix, key_marker=key_marker,
            upload_id_marker=id_marker, max_uploads=max_uploads, account=self.account,
            encode=q.get("encoding-type") == "url"))

    # -- plumbing --------------------------------------------------------------------------

    def _body(self, request: Request) -> Body:
        body = Body(request)
        if body.declared is not None and body.declared > self.max_bytes:
            raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size",
                                 ProposedSize=str(body.declared),
                                 MaxSizeAllowed=str(self.max_bytes))
        return body

    async def _receive(self, body: Body, bucket: str, alg: str | None,
                       commit: Callable[[BlobWriter], T]) -> T:
        """Stream the body into a fresh blob and ``commit`` it (one thread hop if small)."""
        chunks = body.chunks()
        first, done = await _collect(chunks)
        w = self.store.writer(bucket, alg)  # no I/O until the first write

        def small() -> T:
            try:
                w.write(first)
            except BaseException:
                w.discard()
                raise
            return commit(w)

        if done:
            return await run(small)
        try:
            await run(w.write, first)
            while not done:
                data, done = await _collect(chunks)
                if body.received > self.max_bytes:
                    raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size",
                                         MaxSizeAllowed=str(self.max_bytes))
                await run(w.write, data)
        except BaseException:
            await run(w.discard)
            raise
        return await run(commit, w)

    async def _slow(self, work: Callable[[], T], render: Callable[[T], bytes],
                    headers: Callable[[T], dict[str, str]]) -> Response:
        """Run ``work``; if it outlasts KEEPALIVE_AFTER, answer 200 at once and keep the
        connection alive with whitespace, ending with the result or an ``<Error>`` document,
        as S3 does for CompleteMultipartUpload and copies (botocore reads both)."""
        task = asyncio.ensure_future(run(work))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        done, _ = await asyncio.wait({task}, timeout=KEEPALIVE_AFTER)
        if done:
            result = task.result()
            return _xml(render(result), headers=headers(result))

        async def stream() -> AsyncIterator[bytes]:
            yield b'<?xml version="1.0" encoding="UTF-8"?>\n'
            while not (await asyncio.wait({task}, timeout=5))[0]:
                yield b" "
            try:
                doc = render(task.result())
            except AwsError as err:
                doc = rest_xml_error(err, "").body
            except Exception:
                log.exception("S3 slow operation failed")
                doc = rest_xml_error(InternalFailure("We encountered an internal error.",
                                                     code="InternalError"), "").body
            yield doc.split(b"\n", 1)[1]

        return StreamingResponse(stream(), status_code=200, media_type="application/xml")


async def _collect(chunks: AsyncIterator[bytes]) -> tuple[bytes, bool]:
    """About CHUNK bytes of the body, and whether the body ended."""
    parts: list[bytes] = []
    size = 0
    async for piece in chunks:
        parts.append(piece)
        size += len(piece)
        if size >= CHUNK:
            return b"".join(parts), False
    return b"".join(parts), True


def _xml(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers=headers, media_type="application/xml")


def _error(err: AwsError, request: Request, rid: str, bucket: str, key: str) -> Response:
    resource = "/" + "/".join(p for p in (bucket, key) if p)
    answer = rest_xml_error(err, rid, resource=resource)
    if request.method == "HEAD" or err.status == 304:
        answer = answer.without_body()
    return answer.response()


def _locate(request: Request) -> tuple[str, str]:
    """(bucket, key) of a path-style URL, or of a ``<bucket>.localhost`` virtual host."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        path = unquote_to_bytes(raw.split(b"?", 1)[0]).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("Couldn't parse the specified URI.", code="InvalidURI") from None
    host = request.headers.get("host", "")
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.endswith(".localhost") and host != ".localhost":
        return host[: -len(".localhost")], path[1:]
    bucket, _, key = path[1:].partition("/")
    return bucket, key


def _check_owner(request: Request, header: str, account: str) -> None:
    owner = request.headers.get(header)
    if owner is not None and owner != account:
        raise AccessDenied("Access Denied")












def _verify_small(request: Request, raw: bytes, trailers: dict[str, str],
                  flexible: bool = True) -> None:
    """Content-MD5 and flexible checksum of a small (XML) request body."""
    md5 = request.headers.get("content-md5")
    if md5 and base64.b64encode(hashlib.md5(raw).digest()).decode() != md5:
        raise BadDigest("The Content-MD5 you specified did not match what was received.")
    if not flexible:
        return
    alg, expected = request_checksum(request.headers)
    expected = expected or (trailers.get(f"x-amz-checksum-{alg}") if alg else None)
    if alg and expected:
        computed = checksums.compute(alg, raw)
        if computed is not None and computed != expected:
            raise BadDigest(f"The {alg.upper()} you specified did not match the calculated "
                            "checksum.")

