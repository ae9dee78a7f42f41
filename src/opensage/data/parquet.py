"""Labeled Parquet as the xgboost container reads it: the first column is the label, the others
are features (every column numeric; nulls are missing values)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.data import DataError, LabeledData, data_files, open_binary, to_numpy

__all__ = ["read_parquet"]


def read_parquet(location: str | os.PathLike[str], **_options: object) -> LabeledData:
    """Every Parquet file at ``location``; all files must have the same number of columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts: list[NDArray[Any]] = []
    for path in data_files(location):
        try:
            with open_binary(path) as f:
                table = pq.read_table(f)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"not a readable Parquet file: {e}", path=path) from None
        if table.num_columns < 2:
            raise DataError(f"has {table.num_columns} column(s); needs the label in the first "
                            f"column and at least one feature", path=path)
        if parts and table.num_columns != parts[0].shape[1]:
            raise DataError(f"has {table.num_columns} columns but the channel's first file has "
                            f"{parts[0].shape[1]}", path=path)
        block = np.empty((table.num_rows, table.num_columns), dtype=np.float32)
        for i, column in enumerate(table.columns):
            if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                    or pa.types.is_boolean(column.type)):
                raise DataError(f"column {table.column_names[i]!r} has type {column.type}; "
                                f"Parquet data must be numeric", path=path)
            block[:, i] = to_numpy(column)
        if np.isnan(block[:, 0]).any():
            row = int(np.flatnonzero(np.isnan(block[:, 0]))[0]) + 1
            raise DataError(f"row {row} has no label (first column)", path=path)
        parts.append(block)
    if not parts:
        raise DataError(f"no data: {Path(location)} holds no Parquet file")
    data = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return LabeledData(features=np.ascontiguousarray(data[:, 1:]),
                       labels=np.ascontiguousarray(data[:, 0]))
