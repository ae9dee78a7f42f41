"""Labeled CSV as SageMaker's built-ins take it: no header, label in the first column,
optionally an instance weight in the second (xgboost's ``csv_weights=1``).

Parsing is pyarrow's multi-threaded CSV reader with every column typed float32 (empty fields
become NaN, i.e. missing), then one float32 matrix; no per-row Python. The delimiter is
sniffed from the first line (``,`` ``\\t`` ``;`` ``|`` or space), as the xgboost container does.
"""

from __future__ import annotations

import os
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.data import (
    DataError,
    LabeledData,
    data_files,
    is_gzip,
    iter_lines,
    open_binary,
    to_numpy,
)

__all__ = ["read_csv", "read_csv_file", "read_csv_split", "sniff_delimiter",
           "table_to_arrays"]

DELIMITERS = (",", "\t", ";", "|", " ")
BLOCK_SIZE = 1 << 22  # 4 MiB: a row must fit in one block; smaller blocks parse in parallel
_BAD_VALUE = re.compile(r"column #(\d+): .*invalid value '(.*)'", re.DOTALL)
_BAD_WIDTH = re.compile(r"Expected (\d+) columns, got (\d+)")


def sniff_delimiter(line: str) -> str:
    """The likeliest delimiter of a CSV line (``,`` when it has a single column)."""
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _first_line(path: Path) -> str | None:
    with open_binary(path) as f:
        for raw in f:
            text = raw.decode("utf-8", errors="replace").strip("\r\n")
            if text.strip():
                return text
    return None


def read_csv_file(path: str | os.PathLike[str], *,
                  delimiter: str | None = None) -> NDArray[Any] | None:
    """One CSV file as a float32 ``(rows, columns)`` array; None when the file is empty."""
    parts = read_csv_split(path, 0, delimiter=delimiter)
    return None if parts is None else parts[1]


def read_csv_split(path: str | os.PathLike[str], head: int, *,
                   delimiter: str | None = None) -> tuple[NDArray[Any], NDArray[Any]] | None:
    """One CSV file as two C-contiguous float32 arrays: its first ``head`` columns (label,
    weight) and the rest (features); None when the file is empty."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    try:
        first = _first_line(path)
    except (OSError, EOFError) as e:  # a truncated or corrupt gzip stream
        raise DataError(f"cannot read file: {e}", path=path) from None
    if first is None:
        return None
    delimiter = delimiter or sniff_delimiter(first)
    width = len(first.split(delimiter))
    names = [f"c{i}" for i in range(width)]
    try:
        # A plain file is given to Arrow by name (its own multi-threaded I/O, no Python file
        # object in between); gzip goes through the decompressing stream.
        with (open_binary(path) if is_gzip(path) else nullcontext(str(path))) as stream:
            table = pacsv.read_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.float32() for n in names},
                    null_values=["", "nan", "NaN", "NA", "N/A", "null", "?"],
                    strings_can_be_null=True),
            )
    except pa.ArrowInvalid as e:
        raise _explain(path, str(e), delimiter, width) from None
    except (OSError, EOFError) as e:  # a truncated or corrupt gzip stream
        raise DataError(f"cannot read file: {e}", path=path) from None
    return table_to_arrays(table, head)


def table_to_arrays(table: Any, head: int = 0) -> tuple[NDArray[Any], NDArray[Any]]:
    """An Arrow table of numeric columns as two C-contiguous float32 arrays: its first
    ``head`` columns and the rest. Assembled one parsed block at a time: the block's rows
    stay in cache while its columns are interleaved, instead of strided writes over the
    whole matrix per column."""
    width = table.num_columns
    head = min(head, width)
    first_part = np.empty((table.num_rows, head), dtype=np.float32)
    rest = np.empty((table.num_rows, width - head), dtype=np.float32)
    start = 0
    for batch in table.to_batches():
        rows = slice(start, start + batch.num_rows)
        columns = [to_numpy(batch.column(i)) for i in range(width)]
        if head:
            first_part[rows] = np.column_stack(columns[:head])
        if width > head:
            rest[rows] = np.column_stack(columns[head:])
        start += batch.num_rows
    return first_part, rest


def _explain(path: Path, message: str, delimiter: str, width: int) -> DataError:
    """Turn pyarrow's error into one that names the file and line."""
    bad_value = _BAD_VALUE.search(message)
    if bad_value:
        column, value = int(bad_value.group(1)), bad_value.group(2)
        line = _find_line(path, lambda fields: len(fields) > column and
                          fields[column].strip().strip('"') == value, delimiter)
        hint = (" (the CSV must have no header row)" if line == 1 else "")
        return DataError(f"column {column + 1} has the non-numeric value {value!r}{hint}; "
                         f"CSV data must be numeric with the label in the first column",
                         path=path, line=line)
    bad_width = _BAD_WIDTH.search(message)
    if bad_width:
        got = int(bad_width.group(2))
        line = _find_line(path, lambda fields: len(fields) != width, delimiter)
        return DataError(f"expected {width} columns, as in the first line, but found {got}",
                         path=path, line=line)
    return DataError(f"not valid CSV: {message.splitlines()[0] if message else message}",
                     path=path)


def _find_line(path: Path, bad: Any, delimiter: str) -> int | None:
    """The 1-based number of the first line for which ``bad(fields)`` holds (error path only)."""
    try:
        for number, raw in enumerate(iter_lines(path), start=1):
            text = raw.decode("utf-8", errors="replace").strip("\r\n")
            if text.strip() and bad(text.split(delimiter)):
                return number
    except (OSError, EOFError):
        return None
    return None


def _nth_row_line(path: Path, row: int) -> int | None:
    """The line number of data row ``row`` (0-based; empty lines do not count)."""
    seen = -1
    try:
        for number, raw in enumerate(iter_lines(path), start=1):
            if raw.strip():
                seen += 1
                if seen == row:
                    return number
    except (OSError, EOFError):
        return None
    return None


def read_csv(location: str | os.PathLike[str], *, weight_column: bool = False,
             delimiter: str | None = None) -> LabeledData:
    """Read every CSV file at ``location`` (a file or a channel directory).

    Column 0 is the label; with ``weight_column`` column 1 is the instance weight; the rest are
    features. All files must have the same number of columns.
    """
    files = data_files(location)
    first_columns = 2 if weight_column else 1
    heads: list[NDArray[Any]] = []
    features: list[NDArray[Any]] = []
    width: int | None = None
    width_from: Path | None = None
    for path in files:
        parts = read_csv_split(path, first_columns, delimiter=delimiter)
        if parts is None:
            continue
        head, rest = parts
        columns = head.shape[1] + rest.shape[1]
        if head.shape[1] < first_columns or not rest.shape[1]:
            what = "a label and a weight column" if weight_column else "a label column"
            raise DataError(f"has {columns} column(s); needs at least {what} and a feature",
                            path=path)
        if width is None:
            width, width_from = columns, path
        elif columns != width:
            assert width_from is not None
            raise DataError(f"has {columns} columns but {width_from.name} has {width}; "
                            f"every file of a channel needs the same columns", path=path)
        if np.isnan(head[:, 0]).any():
            row = int(np.flatnonzero(np.isnan(head[:, 0]))[0])
            raise DataError("the label (first column) is missing", path=path,
                            line=_nth_row_line(path, row))
        if weight_column and np.isnan(head[:, 1]).any():
            row = int(np.flatnonzero(np.isnan(head[:, 1]))[0])
            raise DataError("the weight (second column, csv_weights=1) is missing", path=path,
                            line=_nth_row_line(path, row))
        heads.append(head)
        features.append(rest)
    if not heads:
        raise DataError(f"no data: {Path(location)} holds no non-empty CSV file")
    head = heads[0] if len(heads) == 1 else np.concatenate(heads)
    data = features[0] if len(features) == 1 else np.concatenate(features)
    return LabeledData(
        features=data,
        labels=np.ascontiguousarray(head[:, 0]),
        weights=np.ascontiguousarray(head[:, 1]) if weight_column else None,
    )
