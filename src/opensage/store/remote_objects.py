"""What the runner needs of an object store, and that part over S3's HTTP API.

On the server the runner uses :class:`opensage.store.objects.ObjectStore` directly. A host
that runs on another machine (a Ray node) must not read the server's disk: it reaches the
same objects through the server's S3 facade (or any S3 endpoint) with
:class:`RemoteObjects`, which answers the same few calls, so ``channels.materialize``,
``checkpoints.CheckpointSync`` and ``artifacts.pack_and_upload`` run unchanged there, and a
model worker on a Ray node fetches its model the same way (``serving.artifacts``).
"""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from opensage.errors import AwsError
from opensage.store.objects import Listing, ObjectInfo


class ObjectAccess(Protocol):
    def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                     start_after: str = "", max_keys: int = 1000) -> Listing: ...

    def head_object(self, bucket: str, key: str) -> ObjectInfo: ...

    def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, IO[bytes]]: ...

    def read_object(self, bucket: str, key: str,
                    byte_range: tuple[int, int] | None = None) -> bytes: ...

    def local_path(self, bucket: str, key: str) -> Path | None: ...

    def put_object(self, bucket: str, key: str,
                   body: bytes | IO[bytes] | Iterable[bytes], *,
                   meta: dict[str, Any] | None = None, content_md5: str | None = None,
                   checksum_algorithm: str | None = None, checksum: str | None = None,
                   if_none_match: str | None = None,
                   if_match: str | None = None) -> ObjectInfo: ...


@dataclass(frozen=True)
class S3Endpoint:
    """Where a remote host reaches the objects: an S3 endpoint URL, its region and keys.

    Under ``--auth sigv4`` the keys are a session the server issued for the one job or
    instance (``with_credentials``): its role's, or a short-lived one of the server's own;
    ``--auth none`` takes any keys. The keys never show in a repr (nor in a log)."""

    url: str
    region: str
    access_key: str = field(default="opensage", repr=False)
    secret_key: str = field(default="opensage", repr=False)
    session_token: str | None = field(default=None, repr=False)

    def with_credentials(self, environment: Mapping[str, str]) -> S3Endpoint:
        """This endpoint signing with the session in ``environment`` (``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, as a job's code is given it)."""
        return replace(self, access_key=environment["AWS_ACCESS_KEY_ID"],
                       secret_key=environment["AWS_SECRET_ACCESS_KEY"],
                       session_token=environment.get("AWS_SESSION_TOKEN"))

    def reached_from(self) -> str:
        """This machine's address on the interface that routes to the endpoint: where the
        server (and the other hosts of a job) reach a host or model instance on this node.
        No packet is sent (a UDP socket's connect only picks the route)."""
        host = urlsplit(self.url).hostname or "127.0.0.1"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((host, 9))
                return str(sock.getsockname()[0])
            except OSError:
                return "127.0.0.1"


class RemoteObjects:
    """:class:`ObjectAccess` through an S3 endpoint (botocore, a dependency of opensage)."""

    def __init__(self, endpoint: S3Endpoint) -> None:
        import botocore.config
        import botocore.session

        self.endpoint = endpoint
        session = botocore.session.get_session()
        self._client: Any = session.create_client(
            "s3", endpoint_url=endpoint.url, region_name=endpoint.region,
            aws_access_key_id=endpoint.access_key,
            aws_secret_access_key=endpoint.secret_key,
            aws_session_token=endpoint.session_token,
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 5, "mode": "standard"}))

    def _call(self, operation: str, **params: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return getattr(self._client, operation)(**params)
        except ClientError as err:
            error = err.response.get("Error", {})
            code = str(error.get("Code") or "InternalError")
            if code in ("404", "NoSuchKey", "NotFound"):
                code = "NoSuchKey"
            elif code in ("403", "Forbidden"):  # a HEAD's denial has no body
                code = "AccessDenied"
            raise AwsError(str(error.get("Message") or code), code=code) from None

    def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                     start_after: str = "", max_keys: int = 1000) -> Listing:
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if delimiter:
            params["Delimiter"] = delimiter
        if start_after:
            params["StartAfter"] = start_after
        page = self._call("list_objects_v2", **params)
        found = [ObjectInfo(bucket, item["Key"], int(item["Size"]), item.get("ETag", ""),
                            item["LastModified"].timestamp(), {}, "")
                 for item in page.get("Contents", [])]
        prefixes = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        entries = [o.key for o in found] + prefixes
        return Listing(found, prefixes, bool(page.get("IsTruncated")),
                       max(entries) if entries else None)

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        head = self._call("head_object", Bucket=bucket, Key=key)
        return ObjectInfo(bucket, key, int(head["ContentLength"]), head.get("ETag", ""),
                          head["LastModified"].timestamp(), {}, "")

    def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, IO[bytes]]:
        got = self._call("get_object", Bucket=bucket, Key=key)
        info = ObjectInfo(bucket, key, int(got["ContentLength"]), got.get("ETag", ""),
                          got["LastModified"].timestamp(), {}, "")
        return info, io.BufferedReader(_Stream(got["Body"]), 1 << 20)

    def read_object(self, bucket: str, key: str,
                    byte_range: tuple[int, int] | None = None) -> bytes:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if byte_range is not None:
            params["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        body: bytes = self._call("get_object", **params)["Body"].read()
        return body

    def local_path(self, bucket: str, key: str) -> Path | None:
        return None  # never the server's disk

    def put_object(self, bucket: str, key: str,
                   body: bytes | IO[bytes] | Iterable[bytes], *,
                   meta: dict[str, Any] | None = None, content_md5: str | None = None,
                   checksum_algorithm: str | None = None, checksum: str | None = None,
                   if_none_match: str | None = None,
                   if_match: str | None = None) -> ObjectInfo:
        """One PUT (the facade publishes the object only once complete)."""
        if not isinstance(body, (bytes, io.IOBase)) and not hasattr(body, "read"):
            body = b"".join(body)
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body}
        if meta and meta.get("ContentType"):
            params["ContentType"] = meta["ContentType"]
        self._call("put_object", **params)
        size = (len(body) if isinstance(body, bytes)
                else os.fstat(body.fileno()).st_size if hasattr(body, "fileno") else 0)
        return ObjectInfo(bucket, key, size, "", time.time(), dict(meta or {}), "")


class _Stream(io.RawIOBase):
    """A botocore streaming body as a binary file."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()
