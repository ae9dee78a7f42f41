"""Pipe input mode: each channel a series of named pipes ``input/data/<channel>_<epoch>``.

A background thread per channel feeds them, as SageMaker's agent does: ``<channel>_0``
exists before the job starts; the feeder waits for the algorithm to open it, streams every
object of the channel through it in order (decompressed when ``CompressionType=Gzip``,
each object framed as one RecordIO record when ``RecordWrapperType=RecordIO``), creates
``<channel>_1`` *before* closing ``_0`` (so a reader that sees end-of-file finds the next
epoch's pipe in place), removes the spent ``_0``, and waits again: one epoch per open, for as
many epochs as the algorithm reads. ``ShuffleConfig`` reshuffles the order every epoch
(seeded from ``Seed`` and the epoch), and ``ShardedByS3Key`` then keeps this host's share.

Nothing here can hang a job or the server: pipes are opened without blocking (``O_NONBLOCK``
fails with ``ENXIO`` until a reader opens; the feeder polls), written without blocking (a
full pipe is waited on with ``poll`` and a timeout), and :meth:`PipeFeeders.close` stops every
feeder within one poll interval. A reader that closes its end early ends that epoch quietly
(``EPIPE``). Objects are streamed in chunks, never read whole into memory.

``AugmentedManifestFile`` (JSON lines; Pipe mode only, as on SageMaker) streams each line's
``AttributeNames`` in order: a ``-ref`` attribute's S3 object, or the value itself (a string
as its UTF-8 text, anything else as compact JSON); with RecordIO every attribute is a record.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
import select
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple, Self

from opensage.data import DataError
from opensage.data.recordio import MAX_PAYLOAD, frame, frame_parts
from opensage.errors import AwsError
from opensage.runner.channels import (
    ChannelError,
    resolve_objects,
    s3_source,
    select_entries,
    split_s3_uri,
)
from opensage.runner.object_access import ObjectAccess

log = logging.getLogger(__name__)

CHUNK = 1 << 20
POLL_SECONDS = 0.05
PIPE_BUFFER = 1 << 20


class Piece(NamedTuple):
    """One unit of a pipe's stream: an S3 object (bucket, key, size when listed) or inline
    bytes."""

    bucket: str = ""
    key: str = ""
    data: bytes | None = None
    size: int | None = None


Entry = tuple[Piece, ...]  # what shuffling and sharding move around: an object, a line


class _Stopped(Exception):
    pass


def pipe_path(data_dir: Path, channel: str, epoch: int) -> Path:
    return data_dir / f"{channel}_{epoch}"


def pipe_entries(objects: ObjectAccess, source: dict[str, Any]) -> list[Entry]:
    """What a Pipe-mode channel streams per epoch, before shuffling and sharding."""
    if source.get("S3DataType", "S3Prefix") == "AugmentedManifestFile":
        return _augmented_entries(objects, source)
    return [(Piece(o.bucket, o.key, size=o.size),) for o in resolve_objects(objects, source)]


def _augmented_entries(objects: ObjectAccess, source: dict[str, Any]) -> list[Entry]:
    uri = source["S3Uri"]
    bucket, key = split_s3_uri(uri)
    names = source.get("AttributeNames") or []
    if not names:
        raise ChannelError(f"AugmentedManifestFile {uri}: AttributeNames must name at least "
                           "one attribute")
    entries: list[Entry] = []
    number = 0
    try:
        _, stream = objects.open_object(bucket, key)
        with stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise TypeError("a line is not a JSON object")
                entries.append(tuple(_attribute(record, name) for name in names))
    except AwsError as err:
        raise ChannelError(f"Could not read {uri}: {err.message}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise ChannelError(f"Invalid augmented manifest file {uri}, line {number}: "
                           f"{err}") from None
    if not entries:
        raise ChannelError(f"Augmented manifest file {uri} has no JSON lines")
    return entries


def _attribute(record: dict[str, Any], name: str) -> Piece:
    if name not in record:
        raise KeyError(f"attribute {name!r} is missing")
    value = record[name]
    if name.endswith("-ref"):
        if not isinstance(value, str) or not value.startswith("s3://"):
            raise ValueError(f"attribute {name!r} must be an s3:// URI")
        bucket, key = split_s3_uri(value)
        return Piece(bucket, key)
    if isinstance(value, str):
        return Piece(data=value.encode("utf-8"))
    return Piece(data=json.dumps(value, separators=(",", ":")).encode("utf-8"))


class PipeFeeders:
    """The named pipes of one job's Pipe-mode channels and their feeder threads.

    ``add`` each channel before the job starts (it resolves the objects and raises
    ChannelError exactly as File mode would), and ``close`` when the job has ended."""

    def __init__(self, objects: ObjectAccess, *, host_index: int = 0, host_count: int = 1,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self._objects = objects
        self._host = (host_index, host_count)
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._feeders: list[_Feeder] = []

    def add(self, channel: dict[str, Any], data_dir: Path) -> Path:
        """Create ``<data_dir>/<channel>_0`` and start feeding it; returns its path."""
        name = channel["ChannelName"]
        source = s3_source(channel)
        compression = channel.get("CompressionType") or "None"
        wrapper = channel.get("RecordWrapperType") or "None"
        if compression not in ("None", "Gzip"):
            raise ChannelError(f"Channel {name!r}: CompressionType {compression} is not "
                               "supported (None or Gzip)")
        if wrapper not in ("None", "RecordIO"):
            raise ChannelError(f"Channel {name!r}: RecordWrapperType {wrapper} is not "
                               "supported (None or RecordIO)")
        entries = pipe_entries(self._objects, source)
        if wrapper == "RecordIO" and compression == "None":
            for entry in entries:  # listed sizes are known: refuse now rather than midway
                for piece in entry:
                    if piece.size is not None and piece.size > MAX_PAYLOAD:
                        raise ChannelError(
                            f"Channel {name!r}: s3://{piece.bucket}/{piece.key} ({piece.size} "
                            "bytes) is too large to wrap in one RecordIO record")
        data_dir.mkdir(parents=True, exist_ok=True)
        first = pipe_path(data_dir, name, 0)
        try:
            os.mkfifo(first, 0o600)
        except FileExistsError:
            raise ChannelError(f"Channel {name!r}: {first.name} already exists in "
                               "input/data") from None
        feeder = _Feeder(self._objects, name, data_dir, entries, source,
                         channel.get("ShuffleConfig"), gzip=compression == "Gzip",
                         recordio=wrapper == "RecordIO", host=self._host, stop=self._stop,
                         poll=self._poll)
        self._feeders.append(feeder)
        feeder.start()
        return first

    def close(self, timeout: float = 5.0) -> None:
        """Stop every feeder (a pipe nobody opened included) and remove their pipes."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for feeder in self._feeders:
            feeder.join(max(0.0, deadline - time.monotonic()))

    @property
    def errors(self) -> list[str]:
        """Why a feeder gave up early (an object vanished, bad gzip data), if any did."""
        return [f.error for f in self._feeders if f.error]

    def epochs(self, channel: str) -> int:
        """How many epochs of ``channel`` were streamed to the end (or until the reader
        closed its end)."""
        return sum(f.epochs_done for f in self._feeders if f.channel == channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Feeder(threading.Thread):
    def __init__(self, objects: ObjectAccess, channel: str, data_dir: Path,
                 entries: Sequence[Entry], source: dict[str, Any],
                 shuffle: dict[str, Any] | None, *, gzip: bool, recordio: bool,
                 host: tuple[int, int], stop: threading.Event, poll: float) -> None:
        super().__init__(name=f"opensage-pipe-{channel}", daemon=True)
        self.objects = objects
        self.channel = channel
        self.data_dir = data_dir
        self.entries = entries
        self.source = source
        self.shuffle = shuffle
        self.gzip = gzip
        self.recordio = recordio
        self.host = host
        self.stop = stop
        self.poll_seconds = poll
        self.error: str | None = None
        self.epochs_done = 0
        self._current = pipe_path(data_dir, channel, 0)
        self._poller: Any = None

    def run(self) -> None:
        epoch = 0
        try:
            while True:
                fd = self._open_writer(self._current)
                if fd is None:
                    return
                following = pipe_path(self.data_dir, self.channel, epoch + 1)
                try:
                    try:
                        self._feed(fd, epoch)
                    except BrokenPipeError:
                        pass  # the algorithm closed its end early: this epoch is over
                    # All settled before the reader sees EOF: the next pipe is in place,
                    # the spent one is gone (its open ends keep working), the epoch counted.
                    os.mkfifo(following, 0o600)
                    _unlink(self._current)
                    self._current = following
                    self.epochs_done += 1
                finally:
                    os.close(fd)
                epoch += 1
        except _Stopped:
            pass
        except FileNotFoundError as err:
            if not self.stop.is_set() and self.data_dir.exists():
                self._fail(err)
        except (ChannelError, DataError, AwsError, OSError, EOFError, zlib.error) as err:
            self._fail(err)
        except Exception as err:  # a feeder must never take the server down
            log.exception("pipe feeder for channel %s crashed", self.channel)
            self._fail(err)
        finally:
            _unlink(self._current)

    def _fail(self, err: BaseException) -> None:
        message = err.message if isinstance(err, AwsError) else str(err)
        self.error = f"Pipe channel {self.channel!r}: {message}"
        log.warning("%s", self.error)

    # -- the pipe -----------------------------------------------------------------------
    def _open_writer(self, path: Path) -> int | None:
        """The pipe's write end once a reader has opened it; None when stopped or gone."""
        while not self.stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # never inherited by jobs
            except OSError as err:
                if err.errno == errno.ENXIO:  # no reader yet
                    self.stop.wait(self.poll_seconds)
                    continue
                if err.errno == errno.ENOENT:
                    return None
                raise
            try:
                import fcntl

                setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
                if setsize is not None:
                    fcntl.fcntl(fd, setsize, PIPE_BUFFER)
            except OSError:
                pass  # keep the default buffer
            self._poller = select.poll()
            self._poller.register(fd, select.POLLOUT)
            return fd
        return None

    def _write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.stop.is_set():
                raise _Stopped
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                self._poller.poll(self.poll_seconds * 1000)  # writable, reader gone, or time
                continue
            view = view[written:]

    # -- the stream ---------------------------------------------------------------------
    def _feed(self, fd: int, epoch: int) -> None:
        host_index, host_count = self.host
        for entry in select_entries(self.entries, self.source, self.shuffle, epoch=epoch,
                                    host_index=host_index, host_count=host_count):
            for piece in entry:
                self._send(fd, piece)

    def _send(self, fd: int, piece: Piece) -> None:
        if piece.data is not None:
            if self.recordio:
                self._write(fd, frame(piece.data))
            else:
                self._write(fd, piece.data)
            return
        where = f"s3://{piece.bucket}/{piece.key}"
        try:
            info, raw = self.objects.open_object(piece.bucket, piece.key)
        except AwsError as err:
            raise ChannelError(f"Could not read {where}: {err.message}") from None
        with raw:
            stream: IO[bytes] | gzip.GzipFile = gzip.GzipFile(fileobj=raw, mode="rb") if self.gzip else raw
            padding = b""
            expected = None
            if self.recordio:
                expected = self._decompressed_size(piece) if self.gzip else info.size
                header, padding = frame_parts(expected)
                self._write(fd, header)
            sent = 0
            try:
                while chunk := stream.read(CHUNK):
                    self._write(fd, chunk)
                    sent += len(chunk)
            except (OSError, EOFError, zlib.error) as err:
                if isinstance(err, BrokenPipeError):
                    raise
                raise ChannelError(f"Could not stream {where}"
                                   f"{' (is it gzip?)' if self.gzip else ''}: {err}") from None
            if expected is not None and sent != expected:
                raise ChannelError(f"{where} changed while it was being streamed")
            if padding:
                self._write(fd, padding)

    def _decompressed_size(self, piece: Piece) -> int:
        """A first pass over a gzip object for its RecordIO length (nothing kept)."""
        size = 0
        try:
            _, raw = self.objects.open_object(piece.bucket, piece.key)
            with raw, gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                while chunk := stream.read(CHUNK):
                    if self.stop.is_set():
                        raise _Stopped
                    size += len(chunk)
        except AwsError as err:
            raise ChannelError(f"Could not read s3://{piece.bucket}/{piece.key}: "
                               f"{err.message}") from None
        except (OSError, EOFError, zlib.error) as err:
            raise ChannelError(f"Could not decompress s3://{piece.bucket}/{piece.key} "
                               f"(is it gzip?): {err}") from None
        return size


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
