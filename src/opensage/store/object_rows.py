"""S3 metadata rows: buckets and objects as records, names checked, read and upserted in a
transaction the caller holds. Shared by the object store and its multipart uploads."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from opensage.errors import (
    InvalidArgument,
    InvalidBucketName,
    KeyTooLongError,
    NoSuchBucket,
    NoSuchKey,
    PreconditionFailed,
)
from opensage.store.schema import s3_buckets, s3_objects

MAX_KEY_BYTES = 1024
TOP = "\U0010ffff"  # sorts after any character a key holds: the upper end of a prefix range
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
# Hot statements built once (building a SQLAlchemy expression costs more than running it).
_GET_BUCKET = select(s3_buckets).where(s3_buckets.c.name == bindparam("b"))
_GET_OBJECT = select(s3_objects).where((s3_objects.c.bucket == bindparam("b"))
                                       & (s3_objects.c.key == bindparam("k")))


def validate_bucket_name(name: str) -> None:
    """S3's general-purpose bucket naming rules; raises InvalidBucketName."""
    if (not _BUCKET_RE.match(name) or ".." in name or _IPV4_RE.match(name)
            or name.startswith(("xn--", "sthree-"))
            or name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3"))):
        raise InvalidBucketName("The specified bucket is not valid.", BucketName=name)


def validate_key(key: str) -> None:
    if not key:
        raise InvalidArgument("Object key must not be empty.")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise KeyTooLongError("Your key is too long", Key=key[:64])


@dataclass(frozen=True)
class Bucket:
    name: str
    creation_time: float
    region: str


@dataclass(frozen=True)
class ObjectInfo:
    """One object's metadata. ``meta`` uses S3's member names: ContentType, ContentEncoding,
    ContentDisposition, CacheControl, ContentLanguage, Expires, Metadata (user, a dict),
    ServerSideEncryption, SSEKMSKeyId, BucketKeyEnabled, StorageClass, ChecksumAlgorithm
    (upper case), Checksum (base64), ChecksumType, PartsCount."""

    bucket: str
    key: str
    size: int
    etag: str  # quoted, as S3 answers it
    last_modified: float
    meta: dict[str, Any]
    blob: str

    @property
    def checksum(self) -> tuple[str, str] | None:
        """(lower-case algorithm, base64 value) or None."""
        alg, value = self.meta.get("ChecksumAlgorithm"), self.meta.get("Checksum")
        return (alg.lower(), value) if alg and value else None


def etag_unquoted(etag: str) -> str:
    return etag.strip().strip('"')


def bucket_row(conn: Connection, name: str) -> Any:
    return conn.execute(_GET_BUCKET, {"b": name}).first()


def require_bucket(conn: Connection, name: str) -> Bucket:
    row = bucket_row(conn, name)
    if row is None:
        raise NoSuchBucket("The specified bucket does not exist", BucketName=name)
    return Bucket(row.name, row.creation_time, row.region)


def object_info(row: Any) -> ObjectInfo:
    return ObjectInfo(row.bucket, row.key, row.size, row.etag, row.last_modified,
                      row.meta or {}, row.blob)


def require_object(conn: Connection, bucket: str, key: str) -> ObjectInfo:
    row = conn.execute(_GET_OBJECT, {"b": bucket, "k": key}).first()
    if row is None:
        require_bucket(conn, bucket)
        raise NoSuchKey("The specified key does not exist.", Key=key)
    return object_info(row)


def upsert_object(conn: Connection, bucket: str, key: str, blob: str, size: int, etag: str,
                  meta: dict[str, Any], if_none_match: str | None = None,
                  if_match: str | None = None) -> tuple[ObjectInfo, str | None]:
    """Point ``key`` at ``blob`` (conditions checked on the locked row); returns the new
    metadata and the blob it replaced, which the caller deletes once this commits."""
    require_bucket(conn, bucket)
    where = (s3_objects.c.bucket == bucket) & (s3_objects.c.key == key)
    row = conn.execute(select(s3_objects.c.blob, s3_objects.c.etag).where(where)
                       .with_for_update()).first()
    if if_none_match is not None and row is not None and (
            if_none_match.strip() == "*" or etag_unquoted(if_none_match) ==
            etag_unquoted(row.etag)):
        raise PreconditionFailed("At least one of the pre-conditions you specified did not "
                                 "hold", Condition="If-None-Match")
    if if_match is not None:
        if row is None:
            raise NoSuchKey("The specified key does not exist.", Key=key)
        if if_match.strip() != "*" and etag_unquoted(if_match) != etag_unquoted(row.etag):
            raise PreconditionFailed("At least one of the pre-conditions you specified did "
                                     "not hold", Condition="If-Match")
    info = ObjectInfo(bucket, key, size, etag, time.time(), meta, blob)
    values = {"blob": blob, "size": size, "etag": etag,
              "last_modified": info.last_modified, "meta": meta}
    if row is None:
        conn.execute(insert(s3_objects).values(bucket=bucket, key=key, **values))
        return info, None
    conn.execute(update(s3_objects).where(where).values(**values))
    return info, row.blob
