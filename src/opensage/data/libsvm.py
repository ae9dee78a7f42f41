"""LIBSVM text: ``<label>[:<weight>] [qid:<id>] <index>:<value> ...`` per line, ``#`` comments.

Indices are taken as written (0-based columns, as xgboost's own loader does), absent entries
are missing values. Lines are split and converted with pyarrow compute kernels over the whole
file at once; no per-line Python.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.data import DataError, LabeledData, data_files, open_binary, to_numpy

__all__ = ["LibsvmRows", "read_libsvm", "read_libsvm_file"]

BLOCK_SIZE = 1 << 24  # 16 MiB: a single line must fit in one block
_NO_DELIMITER = "\x1f"  # the CSV reader is used only to split lines


class LibsvmRows:
    """One file's rows in CSR pieces."""

    def __init__(self, labels: NDArray[Any], weights: NDArray[Any] | None, qid: NDArray[Any] | None,
                 indptr: NDArray[Any], indices: NDArray[Any], values: NDArray[Any]) -> None:
        self.labels = labels
        self.weights = weights
        self.qid = qid
        self.indptr = indptr
        self.indices = indices
        self.values = values

    @property
    def num_rows(self) -> int:
        return len(self.labels)

    @property
    def width(self) -> int:
        return int(self.indices.max()) + 1 if len(self.indices) else 0


def _lines(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with open_binary(path) as stream:
            table = pacsv.read_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=["line"], block_size=BLOCK_SIZE),
                parse_options=pacsv.ParseOptions(delimiter=_NO_DELIMITER, quote_char=False,
                                                 escape_char=False, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()},
                                                     strings_can_be_null=False),
            )
    except pa.ArrowInvalid as e:
        raise DataError(f"not valid LIBSVM text: {str(e).splitlines()[0]}", path=path) from None
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read file: {e}", path=path) from None
    return table.column(0).combine_chunks()


def _to_numbers(strings: Any, dtype: Any, path: Path, line_numbers: NDArray[Any],
                rows: NDArray[Any], what: str) -> NDArray[Any]:
    """Cast a string array to numbers; on failure name the line of the first bad value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return to_numpy(pc.cast(strings, dtype))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    numeric = pc.match_substring_regex(
        strings, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan|Infinity|NaN)$")
    if pa.types.is_integer(dtype):
        numeric = pc.match_substring_regex(strings, r"^[+-]?\d+$")
    bad = np.flatnonzero(~to_numpy(numeric))
    first = int(bad[0]) if len(bad) else 0
    value = strings[first].as_py()
    raise DataError(f"{what} {value!r} is not a number; LIBSVM lines look like "
                    f"'<label> <index>:<value> ...'",
                    path=path, line=int(line_numbers[rows[first]]))


def _element(lists: Any, index: int) -> Any:
    """Element ``index`` of every list (each has one); list_slice avoids a scalar argument,
    whose conversion would make pyarrow import pandas."""
    import pyarrow.compute as pc

    return pc.list_flatten(pc.list_slice(lists, index, index + 1))


def read_libsvm_file(path: str | os.PathLike[str]) -> LibsvmRows:
    """Parse one LIBSVM file (gzip or not)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    path = Path(path)
    lines = _lines(path)
    cleaned = pc.utf8_trim_whitespace(pc.replace_substring_regex(lines, pattern="#.*",
                                                                 replacement=""))
    keep = pc.cast(pc.utf8_length(cleaned), pa.bool_())  # non-empty (no scalar arguments)
    line_numbers = np.flatnonzero(to_numpy(keep)) + 1
    cleaned = pc.filter(cleaned, keep)
    n = len(cleaned)
    every_row = np.arange(n)
    if n == 0:
        empty_i = np.zeros(0, dtype=np.int32)
        return LibsvmRows(np.zeros(0, np.float32), None, None, np.zeros(1, np.int64), empty_i,
                          np.zeros(0, np.float32))
    tokens = pc.split_pattern_regex(cleaned, r"[ \t]+")

    # label[:weight]
    head = pc.split_pattern(_element(tokens, 0), ":")
    head_parts = to_numpy(pc.list_value_length(head))
    if (head_parts > 2).any():
        row = int(np.flatnonzero(head_parts > 2)[0])
        raise DataError("the label must be '<label>' or '<label>:<weight>'", path=path,
                        line=int(line_numbers[row]))
    labels = _to_numbers(_element(head, 0), pa.float64(), path, line_numbers,
                         every_row, "label").astype(np.float32)
    weights = None
    if (head_parts == 2).any():
        if not (head_parts == 2).all():
            row = int(np.flatnonzero(head_parts != 2)[0])
            raise DataError("some lines give an instance weight (<label>:<weight>) and this "
                            "one does not", path=path, line=int(line_numbers[row]))
        weights = _to_numbers(_element(head, 1), pa.float64(), path, line_numbers,
                              every_row, "weight").astype(np.float32)

    # features, and qid:<id> where present
    rest = pc.list_slice(tokens, 1)
    flat = pc.list_flatten(rest)
    owner = to_numpy(pc.list_parent_indices(rest))
    qid_mask = pc.starts_with(flat, "qid:")
    is_qid = to_numpy(qid_mask)
    qid = None
    if is_qid.any():
        qid_rows = owner[is_qid]
        if len(qid_rows) != n or (np.bincount(qid_rows, minlength=n) != 1).any():
            counts = np.bincount(qid_rows, minlength=n)
            row = int(np.flatnonzero(counts != 1)[0])
            raise DataError("every line needs exactly one qid:<id> when any line has one",
                            path=path, line=int(line_numbers[row]))
        qid_values = pc.utf8_slice_codeunits(pc.filter(flat, qid_mask), 4)
        order = np.argsort(qid_rows, kind="stable")
        qid = _to_numbers(qid_values, pa.int64(), path, line_numbers, qid_rows,
                          "qid")[order].astype(np.uint32)
        flat = pc.filter(flat, pc.invert(qid_mask))
        owner = owner[~is_qid]
    pairs = pc.split_pattern(flat, ":", max_splits=1)
    pair_parts = to_numpy(pc.list_value_length(pairs))
    if (pair_parts != 2).any():
        first = int(np.flatnonzero(pair_parts != 2)[0])
        raise DataError(f"{flat[first].as_py()!r} is not an <index>:<value> pair", path=path,
                        line=int(line_numbers[owner[first]]))
    indices = _to_numbers(_element(pairs, 0), pa.int64(), path, line_numbers, owner,
                          "feature index")
    if (indices < 0).any():
        first = int(np.flatnonzero(indices < 0)[0])
        raise DataError(f"feature index {int(indices[first])} is negative", path=path,
                        line=int(line_numbers[owner[first]]))
    if len(indices) and indices.max() >= 2**31 - 1:
        first = int(np.argmax(indices))
        raise DataError(f"feature index {int(indices[first])} is too large", path=path,
                        line=int(line_numbers[owner[first]]))
    values = _to_numbers(_element(pairs, 1), pa.float64(), path, line_numbers, owner,
                         "feature value").astype(np.float32)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=indptr[1:])
    return LibsvmRows(labels, weights, qid, indptr, indices.astype(np.int32), values)


def read_libsvm(location: str | os.PathLike[str], *, num_features: int | None = None,
                **_: Any) -> LabeledData:
    """Read every LIBSVM file at ``location`` into one CSR matrix.

    The width is the largest index seen plus one, or ``num_features`` when that is larger.
    """
    import scipy.sparse as sp

    parts = [read_libsvm_file(path) for path in data_files(location)]
    parts = [p for p in parts if p.num_rows]
    if not parts:
        raise DataError(f"no data: {Path(location)} holds no non-empty LIBSVM file")
    has_weights = {p.weights is not None for p in parts}
    has_qid = {p.qid is not None for p in parts}
    if len(has_weights) > 1:
        raise DataError("some files give instance weights (<label>:<weight>) and some do not")
    if len(has_qid) > 1:
        raise DataError("some files give qid:<id> and some do not")
    width = max([p.width for p in parts] + [num_features or 0])
    offsets = np.cumsum([0] + [len(p.indices) for p in parts[:-1]])
    indptr = np.concatenate([parts[0].indptr[:1]] + [p.indptr[1:] + off
                                                     for p, off in zip(parts, offsets)])
    matrix = sp.csr_matrix(
        (np.concatenate([p.values for p in parts]), np.concatenate([p.indices for p in parts]),
         indptr),
        shape=(sum(p.num_rows for p in parts), width),
    )
    matrix.sort_indices()

    # every part has them or none has (checked above)
    weights = [p.weights for p in parts if p.weights is not None]
    qid = [p.qid for p in parts if p.qid is not None]
    return LabeledData(features=matrix, labels=np.concatenate([p.labels for p in parts]),
                       weights=np.concatenate(weights).astype(np.float32) if weights else None,
                       qid=np.concatenate(qid).astype(np.uint32) if qid else None)
