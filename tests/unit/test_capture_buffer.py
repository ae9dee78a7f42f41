"""Data capture holds a bounded number of bytes between writes, whatever the traffic."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from opensage.serving.capture import CaptureService

MiB = 1024**2
CONFIG = {"EnableCapture": True, "InitialSamplingPercentage": 100,
          "DestinationS3Uri": "s3://bucket/dc",
          "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}


class SlowObjects:
    """An object store whose writes wait until ``release`` is set (a slow or stuck S3)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.writing = threading.Event()
        self.written: dict[str, bytes] = {}

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        self.writing.set()
        assert self.release.wait(10)
        self.written[f"{bucket}/{key}"] = body


def _held(service: CaptureService) -> int:
    """Body bytes the service holds and has not written yet."""
    return sum(len(event[4]) + len(event[6]) for event in list(service._events))


def test_large_captures_between_flushes_stay_under_the_default_bound() -> None:
    objects = SlowObjects()
    service = CaptureService(objects, interval=3600)
    service.configure("ep", CONFIG)
    body = b"x" * (6 * MiB)  # the largest InvokeEndpoint payload, in and out
    for _ in range(40):  # 480 MiB of captures while the writer is stuck
        service.record("ep", "v", "text/csv", body, "text/csv", body, None)
        assert _held(service) <= 64 * MiB  # the documented default
    assert service.buffered_bytes <= 64 * MiB  # queued plus being written
    assert service.dropped > 0
    objects.release.set()
    service.close()


def test_full_buffer_wakes_the_writer_drops_and_counts(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    objects = SlowObjects()
    service = CaptureService(objects, interval=3600, max_bytes=1 * MiB)
    service.configure("ep", CONFIG)
    body = b"y" * (100 * 1024)
    for _ in range(6):  # 1.2 MB: past half the bound, so the writer starts at once
        service.record("ep", "v", "text/csv", body, "text/csv", body, None)
    assert objects.writing.wait(5), "the flusher was not woken before its interval"
    for _ in range(20):  # the writer is stuck: what does not fit is dropped
        service.record("ep", "v", "text/csv", body, "text/csv", body, None)
        assert service.buffered_bytes <= service.max_bytes
    assert service.dropped >= 20 - 4  # at most 4 events (800 KiB) more fit in 1 MiB
    kept = 26 - service.dropped
    with caplog.at_level(logging.WARNING, logger="opensage.serving.capture"):
        objects.release.set()
        service.close()
    assert service.buffered_bytes == 0
    lines = [json.loads(line) for blob in objects.written.values()
             for line in blob.decode().splitlines()]
    assert len(lines) == kept
    assert f"{service.dropped} records dropped, the buffer was full" in caplog.text


def test_a_capture_larger_than_the_bound_is_dropped() -> None:
    objects = SlowObjects()
    objects.release.set()
    service = CaptureService(objects, interval=3600, max_bytes=1000)
    service.configure("ep", CONFIG)
    service.record("ep", "v", "text/csv", b"z" * 2000, "text/csv", b"", None)
    service.record("ep", "v", "text/csv", b"small", "text/csv", b"ok", None)
    assert service.dropped == 1
    service.flush()
    assert len(objects.written) == 1 and service.buffered_bytes == 0
    service.close()


def test_uncaptured_side_is_not_held() -> None:
    objects = SlowObjects()
    objects.release.set()
    service = CaptureService(objects, interval=3600, max_bytes=10 * MiB)
    service.configure("ep", {**CONFIG, "CaptureOptions": [{"CaptureMode": "Output"}]})
    service.record("ep", "v", "text/csv", b"i" * MiB, "text/csv", b"out", None)
    assert _held(service) == 3
    service.close()
    assert len(objects.written) == 1
