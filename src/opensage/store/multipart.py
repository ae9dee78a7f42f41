"""Multipart uploads: upload and part rows, each part its own blob, concatenated on completion.

A part is published as a blob before its row commits (a re-uploaded part number replaces the
row, then its old blob is deleted); completion checks the client's part list against the rows,
streams the chosen parts into one new blob and swaps the upload's rows for the object's row in
one transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import Connection, delete, insert, select, update

from opensage.errors import (
    BadDigest,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    MalformedXML,
    NoSuchUpload,
)
from opensage.store import checksums
from opensage.store.blob_writer import BlobWriter, chunks, filled_writer, iter_file
from opensage.store.blobs import Blobs
from opensage.store.db import Database
from opensage.store.object_rows import (
    TOP,
    ObjectInfo,
    etag_unquoted,
    require_bucket,
    upsert_object,
    validate_key,
)
from opensage.store.schema import s3_parts, s3_uploads

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000

OpenObject = Callable[[str, str], tuple[ObjectInfo, IO[bytes]]]


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


class MultipartUploads:
    """The multipart half of the object store. ``lock`` is the store's (it serialises this
    process's metadata swaps); ``open_object`` reads a source object for UploadPartCopy."""

    def __init__(self, db: Database, blobs: Blobs, lock: threading.Lock,
                 open_object: OpenObject) -> None:
        self.db, self.blobs, self._lock, self._open_object = db, blobs, lock, open_object

    def create(self, bucket: str, key: str, meta: dict[str, Any] | None = None) -> Upload:
        validate_key(key)
        upload = Upload(secrets.token_urlsafe(36), bucket, key, time.time(), dict(meta or {}))
        with self.db.transaction() as conn:
            require_bucket(conn, bucket)
            conn.execute(insert(s3_uploads).values(
                upload_id=upload.upload_id, bucket=bucket, key=key,
                initiated=upload.initiated, meta=upload.meta))
        return upload

    def get(self, bucket: str, key: str, upload_id: str) -> Upload:
        with self.db.engine.connect() as conn:
            return _require_upload(conn, bucket, key, upload_id)

    def upload_part(self, bucket: str, key: str, upload_id: str, part_number: int,
                    body: bytes | IO[bytes] | Iterable[bytes], *,
                    content_md5: str | None = None, checksum: str | None = None) -> Part:
        upload = self.get(bucket, key, upload_id)
        w = filled_writer(self.blobs, bucket, upload.meta.get("ChecksumAlgorithm"), body)
        return self.commit_part(w, upload, part_number, content_md5=content_md5,
                                checksum=checksum)

    def commit_part(self, w: BlobWriter, upload: Upload, part_number: int, *,
                    content_md5: str | None = None, checksum: str | None = None) -> Part:
        """Verify the written bytes, publish the blob and record it as part ``part_number``."""
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
                _require_upload(conn, upload.bucket, upload.key, upload.upload_id)
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
        upload = self.get(bucket, key, upload_id)
        info, f = self._open_object(src_bucket, src_key)
        with f:
            start, end = byte_range or (0, info.size - 1)
            if byte_range is not None and not 0 <= start <= end < info.size:
                raise InvalidArgument("Range specified is not valid for source object of size: "
                                      f"{info.size}", ArgumentName="x-amz-copy-source-range")
            f.seek(start)
            w = filled_writer(self.blobs, bucket, upload.meta.get("ChecksumAlgorithm"),
                              iter_file(f, end - start + 1))
        return self.commit_part(w, upload, part_number)

    def list_parts(self, bucket: str, key: str, upload_id: str, part_number_marker: int = 0,
                   max_parts: int = 1000) -> tuple[Upload, list[Part], bool]:
        with self.db.engine.connect() as conn:
            upload = _require_upload(conn, bucket, key, upload_id)
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
            q = q.where((c.key >= prefix) & (c.key < prefix + TOP))
        if key_marker:
            q = q.where((c.key > key_marker) | ((c.key == key_marker)
                                                 & (c.upload_id > upload_id_marker)))
        q = q.order_by(c.key, c.upload_id).limit(max_uploads + 1)
        with self.db.engine.connect() as conn:
            require_bucket(conn, bucket)
            ups = [_upload(r) for r in conn.execute(q) if r.key.startswith(prefix)]
        return ups[:max_uploads], len(ups) > max_uploads

    def complete(self, bucket: str, key: str, upload_id: str, parts: list[CompletedPart], *,
                 checksum_type: str | None = None, checksum: str | None = None,
                 object_size: int | None = None, if_none_match: str | None = None,
                 if_match: str | None = None) -> ObjectInfo:
        """Check the client's part list against the stored parts, then concatenate them.

        ``checksum`` (the whole object's, as the client computed it) and ``object_size`` are
        verified when given."""
        upload, stored, _ = self.list_parts(bucket, key, upload_id, 0, MAX_PARTS)
        chosen = _chosen_parts(upload_id, parts, {p.part_number: p for p in stored})
        if object_size is not None and object_size != sum(p.size for p in chosen):
            raise InvalidArgument(f"The provided object size {object_size} does not match the "
                                  "sum of the parts' sizes", code="InvalidRequest")
        md5s = b"".join(bytes.fromhex(etag_unquoted(p.etag)) for p in chosen)
        etag = f'"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}"'
        meta = {k: v for k, v in upload.meta.items() if k not in ("ChecksumType", "Checksum")}
        alg = checksums.normalize(upload.meta.get("ChecksumAlgorithm"))
        kind = (checksum_type or upload.meta.get("ChecksumType") or "COMPOSITE").upper()
        full = alg is not None and kind == "FULL_OBJECT"
        w = BlobWriter(self.blobs, bucket, alg if full else None, md5=False)
        try:
            for part in chosen:
                with self.blobs.open_read(part.blob) as f:
                    for chunk in chunks(f):
                        w.write(chunk)
            w.publish()
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
                _require_upload(conn, bucket, key, upload_id)
                dead = _delete_upload_rows(conn, upload_id)
                info, old = upsert_object(conn, bucket, key, w.name, w.size, etag, meta,
                                          if_none_match, if_match)
        except BaseException:
            w.discard()
            raise
        for blob in dead + ([old] if old else []):
            self.blobs.delete(blob)
        return info

    def abort(self, bucket: str, key: str, upload_id: str) -> None:
        with self._lock, self.db.transaction() as conn:
            _require_upload(conn, bucket, key, upload_id)
            dead = _delete_upload_rows(conn, upload_id)
        for blob in dead:
            self.blobs.delete(blob)


def delete_bucket_uploads(conn: Connection, bucket: str) -> list[str]:
    """Delete every upload of ``bucket`` and its parts; returns their blobs to delete after
    the caller's transaction commits."""
    uploads = select(s3_uploads.c.upload_id).where(s3_uploads.c.bucket == bucket)
    blobs = list(conn.execute(
        select(s3_parts.c.blob).where(s3_parts.c.upload_id.in_(uploads))).scalars())
    conn.execute(delete(s3_parts).where(s3_parts.c.upload_id.in_(uploads)))
    conn.execute(delete(s3_uploads).where(s3_uploads.c.bucket == bucket))
    return blobs


def _delete_upload_rows(conn: Connection, upload_id: str) -> list[str]:
    dead = list(conn.execute(select(s3_parts.c.blob).where(
        s3_parts.c.upload_id == upload_id)).scalars())
    conn.execute(delete(s3_parts).where(s3_parts.c.upload_id == upload_id))
    conn.execute(delete(s3_uploads).where(s3_uploads.c.upload_id == upload_id))
    return dead


def _chosen_parts(upload_id: str, asked: list[CompletedPart],
                  stored: dict[int, Part]) -> list[Part]:
    """The stored parts the client listed, checked: ascending, matching, big enough."""
    if not asked:
        raise MalformedXML("The XML you provided was not well-formed or did not validate "
                           "against our published schema")
    chosen: list[Part] = []
    for i, want in enumerate(asked):
        if i and want.part_number <= asked[i - 1].part_number:
            raise InvalidPartOrder("The list of parts was not in ascending order. The parts "
                                   "list must be specified in order by part number.",
                                   UploadId=upload_id)
        part = stored.get(want.part_number)
        if (part is None or etag_unquoted(part.etag) != etag_unquoted(want.etag)
                or (want.checksum and part.checksum and want.checksum != part.checksum)):
            raise InvalidPart("One or more of the specified parts could not be found. The "
                              "part may not have been uploaded, or the specified entity "
                              "tag may not have matched the part's entity tag.",
                              UploadId=upload_id, PartNumber=str(want.part_number),
                              ETag=want.etag)
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise EntityTooSmall("Your proposed upload is smaller than the minimum allowed "
                                 "size", ProposedSize=str(part.size),
                                 MinSizeAllowed=str(MIN_PART_SIZE),
                                 PartNumber=str(part.part_number), ETag=part.etag)
    return chosen


def _require_upload(conn: Connection, bucket: str, key: str, upload_id: str) -> Upload:
    row = conn.execute(select(s3_uploads).where(s3_uploads.c.upload_id == upload_id)).first()
    if row is None or row.bucket != bucket or row.key != key:
        require_bucket(conn, bucket)
        raise NoSuchUpload("The specified upload does not exist. The upload ID may be "
                           "invalid, or the upload may have been aborted or completed.",
                           UploadId=upload_id)
    return _upload(row)


def _upload(row: Any) -> Upload:
    return Upload(row.upload_id, row.bucket, row.key, row.initiated, row.meta)


def _part(row: Any) -> Part:
    meta = row.meta or {}
    return Part(row.part_number, row.size, row.etag, meta.get("last_modified", 0.0),
                meta.get("checksum"), row.blob)
