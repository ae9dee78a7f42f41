"""The shared inference parsers: every path (one row, small body, large body) gives the same
matrix, and a bad value is reported with its line."""

from __future__ import annotations

import numpy as np
import pytest

from opensage.algorithms.inference import (
    LARGE_CSV,
    InferenceError,
    negotiate,
    parse_csv,
    parse_json,
)


def rows_csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()


@pytest.mark.parametrize("count", [1, 5, 20000])
def test_every_csv_path_reads_the_same_values(count):
    rows = np.random.default_rng(count).normal(size=(count, 7)).astype(np.float32)
    body = rows_csv(rows)
    if count == 20000:
        assert len(body) >= LARGE_CSV
    np.testing.assert_array_equal(parse_csv(body), rows)


@pytest.mark.parametrize("body", [b"1,2,x\n", b"1,2,3\n4,5,x", b"1,2,x\n" * 20000])
def test_bad_csv_names_the_value(body):
    with pytest.raises(InferenceError, match="'x'") as excinfo:
        parse_csv(body)
    assert excinfo.value.status == 400


def test_empty_fields_are_missing_values():
    assert np.isnan(parse_csv(b"1,,3")[0, 1])
    with pytest.raises(InferenceError, match="line 2 has 2 columns"):
        parse_csv(b"1,2,3\n4,5")


def test_json_dense_and_sparse_instances():
    dense = parse_json(b'{"instances": [{"features": [1, 2]}, {"data": {"features": '
                       b'{"values": [3, 4]}}}]}', lines=False)
    np.testing.assert_array_equal(dense, [[1, 2], [3, 4]])
    sparse = parse_json(b'{"data": {"features": {"keys": [1], "shape": [4], "values": [5]}}}\n',
                        lines=True)
    assert sparse.shape == (1, 4) and sparse[0, 1] == 5


def test_accept_negotiation():
    assert negotiate("application/json; verbose=true", ("application/json",), "text/csv") == (
        "application/json", {"verbose": "true"})
    assert negotiate(None, ("application/json",), "text/csv")[0] == "text/csv"
    with pytest.raises(InferenceError) as excinfo:
        negotiate("image/png", ("application/json",), "text/csv")
    assert excinfo.value.status == 406
