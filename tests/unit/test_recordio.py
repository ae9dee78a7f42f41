"""RecordIO-protobuf against the SDK's own writer and reader: byte-identical output, the same
values back, and clear errors for corrupt or inconsistent data."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

scipy_sparse = pytest.importorskip("scipy.sparse")
common = pytest.importorskip("sagemaker.amazon.common")

from opensage.data import DataError
from opensage.data.recordio import (
    MAGIC,
    decode,
    encode_dense,
    encode_outputs,
    encode_sparse,
    frame,
    iter_payloads,
)

RNG = np.random.default_rng(0)


def sdk_dense(array, labels=None) -> bytes:
    buf = io.BytesIO()
    common.write_numpy_to_dense_tensor(buf, array, labels)
    return buf.getvalue()


@pytest.mark.parametrize(("features", "labels"), [
    (RNG.random((7, 3), dtype=np.float32), RNG.random(7).astype(np.float32)),
    (RNG.random((5, 4)), None),
    (RNG.random((4, 3), dtype=np.float32), np.array([0, 1, 300, -2])),
    (RNG.integers(-5, 1000, (4, 3)), np.array([1.0, 2, 3, 4])),
    (RNG.random((6, 2), dtype=np.float32), np.array([0, 1, 1, 0, 1, 0])),
], ids=["f32+label", "f64", "f32+int-labels", "int+f64-labels", "f32+small-int-labels"])
def test_dense_bytes_equal_the_sdk_writer_and_read_back(features, labels):
    ours = encode_dense(features, labels)
    assert ours == sdk_dense(features, labels)
    data = decode(ours)
    np.testing.assert_allclose(data.features, features.astype(np.float32))
    if labels is not None:
        np.testing.assert_allclose(data.labels, labels)
    sdk_records = common.read_records(io.BytesIO(ours))
    assert len(sdk_records) == len(features)


def test_sparse_bytes_equal_the_sdk_writer_and_read_back():
    matrix = scipy_sparse.random(9, 12, density=0.3, format="csr", dtype=np.float32,
                                 random_state=1)
    labels = np.arange(9, dtype=np.float32)
    buf = io.BytesIO()
    common.write_spmatrix_to_sparse_tensor(buf, matrix, labels)
    ours = encode_sparse(matrix, labels)
    assert ours == buf.getvalue()
    data = decode(ours)
    assert data.features.shape == (9, 12)  # rows without non-zeros keep their shape
    assert (data.features != matrix).nnz == 0
    np.testing.assert_array_equal(data.labels, labels)


def test_responses_are_records_the_sdk_reads():
    body = encode_outputs({"closest_cluster": np.array([1, 2]),
                           "distance_to_cluster": np.array([0.5, 0.25])})
    records = common.read_records(io.BytesIO(body))
    assert [r.label["closest_cluster"].float32_tensor.values[0] for r in records] == [1, 2]
    assert records[1].label["distance_to_cluster"].float32_tensor.values[0] == 0.25


def test_split_records_are_joined_with_the_magic_between_parts():
    payload = sdk_dense(np.ones((1, 2), np.float32))[8:]
    head, tail = payload[:8], payload[8:]

    def part(flag: int, body: bytes) -> bytes:
        return (struct.pack("<II", MAGIC, flag << 29 | len(body)) + body
                + b"\0" * (-len(body) % 4))

    stream = part(1, head) + part(3, tail)
    joined = list(iter_payloads(stream))
    assert joined == [head + struct.pack("<I", MAGIC) + tail]


@pytest.mark.parametrize(("stream", "message"), [
    (b"\x00" * 16, "magic"),
    (frame(b"\x0a\x05abc")[:-4], "truncated"),
    (struct.pack("<II", MAGIC, 3 << 29 | 4) + b"abcd", "never began"),
    (frame(b"\x0a\xff"), "not a valid protobuf Record"),
])
def test_corrupt_streams_are_data_errors(stream, message):
    with pytest.raises(DataError, match=message):
        decode(stream)


def test_mixed_dense_and_sparse_records_are_refused():
    dense = encode_dense(np.ones((2, 3), np.float32))
    sparse = encode_sparse(scipy_sparse.csr_matrix(np.ones((1, 3), np.float32)))
    with pytest.raises(DataError, match="must not mix dense and sparse"):
        decode(dense + sparse)


def test_different_widths_and_missing_labels_are_refused():
    with pytest.raises(DataError, match="record 3 has 4 features but record 1 has 3"):
        decode(encode_dense(np.ones((2, 3), np.float32)) + encode_dense(np.ones((1, 4),
                                                                                np.float32)))
    labelled = encode_dense(np.ones((1, 3), np.float32), np.ones(1, np.float32))
    with pytest.raises(DataError, match="lacks a label"):
        decode(labelled + encode_dense(np.ones((1, 3), np.float32)))


def test_the_fast_path_and_the_general_parser_agree():
    features = RNG.random((50, 5), dtype=np.float32)
    labels = RNG.random(50).astype(np.float32)
    fast = decode(encode_dense(features, labels))
    # One float64 record at the end forces the general parser for the whole stream.
    slow = decode(encode_dense(features, labels) +
                  encode_dense(features[:1].astype(np.float64), labels[:1].astype(np.float64)))
    np.testing.assert_array_equal(slow.features[:50], fast.features)
    np.testing.assert_array_equal(slow.labels[:50], fast.labels)
