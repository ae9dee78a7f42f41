"""Readers for the data formats SageMaker's built-in algorithms take.

Readers are vectorised (pyarrow/numpy, no per-record Python) and read a whole channel: every
file under the channel's directory (names starting with ``.`` or ``_`` are skipped, as the
SageMaker containers do), gzip-compressed or not. A file they cannot read raises
:class:`DataError` naming the file and, where it can be found, the line.

``read_labeled(location, data_format)`` picks the reader by format name (``"csv"``,
``"libsvm"``); the modules are imported only when used.
"""

from __future__ import annotations

import importlib
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["READERS", "DataError", "LabeledData", "data_files", "is_gzip", "open_binary",
           "read_labeled", "to_numpy"]

GZIP_MAGIC = b"\x1f\x8b"

# data format -> "module:function" returning LabeledData; imported lazily.
READERS = {
    "csv": "opensage.data.csv:read_csv",
    "libsvm": "opensage.data.libsvm:read_libsvm",
    "parquet": "opensage.data.parquet:read_parquet",
    "recordio-protobuf": "opensage.data.recordio:read_labeled_recordio",
}


class DataError(ValueError):
    """Input data that cannot be read: which file, which line (when known), and why."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None,
                 line: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = f"{self.path.name}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


@dataclass
class LabeledData:
    """Rows of features with a label each, and optionally a weight and a query id each.

    ``features`` is a dense float32 ``(rows, columns)`` array, or a ``scipy.sparse.csr_matrix``
    whose absent entries are missing values (libsvm).
    """

    features: Any
    labels: NDArray[np.float32]
    weights: NDArray[np.float32] | None = None
    qid: NDArray[np.uint32] | None = None

    @property
    def num_rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])


def data_files(location: str | os.PathLike[str]) -> list[Path]:
    """The files to read at ``location``: the file (or FIFO) itself, or every file below the
    directory in name order, skipping names that start with ``.`` or ``_``."""
    path = Path(location)
    if not path.exists():
        raise DataError(f"no such file or directory: {path}")
    if not path.is_dir():
        return [path]
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(names):
            if name.startswith((".", "_")):
                continue
            candidate = Path(root) / name
            if candidate.is_file() or _is_fifo(candidate):
                files.append(candidate)
    return files


def _is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


def is_gzip(path: Path) -> bool:
    """Whether a regular file starts with the gzip magic bytes (FIFOs are never peeked)."""
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_binary(path: Path) -> io.BufferedIOBase:
    """Open a file for reading bytes, decompressing it when it is gzip."""
    if is_gzip(path):
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def iter_lines(path: Path) -> Iterator[bytes]:
    """The file's lines (decompressed). Only for locating an error, never for reading data."""
    with open_binary(path) as f:
        yield from f


def to_numpy(array: Any) -> NDArray[Any]:
    """A pyarrow array or chunked array of numbers or booleans as a numpy array, nulls as NaN.

    Reads the Arrow buffers directly: pyarrow's own ``to_numpy`` imports pandas (over a second)
    whenever pandas is installed, which would dominate a small job's start-up.
    """
    import numpy as np
    import pyarrow as pa

    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    parts = [_chunk_to_numpy(chunk, np, pa) for chunk in chunks]
    if not parts:
        return np.zeros(0, dtype=_NUMPY_TYPES.get(str(array.type), "float64"))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# Arrow primitive type name -> numpy dtype (pyarrow's to_pandas_dtype imports pandas).
_NUMPY_TYPES = {"double": "float64", "float": "float32", "halffloat": "float16",
                "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
                "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64"}


def _bits(buffer: Any, offset: int, length: int, np: Any) -> Any:
    packed = np.frombuffer(buffer, dtype=np.uint8)
    return np.unpackbits(packed, bitorder="little")[offset:offset + length].astype(bool)


def _chunk_to_numpy(chunk: Any, np: Any, pa: Any) -> Any:
    n, offset = len(chunk), chunk.offset
    validity, data = chunk.buffers()[:2]
    if pa.types.is_boolean(chunk.type):
        values = _bits(data, offset, n, np) if n else np.zeros(0, dtype=bool)
    else:
        dtype = np.dtype(_NUMPY_TYPES[str(chunk.type)])
        values = (np.frombuffer(data, dtype=dtype, count=n, offset=offset * dtype.itemsize)
                  if n else np.zeros(0, dtype=dtype))
    if validity is not None and chunk.null_count:
        valid = _bits(validity, offset, n, np)
        values = values.astype(np.float64 if values.dtype.kind in "iub" else values.dtype)
        values[~valid] = np.nan
    return values


def read_labeled(location: str | os.PathLike[str], data_format: str,
                 **options: Any) -> LabeledData:
    """Read every file at ``location`` in ``data_format`` (a key of :data:`READERS`)."""
    target = READERS.get(data_format)
    if target is None:
        raise DataError(f"unsupported data format {data_format!r}; "
                        f"supported: {', '.join(READERS)}")
    module_name, _, function = target.partition(":")
    reader = getattr(importlib.import_module(module_name), function)
    result: LabeledData = reader(location, **options)
    return result
