"""CSV and LIBSVM readers against numpy on the same data; gzip; errors that name file and line."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("scipy")

from opensage.data import DataError, data_files, read_labeled
from opensage.data.csv import read_csv, sniff_delimiter
from opensage.data.libsvm import read_libsvm


def write_csv(path: Path, data: np.ndarray, delimiter: str = ",", compress: bool = False) -> None:
    text = "\n".join(delimiter.join(repr(float(v)) for v in row) for row in data) + "\n"
    raw = text.encode()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def random_table(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, cols)).round(6)


# -------------------------------------------------------------------------------------- csv


def test_csv_matches_numpy(tmp_path):
    data = random_table(50, 6)
    write_csv(tmp_path / "a.csv", data)
    result = read_csv(tmp_path / "a.csv")
    expected = np.loadtxt(tmp_path / "a.csv", delimiter=",", dtype=np.float32)
    np.testing.assert_array_equal(result.labels, expected[:, 0])
    np.testing.assert_array_equal(result.features, expected[:, 1:])
    assert result.weights is None
    assert result.features.dtype == np.float32 and result.features.flags.c_contiguous
    assert (result.num_rows, result.num_features) == (50, 5)


def test_csv_reads_every_file_of_a_channel_gzip_too(tmp_path):
    parts = [random_table(10, 4, seed) for seed in range(3)]
    write_csv(tmp_path / "part-0.csv", parts[0])
    write_csv(tmp_path / "part-1.csv.gz", parts[1], compress=True)
    (tmp_path / "sub").mkdir()
    write_csv(tmp_path / "sub" / "part-2", parts[2], compress=True)  # gzip without extension
    (tmp_path / ".hidden.csv").write_text("not,data\n")
    (tmp_path / "_SUCCESS").write_text("")
    result = read_labeled(tmp_path, "csv")
    expected = np.concatenate(parts).astype(np.float32)
    np.testing.assert_array_equal(result.labels, expected[:, 0])
    np.testing.assert_array_equal(result.features, expected[:, 1:])
    assert [p.name for p in data_files(tmp_path)] == ["part-0.csv", "part-1.csv.gz", "part-2"]


def test_csv_weights_column(tmp_path):
    data = random_table(20, 5)
    write_csv(tmp_path / "w.csv", data)
    result = read_csv(tmp_path, weight_column=True)
    np.testing.assert_array_equal(result.weights, data[:, 1].astype(np.float32))
    np.testing.assert_array_equal(result.features, data[:, 2:].astype(np.float32))


def test_csv_empty_fields_are_missing_and_other_delimiters_work(tmp_path):
    (tmp_path / "a.tsv").write_text("1\t2\t\n0\t\t4\n\n")
    result = read_csv(tmp_path)
    np.testing.assert_array_equal(result.labels, [1, 0])
    np.testing.assert_array_equal(result.features, [[2, np.nan], [np.nan, 4]])
    assert sniff_delimiter("1;2;3") == ";" and sniff_delimiter("5") == ","


def test_csv_non_numeric_value_names_file_and_line(tmp_path):
    (tmp_path / "bad.csv").write_text("1,2,3\n0,4,5\n1,x7,2\n")
    with pytest.raises(DataError) as excinfo:
        read_csv(tmp_path)
    assert str(excinfo.value).startswith("bad.csv, line 3: column 2 has the non-numeric value "
                                         "'x7'")
    assert excinfo.value.line == 3


def test_csv_header_row_gets_a_hint(tmp_path):
    (tmp_path / "h.csv").write_text("label,f1\n1,2\n")
    with pytest.raises(DataError, match=r"h.csv, line 1: .*no header row"):
        read_csv(tmp_path)


def test_csv_ragged_row_names_file_and_line(tmp_path):
    (tmp_path / "r.csv").write_text("1,2,3\n0,4,5\n\n1,2\n")
    with pytest.raises(DataError, match=r"^r.csv, line 4: expected 3 columns"):
        read_csv(tmp_path)


def test_csv_files_with_different_widths(tmp_path):
    write_csv(tmp_path / "a.csv", random_table(3, 3))
    write_csv(tmp_path / "b.csv", random_table(3, 4))
    with pytest.raises(DataError, match=r"b.csv: has 4 columns but a.csv has 3"):
        read_csv(tmp_path)


def test_csv_missing_label(tmp_path):
    (tmp_path / "m.csv").write_text("1,2\n,3\n")
    with pytest.raises(DataError, match=r"m.csv, line 2: the label"):
        read_csv(tmp_path)


def test_corrupt_gzip_names_the_file(tmp_path):
    good = gzip.compress(b"1,2,3\n" * 1000)
    (tmp_path / "c.csv.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"^c.csv.gz: "):
        read_csv(tmp_path)


def test_empty_channel(tmp_path):
    with pytest.raises(DataError, match="no data"):
        read_csv(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        read_csv(tmp_path / "missing")


# ----------------------------------------------------------------------------------- libsvm


def sparse_table(rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(rows, cols)).round(5)
    present = rng.random((rows, cols)) < 0.4
    labels = rng.integers(0, 2, size=rows).astype(float)
    return labels, np.where(present, dense, np.nan)


def write_libsvm(path: Path, labels: np.ndarray, dense: np.ndarray, compress: bool = False,
                 weights: np.ndarray | None = None, qid: np.ndarray | None = None) -> None:
    lines = []
    for i, (label, row) in enumerate(zip(labels, dense)):
        head = f"{label:g}" if weights is None else f"{label:g}:{weights[i]:g}"
        if qid is not None:
            head += f" qid:{qid[i]}"
        pairs = " ".join(f"{j}:{v!r}" for j, v in enumerate(row) if not np.isnan(v))
        lines.append(f"{head} {pairs}".rstrip())
    raw = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def as_dense(matrix) -> np.ndarray:
    """CSR -> dense with absent entries as NaN (missing), as XGBoost sees them."""
    out = np.full(matrix.shape, np.nan, dtype=np.float32)
    coo = matrix.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


def test_libsvm_matches_numpy(tmp_path):
    labels, dense = sparse_table(40, 7)
    write_libsvm(tmp_path / "a.libsvm", labels, dense)
    result = read_libsvm(tmp_path)
    np.testing.assert_array_equal(result.labels, labels.astype(np.float32))
    width = int(np.max(np.nonzero(~np.isnan(dense))[1])) + 1
    np.testing.assert_array_equal(as_dense(result.features), dense[:, :width].astype(np.float32))
    assert result.weights is None and result.qid is None


def test_libsvm_matches_xgboosts_own_loader(tmp_path):
    xgb = pytest.importorskip("xgboost")
    labels, dense = sparse_table(30, 5, seed=3)
    write_libsvm(tmp_path / "a.txt", labels, dense)
    ours = read_libsvm(tmp_path / "a.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = xgb.DMatrix(f"{tmp_path / 'a.txt'}?format=libsvm")
    np.testing.assert_array_equal(ours.labels, theirs.get_label())
    assert ours.features.nnz == theirs.get_data().nnz
    # XGBoost's text parser is not correctly rounded: its values may be one float32 ulp off.
    np.testing.assert_allclose(ours.features.toarray(), theirs.get_data().toarray(), rtol=2e-7)


def test_libsvm_gzip_several_files_weights_qid_comments(tmp_path):
    l1, d1 = sparse_table(10, 4, seed=1)
    l2, d2 = sparse_table(10, 6, seed=2)
    w = np.linspace(0.5, 2, 20)
    q = np.repeat([1, 2, 3, 4], 5)
    write_libsvm(tmp_path / "a", l1, d1, weights=w[:10], qid=q[:10])
    write_libsvm(tmp_path / "b.gz", l2, d2, compress=True, weights=w[10:], qid=q[10:])
    with open(tmp_path / "a", "a") as f:
        f.write("# a comment line\n\n")
    result = read_libsvm(tmp_path)
    np.testing.assert_array_equal(result.labels, np.concatenate([l1, l2]).astype(np.float32))
    np.testing.assert_allclose(result.weights, w, rtol=1e-5)
    np.testing.assert_array_equal(result.qid, q)
    padded = np.full((10, 6), np.nan)
    padded[:, :4] = d1
    expected = np.concatenate([padded, d2]).astype(np.float32)
    np.testing.assert_array_equal(as_dense(result.features), expected[:, : result.num_features])


def test_libsvm_bad_pair_names_file_and_line(tmp_path):
    (tmp_path / "bad.libsvm").write_text("1 0:1.5 3:2\n# comment\n0 1:1\n1 2:x\n")
    with pytest.raises(DataError) as excinfo:
        read_libsvm(tmp_path)
    assert str(excinfo.value).startswith("bad.libsvm, line 4: feature value 'x' is not a number")


@pytest.mark.parametrize(("text", "message"), [
    ("1 0:1\n0 5\n", "line 2: '5' is not an <index>:<value> pair"),
    ("1 0:1\nyes 1:2\n", "line 2: label 'yes' is not a number"),
    ("1 0:1\n0 -1:2\n", "line 2: feature index -1 is negative"),
    ("1 a:1\n", "line 1: feature index 'a' is not a number"),
    ("1:2 0:1\n0 1:1\n", "line 2: some lines give an instance weight"),
])
def test_libsvm_errors(tmp_path, text, message):
    (tmp_path / "f.txt").write_text(text)
    with pytest.raises(DataError, match=message):
        read_libsvm(tmp_path)


def test_read_labeled_unknown_format(tmp_path):
    with pytest.raises(DataError, match="unsupported data format 'feather'"):
        read_labeled(tmp_path, "feather")


def test_to_numpy_reads_arrow_buffers():
    import pyarrow as pa

    from opensage.data import to_numpy

    floats = pa.chunked_array([pa.array([1.0, None, 3.0, 4.0]).slice(1), pa.array([5.0])])
    np.testing.assert_array_equal(to_numpy(floats), [np.nan, 3.0, 4.0, 5.0])
    flags = pa.array([True, False, True, True, False, True, False, False, True, True]).slice(3)
    np.testing.assert_array_equal(to_numpy(flags), [True, False, True, False, False, True, True])
    ints = pa.array([7, 8, 9], pa.int32()).slice(1)
    assert to_numpy(ints).tolist() == [8, 9] and to_numpy(ints).dtype == np.int32
    assert to_numpy(pa.array([1, None], pa.int64())).tolist()[0] == 1.0
    assert len(to_numpy(pa.chunked_array([], pa.float64()))) == 0
