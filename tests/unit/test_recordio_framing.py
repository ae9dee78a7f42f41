"""RecordIO framing (data/recordio.py), the one framer Pipe mode and batch transform use: frames
written around a payload, frames read back from a stream that hands out bytes in pieces, and
clear errors for a cut or foreign stream."""

from __future__ import annotations

import io
import struct

import pytest

from opensage.data import DataError
from opensage.data.recordio import MAGIC, MAX_PAYLOAD, frame, frame_parts, iter_frames


def spec_frame(payload: bytes, cflag: int = 0) -> bytes:
    """A frame written from the format's description, independently of the code under test."""
    return (struct.pack("<II", 0xCED7230A, cflag << 29 | len(payload)) + payload
            + b"\0" * (-len(payload) % 4))


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, as a pipe or socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        take = self._step if size < 0 else min(size, self._step)
        out, self._data = bytes(self._data[:take]), self._data[take:]
        return out


def test_frame_parts_surround_a_payload_as_the_format_says() -> None:
    for length in (0, 1, 3, 4, 5, 1000):
        header, padding = frame_parts(length)
        assert header + b"x" * length + padding == spec_frame(b"x" * length)
        assert frame(b"x" * length) == spec_frame(b"x" * length)
    assert MAGIC == 0xCED7230A


def test_a_payload_over_29_bits_is_refused() -> None:
    assert frame_parts(MAX_PAYLOAD)[0] == struct.pack("<II", MAGIC, (1 << 29) - 1)
    with pytest.raises(DataError, match=f"{MAX_PAYLOAD + 1} bytes do not fit"):
        frame_parts(MAX_PAYLOAD + 1)


def test_frames_come_back_with_or_without_their_padding() -> None:
    stream = spec_frame(b"abcde") + spec_frame(b"") + spec_frame(b"wxyz")
    assert list(iter_frames(io.BytesIO(stream), keep_padding=True)) == [
        spec_frame(b"abcde"), spec_frame(b""), spec_frame(b"wxyz")]
    assert list(iter_frames(io.BytesIO(stream))) == [
        spec_frame(b"abcde")[:13], spec_frame(b""), spec_frame(b"wxyz")]
    assert list(iter_frames(io.BytesIO(b""))) == []


@pytest.mark.parametrize("step", [1, 3, 7])
def test_a_frame_split_across_reads_is_read_whole(step: int) -> None:
    payloads = [b"a" * 13, b"", b"bb", b"c" * 40]
    stream = b"".join(spec_frame(p) for p in payloads)
    assert list(iter_frames(Trickle(stream, step), keep_padding=True)) == [
        spec_frame(p) for p in payloads]


def test_split_records_pass_through_with_their_continuation_flags() -> None:
    parts = [spec_frame(b"head", 1), spec_frame(b"mid", 2), spec_frame(b"tail", 3)]
    assert list(iter_frames(io.BytesIO(b"".join(parts)), keep_padding=True)) == parts


def test_short_padding_at_the_very_end_is_tolerated() -> None:
    stream = spec_frame(b"abcde")[:-1]  # a writer that left off the last padding bytes
    assert list(iter_frames(io.BytesIO(stream))) == [spec_frame(b"abcde")[:13]]


@pytest.mark.parametrize(("stream", "message"), [
    (spec_frame(b"abcd") + spec_frame(b"0123456789")[:11],
     r"s3://b/k: record 2 is truncated \(10 bytes announced, 3 left\)"),
    (spec_frame(b"abcd") + b"\x0a\x23", r"s3://b/k: truncated RecordIO header at byte 12"),
    (spec_frame(b"abcd") + b"1,2,3\n4,5,6\n",
     r"s3://b/k: record 2 \(byte 12\) does not start with the RecordIO magic number"),
])
def test_a_cut_or_foreign_stream_is_a_clear_error(stream: bytes, message: str) -> None:
    frames = iter_frames(Trickle(stream, 5), where="s3://b/k")
    assert next(frames) == spec_frame(b"abcd")
    with pytest.raises(DataError, match=message):
        next(frames)
