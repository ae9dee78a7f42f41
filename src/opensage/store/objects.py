"""S3 buckets and objects: metadata rows in the database, bytes as opaque blobs.

The store is built from one URL (a directory, or any fsspec URL such as ``s3://`` or
``memory://``): :func:`~opensage.store.blobs.open_blobs` chooses the blob storage once, and
nothing here depends on which. Every object's bytes are one immutable blob named
``<bucket>/<2 hex>/<32 hex>``, never a path derived from the key: "a" and "a/b" coexist and no
key (``../x``) can escape the store. A write streams into a pending blob (with its MD5 and
checksum computed on the way), is published, and becomes visible only when the metadata row
commits; the blob it replaced is deleted after that. A crash leaves at worst an unreferenced
blob, never a half object.

Blobs are never modified in place, so :meth:`ObjectStore.local_path` may be hard-linked (and
``CopyObject`` hard-links on a local store). Multipart uploads live in
:mod:`opensage.store.multipart`; the methods here delegate to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from opensage.errors import BucketAlreadyOwnedByYou, BucketNotEmpty, NoSuchBucket, NoSuchKey
from opensage.store.blob_writer import CHUNK, BlobWriter, filled_writer, iter_file
from opensage.store.blobs import Blobs, new_blob_name, open_blobs
from opensage.store.db import Database
from opensage.store.multipart import (
    MAX_PARTS,
    MIN_PART_SIZE,
    CompletedPart,
    MultipartUploads,
    Part,
    Upload,
    delete_bucket_uploads,
)
from opensage.store.object_rows import (
    MAX_KEY_BYTES,
    TOP,
    Bucket,
    ObjectInfo,
    bucket_row,
    object_info,
    require_bucket,
    require_object,
    upsert_object,
    validate_bucket_name,
    validate_key,
)
from opensage.store.schema import s3_buckets, s3_objects, s3_parts, s3_uploads

__all__ = [
    "CHUNK", "MAX_KEY_BYTES", "MAX_PARTS", "MIN_PART_SIZE", "BlobWriter", "Bucket",
    "CompletedPart", "Listing", "ObjectInfo", "ObjectStore", "Part", "Upload", "iter_file",
    "validate_bucket_name", "validate_key",
]

_BATCH = 500  # keys per IN (...) clause


@dataclass(frozen=True)
class Listing:
    objects: list[ObjectInfo]
    common_prefixes: list[str]
    is_truncated: bool
    last: str | None  # the last key or common prefix answered: where the next page starts


class ObjectStore:
    """The S3 data model, synchronous; the S3 facade and the training runner both use it."""

    def __init__(self, url: str, db: Database, region: str, *, fsync: bool = True) -> None:
        self.url, self.db, self.region = url, db, region
        self.blobs: Blobs = open_blobs(url, fsync=fsync)
        self._lock = threading.Lock()  # serialises this process's metadata swaps
        self.multipart = MultipartUploads(db, self.blobs, self._lock, self.open_object)
        key = s3_objects.c.key
        # Keys sort by code point (= UTF-8 bytes), as S3 lists them, on every database.
        self._key = key.collate("C") if db.engine.dialect.name == "postgresql" else key

    # -- buckets ---------------------------------------------------------------------------

    def create_bucket(self, name: str, region: str | None = None) -> Bucket:
        validate_bucket_name(name)
        bucket = Bucket(name, time.time(), region or self.region)
        try:
            with self.db.transaction() as conn:
                if bucket_row(conn, name) is not None:
                    raise BucketAlreadyOwnedByYou(
                        "Your previous request to create the named bucket succeeded and you "
                        "already own it.", BucketName=name)
                conn.execute(insert(s3_buckets).values(
                    name=name, creation_time=bucket.creation_time, region=bucket.region))
        except IntegrityError:
            raise BucketAlreadyOwnedByYou("Your previous request to create the named bucket "
                                          "succeeded and you already own it.",
                                          BucketName=name) from None
        return bucket

    def head_bucket(self, name: str) -> Bucket:
        with self.db.engine.connect() as conn:
            return require_bucket(conn, name)

    def list_buckets(self, prefix: str = "") -> list[Bucket]:
        q = select(s3_buckets).order_by(s3_buckets.c.name)
        if prefix:
            q = q.where(s3_buckets.c.name.startswith(prefix, autoescape=True))
        with self.db.engine.connect() as conn:
            return [Bucket(r.name, r.creation_time, r.region) for r in conn.execute(q)]

    def delete_bucket(self, name: str) -> None:
        with self._lock, self.db.transaction() as conn:
            require_bucket(conn, name)
            if conn.execute(select(exists().where(s3_objects.c.bucket == name))).scalar():
                raise BucketNotEmpty("The bucket you tried to delete is not empty",
                                     BucketName=name)
            blobs = delete_bucket_uploads(conn, name)
            conn.execute(delete(s3_buckets).where(s3_buckets.c.name == name))
        for blob in blobs:
            self.blobs.delete(blob)
        self.blobs.forget_bucket(name)

    def bucket_policy(self, name: str) -> str | None:
        """The bucket's policy document, None if it has none (NoSuchBucket if no bucket)."""
        with self.db.engine.connect() as conn:
            row = bucket_row(conn, name)
        if row is None:
            raise NoSuchBucket("The specified bucket does not exist", BucketName=name)
        policy: str | None = row.policy
        return policy

    def set_bucket_policy(self, name: str, document: str | None) -> None:
        """Store (None: remove) the bucket's policy document; NoSuchBucket if no bucket."""
        with self.db.transaction() as conn:
            require_bucket(conn, name)
            conn.execute(update(s3_buckets).where(s3_buckets.c.name == name)
                         .values(policy=document))

    # -- objects ---------------------------------------------------------------------------

    def writer(self, bucket: str, checksum_algorithm: str | None = None, *,
               md5: bool = True) -> BlobWriter:
        """A fresh blob to stream an object's (or a part's) bytes into."""
        return BlobWriter(self.blobs, bucket, checksum_algorithm, md5)

    def filled_writer(self, bucket: str, checksum_algorithm: str | None,
                      body: bytes | IO[bytes] | Iterable[bytes]) -> BlobWriter:
        """A new blob holding all of ``body`` (streamed); discarded if reading it fails."""
        return filled_writer(self.blobs, bucket, checksum_algorithm, body)

    def put_object(self, bucket: str, key: str,
                   body: bytes | IO[bytes] | Iterable[bytes], *,
                   meta: dict[str, Any] | None = None, content_md5: str | None = None,
                   checksum_algorithm: str | None = None, checksum: str | None = None,
                   if_none_match: str | None = None, if_match: str | None = None) -> ObjectInfo:
        """Store an object from bytes, a binary file or an iterator of chunks (streamed)."""
        validate_key(key)
        self.head_bucket(bucket)
        w = self.filled_writer(bucket, checksum_algorithm, body)
        return self.commit_object(w, bucket, key, meta or {}, content_md5=content_md5,
                                  checksum=checksum, if_none_match=if_none_match,
                                  if_match=if_match)

    def commit_object(self, w: BlobWriter, bucket: str, key: str, meta: dict[str, Any], *,
                      content_md5: str | None = None, checksum: str | None = None,
                      if_none_match: str | None = None,
                      if_match: str | None = None) -> ObjectInfo:
        """Verify the written bytes, publish the blob and make it the object ``key``."""
        try:
            validate_key(key)
            w.close()
            w.verify(content_md5, checksum)
            meta = {k: v for k, v in meta.items()
                    if k not in ("ChecksumAlgorithm", "Checksum", "ChecksumType", "PartsCount")}
            value = w.checksum or checksum
            if w.algorithm and value:
                meta.update(ChecksumAlgorithm=w.algorithm.upper(), Checksum=value,
                            ChecksumType="FULL_OBJECT")
            w.publish()
            return self._upsert(bucket, key, w.name, w.size, w.etag, meta,
                                if_none_match=if_none_match, if_match=if_match)
        except BaseException:
            w.discard()
            raise

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        with self.db.engine.connect() as conn:
            return require_object(conn, bucket, key)

    def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, IO[bytes]]:
        """The object's metadata and its bytes as a binary file (the caller closes it)."""
        for _attempt in range(5):
            info = self.head_object(bucket, key)
            try:
                return info, self.blobs.open_read(info.blob)
            except FileNotFoundError:  # replaced between the row read and the open: re-read
                continue
        raise NoSuchKey("The specified key does not exist.", Key=key)

    def read_object(self, bucket: str, key: str,
                    byte_range: tuple[int, int] | None = None) -> bytes:
        """All bytes, or those of the inclusive ``byte_range`` (clipped to the object)."""
        info, f = self.open_object(bucket, key)
        with f:
            if byte_range is None:
                return f.read()
            start, end = byte_range
            f.seek(start)
            return f.read(max(0, min(end, info.size - 1) - start + 1))

    def local_path(self, bucket: str, key: str) -> Path | None:
        """The blob's local file (never modify it: link or copy it), None for a remote store."""
        return self.blobs.local_path(self.head_object(bucket, key).blob)

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete ``key``; True if it existed (S3 answers 204 either way)."""
        return bool(self.delete_objects(bucket, [key]))

    def delete_objects(self, bucket: str, keys: list[str]) -> list[str]:
        """Delete many keys in one transaction; returns those that existed."""
        with self._lock, self.db.transaction() as conn:
            require_bucket(conn, bucket)
            found: list[tuple[str, str]] = []
            for i in range(0, len(keys), _BATCH):
                batch = keys[i:i + _BATCH]
                where = (s3_objects.c.bucket == bucket) & s3_objects.c.key.in_(batch)
                found += [(r.key, r.blob) for r in conn.execute(
                    select(s3_objects.c.key, s3_objects.c.blob).where(where).with_for_update())]
                conn.execute(delete(s3_objects).where(where))
        for _key, blob in found:
            self.blobs.delete(blob)
        return [k for k, _ in found]

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str,
                    meta: dict[str, Any] | None = None) -> ObjectInfo:
        """Copy bytes; ``meta`` None keeps the source's metadata (S3's COPY directive)."""
        validate_key(dst_key)
        self.head_bucket(dst_bucket)
        for _attempt in range(5):
            src = self.head_object(src_bucket, src_key)
            new_meta = dict(src.meta if meta is None else meta)
            for name in ("ChecksumAlgorithm", "Checksum", "ChecksumType"):
                new_meta.pop(name, None)
                if name in src.meta:
                    new_meta[name] = src.meta[name]
            new_meta.pop("PartsCount", None)
            if "-" in src.etag:  # a multipart source: the copy is one part, re-hashed
                try:
                    _, f = self.open_object(src_bucket, src_key)
                except NoSuchKey:
                    continue
                alg = (src.meta.get("ChecksumAlgorithm") or "").lower() or None
                with f:
                    w = self.filled_writer(dst_bucket, alg, f)
                return self.commit_object(w, dst_bucket, dst_key, new_meta)
            blob = new_blob_name(dst_bucket)
            try:
                self.blobs.clone(src.blob, blob)
            except FileNotFoundError:  # the source was replaced meanwhile: look again
                continue
            try:
                return self._upsert(dst_bucket, dst_key, blob, src.size, src.etag, new_meta)
            except BaseException:
                self.blobs.delete(blob)
                raise
        raise NoSuchKey("The specified key does not exist.", Key=src_key)

    def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                     start_after: str = "", max_keys: int = 1000) -> Listing:
        """One page of keys (and common prefixes) after ``start_after``, in UTF-8 order."""
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        skip: str | None = None  # a common prefix already answered: its keys are skipped
        if delimiter and start_after.startswith(prefix):
            i = start_after.find(delimiter, len(prefix))
            if i >= 0:
                skip = start_after[:i + len(delimiter)]
        lower, inclusive = (prefix, True) if start_after < prefix else (start_after, False)
        truncated = False
        with self.db.engine.connect() as conn:
            require_bucket(conn, bucket)
            while True:
                rows = list(conn.execute(self._scan(bucket, prefix, lower, inclusive,
                                                    min(max_keys + 1, 1001))))
                jumped = False
                for row in rows:
                    key = row.key
                    if not key.startswith(prefix) or (skip and key.startswith(skip)):
                        continue
                    cut = key.find(delimiter, len(prefix)) if delimiter else -1
                    if len(objects) + len(prefixes) >= max_keys:
                        truncated = True
                        break
                    if cut >= 0:
                        skip = key[:cut + len(delimiter)]
                        prefixes.append(skip)
                        lower, inclusive, jumped = skip + TOP, True, True
                        break
                    objects.append(object_info(row))
                if truncated or (not jumped and len(rows) < min(max_keys + 1, 1001)):
                    break
                if not jumped:
                    lower, inclusive = rows[-1].key, False
        entries = [o.key for o in objects] + prefixes
        return Listing(objects, prefixes, truncated, max(entries) if entries else None)

    # -- multipart (opensage.store.multipart) ------------------------------------------------

    def create_multipart_upload(self, bucket: str, key: str,
                                meta: dict[str, Any] | None = None) -> Upload:
        return self.multipart.create(bucket, key, meta)

    def get_upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        return self.multipart.get(bucket, key, upload_id)

    def upload_part(self, bucket: str, key: str, upload_id: str, part_number: int,
                    body: bytes | IO[bytes] | Iterable[bytes], *,
                    content_md5: str | None = None, checksum: str | None = None) -> Part:
        return self.multipart.upload_part(bucket, key, upload_id, part_number, body,
                                          content_md5=content_md5, checksum=checksum)

    def commit_part(self, w: BlobWriter, upload: Upload, part_number: int, *,
                    content_md5: str | None = None, checksum: str | None = None) -> Part:
        return self.multipart.commit_part(w, upload, part_number, content_md5=content_md5,
                                          checksum=checksum)

    def upload_part_copy(self, bucket: str, key: str, upload_id: str, part_number: int,
                         src_bucket: str, src_key: str,
                         byte_range: tuple[int, int] | None = None) -> Part:
        return self.multipart.upload_part_copy(bucket, key, upload_id, part_number,
                                               src_bucket, src_key, byte_range)

    def list_parts(self, bucket: str, key: str, upload_id: str, part_number_marker: int = 0,
                   max_parts: int = 1000) -> tuple[Upload, list[Part], bool]:
        return self.multipart.list_parts(bucket, key, upload_id, part_number_marker, max_parts)

    def list_uploads(self, bucket: str, prefix: str = "", key_marker: str = "",
                     upload_id_marker: str = "", max_uploads: int = 1000
                     ) -> tuple[list[Upload], bool]:
        return self.multipart.list_uploads(bucket, prefix, key_marker, upload_id_marker,
                                           max_uploads)

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str,
                                  parts: list[CompletedPart], *,
                                  checksum_type: str | None = None,
                                  checksum: str | None = None,
                                  object_size: int | None = None,
                                  if_none_match: str | None = None,
                                  if_match: str | None = None) -> ObjectInfo:
        return self.multipart.complete(bucket, key, upload_id, parts,
                                       checksum_type=checksum_type, checksum=checksum,
                                       object_size=object_size, if_none_match=if_none_match,
                                       if_match=if_match)

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.multipart.abort(bucket, key, upload_id)

    # -- maintenance -----------------------------------------------------------------------

    def wipe(self) -> None:
        """Forget every bucket, object and upload (rows and blobs)."""
        with self._lock:
            with self.db.transaction() as conn:
                for table in (s3_parts, s3_uploads, s3_objects, s3_buckets):
                    conn.execute(delete(table))
            self.blobs.wipe()

    # -- internals -------------------------------------------------------------------------

    def _scan(self, bucket: str, prefix: str, lower: str, inclusive: bool, limit: int) -> Any:
        k = self._key
        q = select(s3_objects).where(s3_objects.c.bucket == bucket)
        q = q.where(k >= lower if inclusive else k > lower)
        if prefix:
            q = q.where(k < prefix + TOP)
        return q.order_by(k).limit(limit)

    def _upsert(self, bucket: str, key: str, blob: str, size: int, etag: str,
                meta: dict[str, Any], *, if_none_match: str | None = None,
                if_match: str | None = None) -> ObjectInfo:
        for attempt in range(2):
            try:
                with self._lock, self.db.transaction() as conn:
                    info, old = upsert_object(conn, bucket, key, blob, size, etag, meta,
                                              if_none_match, if_match)
                break
            except IntegrityError:  # another process inserted the key first: now update it
                if attempt:
                    raise
        if old is not None:
            self.blobs.delete(old)
        return info
