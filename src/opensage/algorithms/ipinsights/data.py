"""Reading IP Insights input: ``entity_id,IPv4 address`` CSV rows (no header, no label),
vectorised with pyarrow; IPv4 dotted quads become uint32."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.data import DataError, data_files, iter_lines, open_binary

OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"^{OCTET}\.{OCTET}\.{OCTET}\.{OCTET}$"


def parse_ips(values: object) -> tuple[NDArray[Any], int | None]:
    """IPv4 addresses (a pyarrow string array or a list of str) as uint32, and the index of
    the first one that is not a dotted quad (None when all are)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(
        values, type=pa.string())
    array = pc.utf8_trim_whitespace(array)
    ok = pc.fill_null(pc.match_substring_regex(array, IPV4), False)
    okay = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    if not okay.all():
        return np.zeros(0, dtype=np.uint32), int(np.flatnonzero(~okay)[0])
    octets = pc.list_flatten(pc.split_pattern(array, "."))
    quads = np.asarray(pc.cast(octets, pa.uint32()).to_numpy(zero_copy_only=False),
                       dtype=np.uint32).reshape(-1, 4)
    ips = ((quads[:, 0] << 24) | (quads[:, 1] << 16) | (quads[:, 2] << 8) | quads[:, 3])
    return ips.astype(np.uint32), None


def format_ip(ip: int) -> str:
    return ".".join(str((int(ip) >> s) & 255) for s in (24, 16, 8, 0))


def _line_of(path: Path, row: int) -> int:
    """The 1-based file line of the ``row``-th (0-based) non-empty line."""
    seen = -1
    for number, line in enumerate(iter_lines(path), start=1):
        if line.strip():
            seen += 1
            if seen == row:
                return number
    return row + 1


def _bad_columns(path: Path) -> tuple[int, int]:
    for number, line in enumerate(iter_lines(path), start=1):
        if line.strip() and len(line.split(b",")) != 2:
            return number, len(line.split(b","))
    return 0, 0


def read_file(path: Path) -> tuple[list[str], NDArray[Any]]:
    """One CSV file's entity ids and IPv4 addresses."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    try:
        with open_binary(path) as f:
            table = pacsv.read_csv(
                f, read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={"f0": pa.string(), "f1": pa.string()}))
    except pa.ArrowInvalid as e:
        line, columns = _bad_columns(path)
        if line:
            raise DataError(f"has {columns} columns; IP Insights rows are 'entity_id,IPv4 "
                            f"address'", path=path, line=line) from None
        if "Empty CSV" in str(e):
            return [], np.zeros(0, dtype=np.uint32)
        raise DataError(f"cannot be read as CSV: {e}", path=path) from None
    if table.num_columns != 2:
        line, _ = _bad_columns(path)
        raise DataError(f"has {table.num_columns} columns; IP Insights rows are "
                        f"'entity_id,IPv4 address'", path=path, line=line or 1)
    entities = pc.utf8_trim_whitespace(table.column(0))
    empty = np.asarray(pc.fill_null(pc.equal(entities, ""), True)
                       .to_numpy(zero_copy_only=False), dtype=bool)
    if empty.any():
        raise DataError("has no entity id", path=path,
                        line=_line_of(path, int(np.flatnonzero(empty)[0])))
    raw_ips = table.column(1)
    ips, bad = parse_ips(raw_ips)
    if bad is not None:
        value = raw_ips[bad].as_py()
        raise DataError(f"{value!r} is not an IPv4 address (a.b.c.d, each 0-255)",
                        path=path, line=_line_of(path, bad))
    return entities.to_pylist(), ips


def read_pairs(location: Path) -> tuple[list[str], NDArray[Any]]:
    """Every file of a channel: entity ids and IPv4 addresses (uint32)."""
    entities: list[str] = []
    parts = []
    for path in data_files(location):
        names, ips = read_file(path)
        entities += names
        parts.append(ips)
    ips = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
    return entities, ips
