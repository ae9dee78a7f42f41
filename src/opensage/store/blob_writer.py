"""Bytes into and out of blobs: a hashing writer, and chunked readers."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator
from typing import IO

from opensage.errors import BadDigest, InvalidDigest
from opensage.store import checksums
from opensage.store.blobs import Blobs, PendingBlob, new_blob_name

CHUNK = 1024 * 1024


class BlobWriter:
    """Bytes streaming into a fresh blob, with their MD5 and checksum; invisible until published.

    Use :meth:`ObjectStore.writer`, then ``write`` chunks, then hand it to ``commit_object`` or
    ``commit_part`` (which publish it, or discard it on any error).
    """

    def __init__(self, blobs: Blobs, bucket: str, algorithm: str | None,
                 md5: bool = True) -> None:
        self._blobs = blobs
        self.name = new_blob_name(bucket)
        self._pending: PendingBlob | None = None  # opened on the first byte: no I/O before
        self.size = 0
        self._md5 = hashlib.md5() if md5 else None
        self.algorithm = checksums.normalize(algorithm)
        self._hasher = checksums.new_hasher(self.algorithm)

    def _open(self) -> PendingBlob:
        if self._pending is None:
            self._pending = self._blobs.create(self.name)
        return self._pending

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._open().write(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._hasher is not None:
            self._hasher.update(data)
        self.size += len(data)

    def close(self) -> None:
        self._open().close()  # an empty object is still a blob

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
        self._open().publish()

    def discard(self) -> None:
        if self._pending is not None:
            self._pending.discard()


def filled_writer(blobs: Blobs, bucket: str, checksum_algorithm: str | None,
                  body: bytes | IO[bytes] | Iterable[bytes], *, md5: bool = True
                  ) -> BlobWriter:
    """A new blob holding all of ``body`` (streamed); discarded if reading it fails."""
    w = BlobWriter(blobs, bucket, checksum_algorithm, md5)
    try:
        for chunk in chunks(body):
            w.write(chunk)
    except BaseException:
        w.discard()
        raise
    return w


def chunks(body: bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]
           ) -> Iterator[bytes]:
    """Bytes, a binary file or an iterable of chunks, as chunks of at most :data:`CHUNK`."""
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
