"""Blob storage: opaque, immutable blobs by name, in a local directory or any fsspec filesystem.

A blob's name is ``<bucket>/<2 hex>/<32 hex>`` (:func:`new_blob_name`), never derived from an
object key. :func:`open_blobs` chooses the implementation once, from the URL (as fsspec's
``url_to_fs`` does): :class:`LocalBlobs` for a directory (plain ``os`` calls, atomic renames,
hard links), :class:`RemoteBlobs` for every other filesystem (s3fs, memory, ...).

A new blob is written through a :class:`PendingBlob`, which makes it readable under its name
only on :meth:`PendingBlob.publish`; :meth:`PendingBlob.discard` removes whatever it wrote.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import IO, Any, Protocol

import fsspec
from fsspec.implementations.local import LocalFileSystem

_TMP = ".tmp"
_TMP_MAX_AGE = 3600.0  # seconds; older temp files are left over from interrupted writes


def new_blob_name(bucket: str) -> str:
    u = uuid.uuid4().hex
    return f"{bucket}/{u[:2]}/{u}"


class PendingBlob(Protocol):
    """A blob being written: invisible under its name until published."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None:
        """Finish writing (durably where the store can); idempotent."""

    def publish(self) -> None:
        """Make the closed blob readable under its name."""

    def discard(self) -> None:
        """Remove what was written, published or not; never raises for a missing blob."""


class Blobs(Protocol):
    """The one blob-storage interface the object store uses."""

    def create(self, name: str) -> PendingBlob:
        """Start writing the new blob ``name`` (opens it: call on the first byte)."""

    def open_read(self, name: str) -> IO[bytes]:
        """The blob's bytes (the caller closes them); FileNotFoundError when it is gone."""

    def delete(self, name: str) -> None:
        """Remove a blob; a missing one is not an error."""

    def clone(self, src: str, dst: str) -> None:
        """Give ``dst`` the bytes of ``src``; FileNotFoundError when ``src`` is gone."""

    def local_path(self, name: str) -> Path | None:
        """The blob's file on this machine (never modify it: link or copy it), or None."""

    def forget_bucket(self, bucket: str) -> None:
        """Tidy up after a deleted bucket whose blobs are all deleted."""

    def wipe(self) -> None:
        """Remove every blob."""


def open_blobs(url: str, *, fsync: bool = True) -> Blobs:
    """The blob store at ``url``: a directory path, ``file://``, or any fsspec URL."""
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol in ("s3", "s3a") and importlib.util.find_spec("s3fs") is None:
        raise RuntimeError(f"object store {url!r} needs s3fs: pip install 'opensage[s3]'")
    fs, root = fsspec.core.url_to_fs(url)
    root = str(root).rstrip("/")
    if isinstance(fs, LocalFileSystem):
        return LocalBlobs(root, fsync=fsync)
    return RemoteBlobs(fs, root)


# -- a local directory -----------------------------------------------------------------------

class _LocalPending:
    """Writes into ``.tmp/``; publishing is one atomic rename onto the final name."""

    def __init__(self, temp: str, final: str, fsync: bool) -> None:
        self._temp, self._final, self._fsync = temp, final, fsync
        self._file = open(temp, "wb")  # noqa: SIM115 (closed by close or discard)

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            if self._fsync:
                self._file.flush()
                os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def publish(self) -> None:
        self.close()
        os.makedirs(os.path.dirname(self._final), exist_ok=True)
        os.replace(self._temp, self._final)

    def discard(self) -> None:
        try:
            self.close()
        except OSError:
            pass
        for path in (self._temp, self._final):
            _unlink(path)


class LocalBlobs:
    """Blobs as files under ``root``, read and written with plain ``os`` calls."""

    def __init__(self, root: str, *, fsync: bool = True) -> None:
        self.root, self.fsync = root, fsync
        os.makedirs(self._path(_TMP), exist_ok=True)
        self._sweep_tmp(time.time() - _TMP_MAX_AGE)

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def create(self, name: str) -> PendingBlob:
        return _LocalPending(self._path(f"{_TMP}/{uuid.uuid4().hex}"), self._path(name),
                             self.fsync)

    def open_read(self, name: str) -> IO[bytes]:
        return open(self._path(name), "rb")

    def delete(self, name: str) -> None:
        _unlink(self._path(name))

    def clone(self, src: str, dst: str) -> None:
        """A hard link (blobs are immutable), or a copy where the filesystem has none."""
        target = self._path(dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(self._path(src), target)
        except FileNotFoundError:
            raise
        except OSError:
            shutil.copyfile(self._path(src), target)

    def local_path(self, name: str) -> Path | None:
        return Path(self._path(name))

    def forget_bucket(self, bucket: str) -> None:
        """Remove the bucket's (now empty) fan-out directories."""
        top = self._path(bucket)
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
        for entry in os.scandir(self.root) if os.path.isdir(self.root) else []:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        os.makedirs(self._path(_TMP), exist_ok=True)

    def _sweep_tmp(self, cutoff: float) -> None:
        """Temp files of writes a crash interrupted."""
        for entry in os.scandir(self._path(_TMP)):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# -- any other fsspec filesystem -------------------------------------------------------------

class _RemotePending:
    """Writes the final name directly: a remote store publishes a file only when it closes."""

    def __init__(self, fs: Any, path: str) -> None:
        self._fs, self._path = fs, path
        self._file: IO[bytes] = fs.open(path, "wb")
        self._closed = False

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._file.close()

    def publish(self) -> None:
        self.close()

    def discard(self) -> None:
        try:
            self.close()
        except OSError:
            pass
        _remove(self._fs, self._path)


class RemoteBlobs:
    """Blobs as files under ``root`` of an fsspec filesystem (s3fs, memory, ...)."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs, self.root = fs, root

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def create(self, name: str) -> PendingBlob:
        return _RemotePending(self.fs, self._path(name))

    def open_read(self, name: str) -> IO[bytes]:
        f: IO[bytes] = self.fs.open(self._path(name), "rb")
        return f

    def delete(self, name: str) -> None:
        _remove(self.fs, self._path(name))

    def clone(self, src: str, dst: str) -> None:
        self.fs.copy(self._path(src), self._path(dst))

    def local_path(self, name: str) -> Path | None:
        return None

    def forget_bucket(self, bucket: str) -> None:
        """Nothing to tidy: object stores have no directories to leave behind."""

    def wipe(self) -> None:
        _remove(self.fs, self.root, recursive=True)


def _remove(fs: Any, path: str, recursive: bool = False) -> None:
    try:
        fs.rm(path, recursive=recursive)
    except FileNotFoundError:
        pass
