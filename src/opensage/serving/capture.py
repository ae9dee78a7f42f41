"""Endpoint data capture (``DataCaptureConfig``), in AWS's layout.

``record`` is on the InvokeEndpoint path: a sampling draw (a per-endpoint ``Random``), a size
check and a deque append, nothing else. A flusher thread encodes the buffered events every
``FLUSH_SECONDS`` (and ``flush`` does it on demand: endpoint delete, server close, tests) and
writes one JSON-lines object per endpoint, variant and hour to
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<hh-mm-ss>-<uuid>.jsonl``. Each line::

    {"captureData": {"endpointInput": {"observedContentType", "mode": "INPUT", "data",
                                       "encoding"}, "endpointOutput": {...}},
     "eventMetadata": {"eventId", "inferenceTime", "inferenceId"?}, "eventVersion": "0"}

The encoding is ``CSV`` or ``JSON`` when the content type is listed in the configuration's
``CaptureContentTypeHeader`` (``CsvContentTypes`` / ``JsonContentTypes``), else ``BASE64``
(as AWS does when no header is configured). A missing destination bucket is logged and the
events dropped; nothing is created.

The buffer is bounded by ``max_bytes`` (``OPENSAGE_CAPTURE_BUFFER_BYTES``): the bodies of
every event recorded and not yet written count against it. Past half the bound the flusher is
woken to write at once (a spill, still off the request path); an event that would go past the
bound is dropped, counted in ``dropped`` and reported in one warning per flush.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import random
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

from opensage.errors import AwsError

__all__ = ["CaptureService", "flush_all"]

FLUSH_SECONDS = 5.0
DEFAULT_BUFFER_BYTES = 64 * 1024**2
EVENT_OVERHEAD = 256  # bytes an event costs besides its bodies (tuple, strings, config ref)
log = logging.getLogger(__name__)
_services: weakref.WeakSet[CaptureService] = weakref.WeakSet()


@dataclass
class CaptureConfig:
    endpoint: str
    bucket: str
    prefix: str
    percentage: float
    inputs: bool
    outputs: bool
    csv_types: frozenset[str]
    json_types: frozenset[str]
    rng: random.Random

    @classmethod
    def parse(cls, endpoint: str, config: dict[str, Any] | None) -> CaptureConfig | None:
        if not config or not config.get("EnableCapture", True):
            return None
        uri = str(config.get("DestinationS3Uri") or "")
        scheme, _, rest = uri.partition("://")
        bucket, _, prefix = rest.partition("/")
        if scheme not in ("s3", "https") or not bucket:
            return None
        modes = {str(o.get("CaptureMode", "")) for o in config.get("CaptureOptions") or []}
        header = config.get("CaptureContentTypeHeader") or {}
        return cls(endpoint=endpoint, bucket=bucket, prefix=prefix.strip("/"),
                   percentage=float(config.get("InitialSamplingPercentage") or 0),
                   inputs=bool(modes & {"Input", "InputAndOutput"}),
                   outputs=bool(modes & {"Output", "InputAndOutput"}),
                   csv_types=frozenset(header.get("CsvContentTypes") or ()),
                   json_types=frozenset(header.get("JsonContentTypes") or ()),
                   rng=random.Random(endpoint))

    def encode(self, mode: str, content_type: str, data: bytes) -> dict[str, str]:
        media = content_type.split(";", 1)[0].strip()
        encoding = "BASE64"
        if content_type in self.csv_types or media in self.csv_types:
            encoding = "CSV"
        elif content_type in self.json_types or media in self.json_types:
            encoding = "JSON"
        text = None
        if encoding != "BASE64":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                encoding = "BASE64"
        if text is None:
            text = base64.b64encode(data).decode("ascii")
        return {"observedContentType": content_type, "mode": mode, "data": text,
                "encoding": encoding}


class CaptureWriter(Protocol):
    """Where captured records go: the object store (tests pass a slow or failing fake)."""

    def put_object(self, bucket: str, key: str, body: bytes) -> object: ...


# (config, variant, epoch seconds, input type, input, output type, output, inference id)
_Event = tuple[CaptureConfig, str, float, str, bytes, str, bytes, "str | None"]


def _size(event: _Event) -> int:
    return len(event[4]) + len(event[6]) + EVENT_OVERHEAD


class CaptureService:
    def __init__(self, objects: CaptureWriter, interval: float = FLUSH_SECONDS,
                 max_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        self.objects = objects
        self.interval = interval
        self.max_bytes = max_bytes
        self.buffered_bytes = 0  # recorded and not yet written (or dropped by a failed write)
        self.dropped = 0  # events refused because the buffer was full, since start
        self._dropped_unreported = 0
        self._configs: dict[str, CaptureConfig] = {}
        self._events: collections.deque[_Event] = collections.deque()
        self._bytes_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._closing = threading.Event()
        self._wake = threading.Event()  # half full: the flusher writes now
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        _services.add(self)

    # -- configuration (deploy / delete) ---------------------------------------------------
    def configure(self, endpoint: str, config: dict[str, Any] | None) -> None:
        parsed = CaptureConfig.parse(endpoint, config)
        if parsed is None:
            self._configs.pop(endpoint.lower(), None)
            return
        self._configs[endpoint.lower()] = parsed
        self._ensure_thread()

    def remove(self, endpoint: str) -> None:
        """The endpoint is gone: write what it captured, capture no more."""
        self._configs.pop(endpoint.lower(), None)
        self.flush()

    # -- the invocation path ---------------------------------------------------------------
    def record(self, endpoint: str, variant: str, input_type: str, data: bytes,
               output_type: str, output: bytes, inference_id: str | None) -> None:
        config = self._configs.get(endpoint.lower())
        if config is None or config.percentage <= 0:
            return
        if config.percentage < 100 and config.rng.random() * 100 >= config.percentage:
            return
        event: _Event = (config, variant, time.time(), input_type,
                         data if config.inputs else b"", output_type,
                         output if config.outputs else b"", inference_id)
        size = _size(event)
        with self._bytes_lock:
            if self.buffered_bytes + size > self.max_bytes:
                self.dropped += 1
                self._dropped_unreported += 1
                full = True
            else:
                self.buffered_bytes += size
                self._events.append(event)
                full = self.buffered_bytes * 2 > self.max_bytes
        if full:
            self._wake.set()

    # -- writing ---------------------------------------------------------------------------
    def flush(self) -> None:
        with self._flush_lock:
            self._wake.clear()
            files: dict[tuple[str, str, str, str, str], list[_Event]] = {}
            while self._events:
                event = self._events.popleft()
                config, variant = event[0], event[1]
                file = (config.bucket, config.prefix, config.endpoint, variant,
                        time.strftime("%Y/%m/%d/%H", time.gmtime(event[2])))
                files.setdefault(file, []).append(event)
            now = time.strftime("%H-%M-%S", time.gmtime())
            while files:  # one file at a time: its bytes are released once it is written
                (bucket, prefix, endpoint, variant, hour), events = files.popitem()
                name = f"{endpoint}/{variant}/{hour}/{now}-{uuid.uuid4()}.jsonl"
                key = f"{prefix}/{name}" if prefix else name
                try:
                    self.objects.put_object(bucket, key, _jsonl(events))
                except (AwsError, OSError) as e:  # e.g. NoSuchBucket: drop, create nothing
                    log.warning("data capture for endpoint %s: %d records dropped, could not "
                                "write s3://%s/%s: %s", endpoint, len(events), bucket, key, e)
                finally:
                    with self._bytes_lock:
                        self.buffered_bytes -= sum(map(_size, events))
            with self._bytes_lock:
                dropped, self._dropped_unreported = self._dropped_unreported, 0
        if dropped:
            log.warning("data capture: %d records dropped, the buffer was full (%d bytes, "
                        "OPENSAGE_CAPTURE_BUFFER_BYTES)", dropped, self.max_bytes)

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._closing.clear()
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name="endpoint-capture")
            self._thread.start()

    def _loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(self.interval)
            try:
                self.flush()
            except Exception:
                log.exception("writing endpoint data capture failed")

    def close(self) -> None:
        """Server shutdown: stop the flusher and write what is buffered."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def reset(self) -> None:
        self._configs.clear()
        with self._flush_lock, self._bytes_lock:
            self.buffered_bytes -= sum(map(_size, self._events))
            self._events.clear()


def _jsonl(events: list[_Event]) -> bytes:
    lines = []
    for config, _, when, in_type, data, out_type, output, inference_id in events:
        capture: dict[str, Any] = {}
        if config.inputs:
            capture["endpointInput"] = config.encode("INPUT", in_type, data)
        if config.outputs:
            capture["endpointOutput"] = config.encode("OUTPUT", out_type, output)
        metadata = {"eventId": str(uuid.uuid4()),
                    "inferenceTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))}
        if inference_id:
            metadata["inferenceId"] = inference_id
        lines.append(json.dumps({"captureData": capture, "eventMetadata": metadata,
                                 "eventVersion": "0"}, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def flush_all() -> None:
    """Write every server's buffered captures now (tests, tooling)."""
    for service in list(_services):
        service.flush()
