"""S3 buckets and objects: metadata rows in the database, bytes as opaque blobs in fsspec.

Every object's bytes are one immutable blob named ``<bucket>/<2 hex>/<32 hex>``, never a path
derived from the key: "a" and "a/b" coexist and no key (``../x``) can escape the store. A write
streams into a temporary blob (with its MD5 and checksum computed on the way), is renamed to its
final name, and becomes visible only when the metadata row commits; the blob it replaced is
deleted after that. A crash leaves at worst an unreferenced blob, never a half object.

Blobs are never modified in place, so :meth:`ObjectStore.local_path` may be hard-linked (and
``CopyObject`` hard-links on a local store).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import os
import re
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem
from sqlalchemy import Connection, bindparam, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from opensage.errors import (
    BadDigest,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooSmall,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidPart,
    InvalidPartOrder,
    KeyTooLongError,
    MalformedXML,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    PreconditionFailed,
)
from opensage.store import checksums
from opensage.store.db import Database
from opensage.store.schema import s3_buckets, s3_objects, s3_parts, s3_uploads

CHUNK = 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
MAX_KEY_BYTES = 1024
_TMP = ".tmp"
_TOP = "\U0010ffff"  # sorts after any character a key holds: the upper end of a prefix range
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_BATCH = 500  # keys per IN (...) clause
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


@dataclass(frozen=True)
class Listing:
    objects: list[ObjectInfo]
    common_prefixes: list[str]
    is_truncated: bool
    last: str | None  # the last key or common prefix answered: where the next page starts


@dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    meta: dict[str, Any]


@dataclass(frozen=True)
class Part:
    part_number: int
    size: int
    etag: str
    last_modified: float
    checksum: str | None
    blob: str = field(repr=False)


@dataclass(frozen=True)
class CompletedPart:
    """One ``<Part>`` of a CompleteMultipartUpload request."""

    part_number: int
    etag: str
    checksum: str | None = None


class _Blobs:
    """Opaque blob names -> bytes in one fsspec filesystem (plain ``os`` calls when local)."""

    def __init__(self, url: str, fsync: bool) -> None:
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        if protocol in ("s3", "s3a") and importlib.util.find_spec("s3fs") is None:
            raise RuntimeError(f"object store {url!r} needs s3fs: pip install 'opensage[s3]'")
        fs, root = fsspec.core.url_to_fs(url)
        self.fs, self.root = fs, root.rstrip("/")
        self.local = isinstance(fs, LocalFileSystem)
        self.fsync = fsync
        if self.local:
            os.makedirs(self.path(_TMP), exist_ok=True)
            self._sweep_tmp(max_age=3600)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    @staticmethod
    def new_name(bucket: str) -> str:
        u = uuid.uuid4().hex
        return f"{bucket}/{u[:2]}/{u}"

    def temp_name(self, final: str) -> str:
        # Remote stores publish a blob only when the upload ends: write the final name directly.
        return f"{_TMP}/{uuid.uuid4().hex}" if self.local else final

    def open_write(self, name: str) -> IO[bytes]:
        if self.local:
            return open(self.path(name), "wb")
        f: IO[bytes] = self.fs.open(self.path(name), "wb")
        return f

    def finish_write(self, f: IO[bytes]) -> None:
        if self.local and self.fsync:
            f.flush()
            os.fsync(f.fileno())
        f.close()

    def promote(self, temp: str, final: str) -> None:
        if temp == final:
            return
        target = self.path(final)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(self.path(temp), target)

    def open_read(self, name: str) -> IO[bytes]:
        if self.local:
            return open(self.path(name), "rb")
        f: IO[bytes] = self.fs.open(self.path(name), "rb")
        return f

    def delete(self, name: str) -> None:
        try:
            if self.local:
                os.unlink(self.path(name))
            else:
                self.fs.rm(self.path(name))
        except FileNotFoundError:
            pass

    def clone(self, src: str, dst: str) -> None:
        """Give ``dst`` the bytes of ``src``: a hard link when local (blobs are immutable)."""
        if not self.local:
            self.fs.copy(self.path(src), self.path(dst))
            return
        target = self.path(dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(self.path(src), target)
        except FileNotFoundError:
            raise
        except OSError:  # a filesystem without hard links
            shutil.copyfile(self.path(src), target)

    def remove_empty_dirs(self, bucket: str) -> None:
        if not self.local:
            return
        top = self.path(bucket)
        for sub in (os.listdir(top) if os.path.isdir(top) else []):
            try:
                os.rmdir(os.path.join(top, sub))
            except OSError:
                pass
        try:
            os.rmdir(top)
        except OSError:
            pass

    def wipe(self) -> None:
        if self.local:
            for entry in os.scandir(self.root) if os.path.isdir(self.root) else []:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            os.makedirs(self.path(_TMP), exist_ok=True)
        else:
            try:
                self.fs.rm(self.root, recursive=True)
            except FileNotFoundError:
                pass

    def _sweep_tmp(self, max_age: float) -> None:
        """Temp blobs of writes a crash interrupted."""
        cutoff = time.time() - max_age
        for entry in os.scandir(self.path(_TMP)):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass


class BlobWriter:
    """Bytes streaming into a fresh blob, with their MD5 and checksum; invisible until committed.

    Use :meth:`ObjectStore.writer`, then ``write`` chunks, then hand it to ``commit_object`` or
    ``commit_part`` (which publish it, or discard it on any error).
    """

    def __init__(self, blobs: _Blobs, bucket: str, algorithm: str | None,
                 md5: bool = True) -> None:
        self._blobs = blobs
        self.name = blobs.new_name(bucket)
        self._temp = blobs.temp_name(self.name)
        self._file: IO[bytes] | None = None
        self._closed = False
        self.size = 0
        self._md5 = hashlib.md5() if md5 else None
        self.algorithm = checksums.normalize(algorithm)
        self._hasher = checksums.new_hasher(self.algorithm)

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._file is None:
            self._file = self._blobs.open_write(self._temp)
        self._file.write(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._hasher is not None:
            self._hasher.update(data)
        self.size += len(data)

    def close(self) -> None:
        if self._closed:
            return
        if self._file is None:  # an empty object is still a blob
            self._file = self._blobs.open_write(self._temp)
        self._closed = True
        self._blobs.finish_write(self._file)

    @property
    def md5(self) -> bytes:
        assert self._md5 is not None
        return self._md5.digest()

    @property
    def etag(self) -> str:
        return f'"{self.md5.hex()}"'

    @property
    def checksum(self) -> str | None:
        """The computed checksum (base64), None when there is no algorithm or no library."""
        return checksums.b64(self._hasher.digest()) if self._hasher is not None else None

    def verify(self, content_md5: str | None, expected_checksum: str | None) -> None:
        if content_md5:
            try:
                wanted = base64.b64decode(content_md5, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidDigest("The Content-MD5 you specified was invalid.",
                                    ContentMD5=content_md5) from None
            if len(wanted) != 16:
                raise InvalidDigest("The Content-MD5 you specified was invalid.",
                                    ContentMD5=content_md5)
            if wanted != self.md5:
                raise BadDigest("The Content-MD5 you specified did not match what was received.",
                                ExpectedDigest=content_md5)
        computed = self.checksum
        if expected_checksum and computed is not None and computed != expected_checksum:
            name = (self.algorithm or "").upper()
            raise BadDigest(f"The {name} you specified did not match the calculated checksum.")

    def publish(self) -> None:
        self.close()
        self._blobs.promote(self._temp, self.name)

    def discard(self) -> None:
        try:
            self.close()
        except OSError:
            pass
        self._blobs.delete(self._temp)
        if self._temp != self.name:
            self._blobs.delete(self.name)


def _etag_unquoted(etag: str) -> str:
    return etag.strip().strip('"')


class ObjectStore:
    """The S3 data model, synchronous; the S3 facade and the training runner both use it."""

    def __init__(self, url: str, db: Database, region: str, *, fsync: bool = True) -> None:
        self.url, self.db, self.region = url, db, region
        self.blobs = _Blobs(url, fsync)
        self._lock = threading.Lock()  # serialises this process's metadata swaps
        key = s3_objects.c.key
        # Keys sort by code point (= UTF-8 bytes), as S3 lists them, on every database.
        self._key = key.collate("C") if db.engine.dialect.name == "postgresql" else key

    # -- buckets ---------------------------------------------------------------------------

    def create_bucket(self, name: str, region: str | None = None) -> Bucket:
        validate_bucket_name(name)
        bucket = Bucket(name, time.time(), region or self.region)
        try:
            with self.db.transaction() as conn:
                if self._bucket_row(conn, name) is not None:
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
            return self._require_bucket(conn, name)

    def list_buckets(self, prefix: str = "") -> list[Bucket]:
        q = select(s3_buckets).order_by(s3_buckets.c.name)
        if prefix:
            q = q.where(s3_buckets.c.name.startswith(prefix, autoescape=True))
        with self.db.engine.connect() as conn:
            return [Bucket(r.name, r.creation_time, r.region) for r in conn.execute(q)]

    def delete_bucket(self, name: str) -> None:
        with self._lock, self.db.transaction() as conn:
            self._require_bucket(conn, name)
            if conn.execute(select(exists().where(s3_objects.c.bucket == name))).scalar():
                raise BucketNotEmpty("The bucket you tried to delete is not empty",
                                     BucketName=name)
            uploads = select(s3_uploads.c.upload_id).where(s3_uploads.c.bucket == name)
            blobs = list(conn.execute(
                select(s3_parts.c.blob).where(s3_parts.c.upload_id.in_(uploads))).scalars())
            conn.execute(delete(s3_parts).where(s3_parts.c.upload_id.in_(uploads)))
            conn.execute(delete(s3_uploads).where(s3_uploads.c.bucket == name))
            conn.execute(delete(s3_buckets).where(s3_buckets.c.name == name))
        for blob in blobs:
            self.blobs.delete(blob)
        self.blobs.remove_empty_dirs(name)

    # -- objects ---------------------------------------------------------------------------

    def writer(self, bucket: str, checksum_algorithm: str | None = None, *,
               md5: bool = True) -> BlobWriter:
        """A fresh blob to stream an object's (or a part's) bytes into."""
        return BlobWriter(self.blobs, bucket, checksum_algorithm, md5)

    def filled_writer(self, bucket: str, checksum_algorithm: str | None,
                      body: bytes | IO[bytes] | Iterable[bytes]) -> BlobWriter:
        """A new blob holding all of ``body`` (streamed); discarded if reading it fails."""
        w = self.writer(bucket, checksum_algorithm)
        try:
            for chunk in _chunks(body):
                w.write(chunk)
        except BaseException:
            w.discard()
            raise
        return w

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
            return self._require_object(conn, bucket, key)

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
        info = self.head_object(bucket, key)
        return Path(self.blobs.path(info.blob)) if self.blobs.local else None

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete ``key``; True if it existed (S3 answers 204 either way)."""
        return bool(self.delete_objects(bucket, [key]))

    def delete_objects(self, bucket: str, keys: list[str]) -> list[str]:
        """Delete many keys in one transaction; returns those that existed."""
        with self._lock, self.db.transaction() as conn:
            self._require_bucket(conn, bucket)
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
            blob = self.blobs.new_name(dst_bucket)
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
            self._require_bucket(conn, bucket)
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
                        lower, inclusive, jumped = skip + _TOP, True, True
                        break
                    objects.append(_object_info(row))
                if truncated or (not jumped and len(rows) < min(max_keys + 1, 1001)):
                    break
                if not jumped:
                    lower, inclusive = rows[-1].key, False
        entries = [o.key for o in objects] + prefixes
        return Listing(objects, prefixes, truncated, max(entries) if entries else None)

    # -- multipart -------------------------------------------------------------------------

    def create_multipart_upload(self, bucket: str, key: str,
                                meta: dict[str, Any] | None = None) -> Upload:
        validate_key(key)
        upload = Upload(secrets.token_urlsafe(36), bucket, key, time.time(), dict(meta or {}))
        with self.db.transaction() as conn:
            self._require_bucket(conn, bucket)
            conn.execute(insert(s3_uploads).values(
                upload_id=upload.upload_id, bucket=bucket, key=key,
                initiated=upload.initiated, meta=upload.meta))
        return upload

    def get_upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        with self.db.engine.connect() as conn:
            return self._require_upload(conn, bucket, key, upload_id)

    def upload_part(self, bucket: str, key: str, upload_id: str, part_number: int,
                    body: bytes | IO[bytes] | Iterable[bytes], *,
                    content_md5: str | None = None, checksum: str | None = None) -> Part:
        upload = self.get_upload(bucket, key, upload_id)
        w = self.filled_writer(bucket, upload.meta.get("ChecksumAlgorithm"), body)
        return self.commit_part(w, upload, part_number, content_md5=content_md5,
                                checksum=checksum)

    def commit_part(self, w: BlobWriter, upload: Upload, part_number: int, *,
                    content_md5: str | None = None, checksum: str | None = None) -> Part:
        try:
            if not 1 <= part_number <= MAX_PARTS:
                raise InvalidArgument("Part number must be an integer between 1 and 10000, "
                                      "inclusive", ArgumentName="partNumber",
                                      ArgumentValue=str(part_number))
            w.close()
            w.verify(content_md5, checksum)
            w.publish()
            part = Part(part_number, w.size, w.etag, time.time(), w.checksum or checksum, w.name)
            with self._lock, self.db.transaction() as conn:
                self._require_upload(conn, upload.bucket, upload.key, upload.upload_id)
                where = ((s3_parts.c.upload_id == upload.upload_id)
                         & (s3_parts.c.part_number == part_number))
                old = conn.execute(select(s3_parts.c.blob).where(where)
                                   .with_for_update()).scalar()
                values = {"blob": part.blob, "size": part.size, "etag": part.etag,
                          "meta": {"last_modified": part.last_modified,
                                   "checksum": part.checksum}}
                if old is None:
                    conn.execute(insert(s3_parts).values(
                        upload_id=upload.upload_id, part_number=part_number, **values))
                else:
                    conn.execute(update(s3_parts).where(where).values(**values))
        except BaseException:
            w.discard()
            raise
        if old is not None:
            self.blobs.delete(old)
        return part

    def upload_part_copy(self, bucket: str, key: str, upload_id: str, part_number: int,
                         src_bucket: str, src_key: str,
                         byte_range: tuple[int, int] | None = None) -> Part:
        """A part made of (a byte range of) an existing object."""
        upload = self.get_upload(bucket, key, upload_id)
        info, f = self.open_object(src_bucket, src_key)
        with f:
            start, end = byte_range or (0, info.size - 1)
            if byte_range is not None and not 0 <= start <= end < info.size:
                raise InvalidArgument("Range specified is not valid for source object of size: "
                                      f"{info.size}", ArgumentName="x-amz-copy-source-range")
            f.seek(start)
            w = self.writer(bucket, upload.meta.get("ChecksumAlgorithm"))
            try:
                for chunk in iter_file(f, end - start + 1):
                    w.write(chunk)
            except BaseException:
                w.discard()
                raise
        return self.commit_part(w, upload, part_number)

    def list_parts(self, bucket: str, key: str, upload_id: str, part_number_marker: int = 0,
                   max_parts: int = 1000) -> tuple[Upload, list[Part], bool]:
        with self.db.engine.connect() as conn:
            upload = self._require_upload(conn, bucket, key, upload_id)
            rows = conn.execute(
                select(s3_parts).where((s3_parts.c.upload_id == upload_id)
                                       & (s3_parts.c.part_number > part_number_marker))
                .order_by(s3_parts.c.part_number).limit(max_parts + 1)).all()
        parts = [_part(r) for r in rows]
        return upload, parts[:max_parts], len(parts) > max_parts

    def list_uploads(self, bucket: str, prefix: str = "", key_marker: str = "",
                     upload_id_marker: str = "", max_uploads: int = 1000
                     ) -> tuple[list[Upload], bool]:
        c = s3_uploads.c
        q = select(s3_uploads).where(c.bucket == bucket)
        if prefix:  # a range, not LIKE (case-insensitive in SQLite); exact check below
            q = q.where((c.key >= prefix) & (c.key < prefix + _TOP))
        if key_marker:
            q = q.where((c.key > key_marker) | ((c.key == key_marker)
                                                 & (c.upload_id > upload_id_marker)))
        q = q.order_by(c.key, c.upload_id).limit(max_uploads + 1)
        with self.db.engine.connect() as conn:
            self._require_bucket(conn, bucket)
            ups = [Upload(r.upload_id, r.bucket, r.key, r.initiated, r.meta)
                   for r in conn.execute(q) if r.key.startswith(prefix)]
        return ups[:max_uploads], len(ups) > max_uploads

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str,
                                  parts: list[CompletedPart], *,
                                  checksum_type: str | None = None,
                                  checksum: str | None = None,
                                  object_size: int | None = None,
                                  if_none_match: str | None = None,
                                  if_match: str | None = None) -> ObjectInfo:
        """Check the client's part list against the stored parts, then concatenate them.

        ``checksum`` (the whole object's, as the client computed it) and ``object_size`` are
        verified when given."""
        upload, stored, _ = self.list_parts(bucket, key, upload_id, 0, MAX_PARTS)
        by_number = {p.part_number: p for p in stored}
        if not parts:
            raise MalformedXML("The XML you provided was not well-formed or did not validate "
                               "against our published schema")
        chosen: list[Part] = []
        for i, asked in enumerate(parts):
            if i and asked.part_number <= parts[i - 1].part_number:
                raise InvalidPartOrder("The list of parts was not in ascending order. The parts "
                                       "list must be specified in order by part number.",
                                       UploadId=upload_id)
            part = by_number.get(asked.part_number)
            if (part is None or _etag_unquoted(part.etag) != _etag_unquoted(asked.etag)
                    or (asked.checksum and part.checksum and asked.checksum != part.checksum)):
                raise InvalidPart("One or more of the specified parts could not be found. The "
                                  "part may not have been uploaded, or the specified entity "
                                  "tag may not have matched the part's entity tag.",
                                  UploadId=upload_id, PartNumber=str(asked.part_number),
                                  ETag=asked.etag)
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < MIN_PART_SIZE:
                raise EntityTooSmall("Your proposed upload is smaller than the minimum allowed "
                                     "size", ProposedSize=str(part.size),
                                     MinSizeAllowed=str(MIN_PART_SIZE),
                                     PartNumber=str(part.part_number), ETag=part.etag)
        if object_size is not None and object_size != sum(p.size for p in chosen):
            raise InvalidArgument(f"The provided object size {object_size} does not match the "
                                  "sum of the parts' sizes", code="InvalidRequest")
        md5s = b"".join(bytes.fromhex(_etag_unquoted(p.etag)) for p in chosen)
        etag = f'"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}"'
        meta = {k: v for k, v in upload.meta.items() if k not in ("ChecksumType",)}
        alg = checksums.normalize(upload.meta.get("ChecksumAlgorithm"))
        kind = (checksum_type or upload.meta.get("ChecksumType") or "COMPOSITE").upper()
        full = alg is not None and kind == "FULL_OBJECT"
        w = self.writer(bucket, alg if full else None, md5=False)
        try:
            for part in chosen:
                with self.blobs.open_read(part.blob) as f:
                    for chunk in _chunks(f):
                        w.write(chunk)
            w.publish()
            meta.pop("Checksum", None)
            if alg is not None:
                value = (w.checksum if full else
                         checksums.composite(alg, [p.checksum for p in chosen if p.checksum])
                         if all(p.checksum for p in chosen) else None)
                if checksum and value and checksum != value:
                    raise BadDigest(f"The {alg.upper()} you specified did not match the "
                                    "calculated checksum.")
                if value:
                    meta.update(ChecksumAlgorithm=alg.upper(), Checksum=value, ChecksumType=kind)
                else:
                    meta.pop("ChecksumAlgorithm", None)
            meta["PartsCount"] = len(chosen)
            with self._lock, self.db.transaction() as conn:
                self._require_upload(conn, bucket, key, upload_id)
                dead = list(conn.execute(select(s3_parts.c.blob).where(
                    s3_parts.c.upload_id == upload_id)).scalars())
                conn.execute(delete(s3_parts).where(s3_parts.c.upload_id == upload_id))
                conn.execute(delete(s3_uploads).where(s3_uploads.c.upload_id == upload_id))
                info, old = self._upsert_in(conn, bucket, key, w.name, w.size, etag, meta,
                                            if_none_match, if_match)
        except BaseException:
            w.discard()
            raise
        for blob in dead + ([old] if old else []):
            self.blobs.delete(blob)
        return info

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self._lock, self.db.transaction() as conn:
            self._require_upload(conn, bucket, key, upload_id)
            dead = list(conn.execute(select(s3_parts.c.blob).where(
                s3_parts.c.upload_id == upload_id)).scalars())
            conn.execute(delete(s3_parts).where(s3_parts.c.upload_id == upload_id))
            conn.execute(delete(s3_uploads).where(s3_uploads.c.upload_id == upload_id))
        for blob in dead:
            self.blobs.delete(blob)

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
            q = q.where(k < prefix + _TOP)
        return q.order_by(k).limit(limit)

    def _upsert(self, bucket: str, key: str, blob: str, size: int, etag: str,
                meta: dict[str, Any], *, if_none_match: str | None = None,
                if_match: str | None = None) -> ObjectInfo:
        for attempt in range(2):
            try:
                with self._lock, self.db.transaction() as conn:
                    info, old = self._upsert_in(conn, bucket, key, blob, size, etag, meta,
                                                if_none_match, if_match)
                break
            except IntegrityError:  # another process inserted the key first: now update it
                if attempt:
                    raise
        if old is not None:
            self.blobs.delete(old)
        return info

    def _upsert_in(self, conn: Connection, bucket: str, key: str, blob: str, size: int,
                   etag: str, meta: dict[str, Any], if_none_match: str | None,
                   if_match: str | None) -> tuple[ObjectInfo, str | None]:
        self._require_bucket(conn, bucket)
        where = (s3_objects.c.bucket == bucket) & (s3_objects.c.key == key)
        row = conn.execute(select(s3_objects.c.blob, s3_objects.c.etag).where(where)
                           .with_for_update()).first()
        if if_none_match is not None and row is not None and (
                if_none_match.strip() == "*" or _etag_unquoted(if_none_match) ==
                _etag_unquoted(row.etag)):
            raise PreconditionFailed("At least one of the pre-conditions you specified did not "
                                     "hold", Condition="If-None-Match")
        if if_match is not None:
            if row is None:
                raise NoSuchKey("The specified key does not exist.", Key=key)
            if if_match.strip() != "*" and _etag_unquoted(if_match) != _etag_unquoted(row.etag):
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

    @staticmethod
    def _bucket_row(conn: Connection, name: str) -> Any:
        return conn.execute(_GET_BUCKET, {"b": name}).first()

    def _require_bucket(self, conn: Connection, name: str) -> Bucket:
        row = self._bucket_row(conn, name)
        if row is None:
            raise NoSuchBucket("The specified bucket does not exist", BucketName=name)
        return Bucket(row.name, row.creation_time, row.region)

    def _require_object(self, conn: Connection, bucket: str, key: str) -> ObjectInfo:
        row = conn.execute(_GET_OBJECT, {"b": bucket, "k": key}).first()
        if row is None:
            self._require_bucket(conn, bucket)
            raise NoSuchKey("The specified key does not exist.", Key=key)
        return _object_info(row)

    def _require_upload(self, conn: Connection, bucket: str, key: str,
                        upload_id: str) -> Upload:
        row = conn.execute(select(s3_uploads).where(s3_uploads.c.upload_id == upload_id)).first()
        if row is None or row.bucket != bucket or row.key != key:
            self._require_bucket(conn, bucket)
            raise NoSuchUpload("The specified upload does not exist. The upload ID may be "
                               "invalid, or the upload may have been aborted or completed.",
                               UploadId=upload_id)
        return Upload(row.upload_id, row.bucket, row.key, row.initiated, row.meta)


def _object_info(row: Any) -> ObjectInfo:
    return ObjectInfo(row.bucket, row.key, row.size, row.etag, row.last_modified,
                      row.meta or {}, row.blob)


def _part(row: Any) -> Part:
    meta = row.meta or {}
    return Part(row.part_number, row.size, row.etag, meta.get("last_modified", 0.0),
                meta.get("checksum"), row.blob)


def _chunks(body: bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]
            ) -> Iterator[bytes]:
    if isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        for i in range(0, len(data), CHUNK):
            yield data[i:i + CHUNK]
        return
    read = getattr(body, "read", None)
    if read is not None:
        while chunk := read(CHUNK):
            yield chunk
        return
    for chunk in body:
        if chunk:
            yield bytes(chunk)


def iter_file(f: IO[bytes], length: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """``length`` bytes of ``f`` from its position, in chunks; closes ``f`` at the end."""
    try:
        while length > 0:
            data = f.read(min(chunk, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        f.close()
