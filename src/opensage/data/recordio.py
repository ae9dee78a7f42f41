"""RecordIO-protobuf (``application/x-recordio-protobuf``): the first-party algorithms' format.

A stream is RecordIO frames (magic ``0xCED7230A``, a length word whose top 3 bits are a
continuation flag, the payload, zero padding to 4 bytes), each payload one ``aialgs.data.Record``
protobuf: ``features["values"]`` a Float32/Float64/Int32 tensor (dense: values only; sparse:
values, keys, shape ``[feature_dim]``) and optionally ``label["values"]``.

Reading is vectorised where it can be: when every frame has the same length and every
payload the same bytes outside its tensor values (what ``record_set()`` writes), the whole
file is one strided NumPy view. Anything else (sparse records, Int32 varints, split frames)
goes through a small hand-written protobuf parser, still without per-value Python. Writing
is byte-identical to the SDK's ``write_numpy_to_dense_tensor`` /
``write_spmatrix_to_sparse_tensor``, and vectorised for dense rows of one shape.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from opensage.data import DataError, LabeledData, data_files, is_gzip, open_binary

__all__ = ["MAGIC", "MAX_PAYLOAD", "Record", "Tensor", "decode", "encode_dense",
           "encode_outputs", "encode_records", "encode_sparse", "frame", "frame_parts", "iter_frames",
           "iter_payloads", "iter_records", "parse_record",
           "read_labeled_recordio", "read_recordio", "read_recordio_protobuf", "records_to_labeled", "write_dense"]

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1
MAX_PAYLOAD = _LENGTH_MASK  # the largest payload one frame holds (a 29-bit length)
_HEADER = 8

# Value oneof field number -> (tensor kind, numpy dtype of packed values, fixed width or 0).
_TENSORS: dict[int, tuple[str, np.dtype[Any], int]] = {
    2: ("float32", np.dtype("<f4"), 4), 3: ("float64", np.dtype("<f8"), 8),
    7: ("int32", np.dtype(np.int32), 0)}
_VALUE_FIELD = {"float32": 2, "float64": 3, "int32": 7}


@dataclass
class Tensor:
    """One tensor of a Record: values, and for a sparse tensor its keys and shape."""

    values: NDArray[Any]
    keys: NDArray[Any] | None = None
    shape: tuple[int, ...] | None = None
    kind: str = "float32"

    @property
    def sparse(self) -> bool:
        # A sparse row without non-zeros has a shape but no keys.
        return self.keys is not None or self.shape is not None


@dataclass
class Record:
    """A parsed ``aialgs.data.Record`` (bytes values are kept as a list of bytes)."""

    features: dict[str, Any] = field(default_factory=dict)
    label: dict[str, Any] = field(default_factory=dict)
    uid: str | None = None
    metadata: str | None = None
    configuration: str | None = None


# ---------------------------------------------------------------------------------- framing


def _pad(length: int) -> int:
    return (-length) % 4


def frame_parts(length: int) -> tuple[bytes, bytes]:
    """The header (magic, length word with continuation flag 0) and the zero padding that go
    around a payload of ``length`` bytes, for writers that stream the payload themselves."""
    if length > MAX_PAYLOAD:
        raise DataError(f"{length} bytes do not fit in one RecordIO record "
                        f"(at most {MAX_PAYLOAD})")
    return struct.pack("<II", MAGIC, length), b"\x00" * _pad(length)


def frame(payload: bytes) -> bytes:
    """One RecordIO frame around ``payload`` (continuation flag 0, as the SDK writes)."""
    header, padding = frame_parts(len(payload))
    return b"".join((header, payload, padding))


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, or fewer only at the end of the stream: a pipe, socket or HTTP body
    may return less than asked before its end."""
    data = stream.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size and (more := stream.read(size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def iter_frames(stream: IO[bytes], *, keep_padding: bool = False,
                where: str | None = None) -> Iterator[bytes]:
    """Each frame of a RecordIO stream as written: its header (magic, length word), payload
    and, with ``keep_padding``, its padding to 4 bytes (a short padding at the very end is
    tolerated). Read as it comes, one frame in memory at a time; frames of a split record
    are not re-joined (continuation flags pass through in their headers)."""
    prefix = f"{where}: " if where else ""
    pos = number = 0
    while header := _read_exactly(stream, _HEADER):
        number += 1
        if len(header) < _HEADER:
            raise DataError(f"{prefix}truncated RecordIO header at byte {pos} (record {number})")
        magic, word = struct.unpack("<II", header)
        if magic != MAGIC:
            raise DataError(f"{prefix}record {number} (byte {pos}) does not start with the "
                            f"RecordIO magic number")
        length = word & _LENGTH_MASK
        payload = _read_exactly(stream, length)
        if len(payload) < length:
            raise DataError(f"{prefix}record {number} is truncated ({length} bytes announced, "
                            f"{len(payload)} left)")
        padding = _read_exactly(stream, _pad(length))
        pos += _HEADER + length + len(padding)
        yield header + payload + (padding if keep_padding else b"")


def iter_payloads(buffer: bytes | bytearray | memoryview, *,
                  where: str = "RecordIO data") -> Iterator[bytes | memoryview]:
    """The payloads of a RecordIO stream, parts of split records re-joined (as dmlc does:
    the magic word goes back between the parts)."""
    view = memoryview(buffer)
    end, pos, number = len(view), 0, 0
    parts: list[bytes] = []
    while pos < end:
        if end - pos < _HEADER:
            raise DataError(f"{where}: truncated RecordIO header at byte {pos}")
        magic, word = struct.unpack_from("<II", view, pos)
        if magic != MAGIC:
            raise DataError(f"{where}: record {number + 1} (byte {pos}) does not start with the "
                            f"RecordIO magic number; is this really "
                            f"application/x-recordio-protobuf?")
        cflag, length = word >> 29, word & _LENGTH_MASK
        start = pos + _HEADER
        if start + length > end:
            raise DataError(f"{where}: record {number + 1} is truncated ({length} bytes "
                            f"announced, {end - start} left)")
        payload = view[start:start + length]
        pos = start + length + _pad(length)
        if cflag == 0:
            if parts:
                raise DataError(f"{where}: record {number + 1} interrupts a split record")
            number += 1
            yield payload
        elif cflag in (1, 2):
            if (cflag == 1) != (not parts):
                raise DataError(f"{where}: record {number + 1} has a misplaced continuation "
                                f"flag {cflag}")
            parts += [bytes(payload), _MAGIC_BYTES]
        elif cflag == 3:
            if not parts:
                raise DataError(f"{where}: record {number + 1} ends a split record that never "
                                f"began")
            number += 1
            yield b"".join([*parts, bytes(payload)])
            parts = []
        else:
            raise DataError(f"{where}: record {number + 1} has an invalid continuation flag "
                            f"{cflag}")
    if parts:
        raise DataError(f"{where}: the stream ends inside a split record")


# ------------------------------------------------------------------------- protobuf reading


def _varint(buf: Any, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        try:
            byte = buf[pos]
        except IndexError:
            raise ValueError("truncated varint") from None
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _varints(data: Any) -> NDArray[Any]:
    """Every varint in ``data`` (packed uint64s), vectorised."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if not len(raw):
        return np.zeros(0, dtype=np.uint64)
    ends = np.flatnonzero(raw < 0x80)
    if not len(ends) or ends[-1] != len(raw) - 1:
        raise ValueError("truncated packed varints")
    if len(ends) == len(raw):  # all single-byte: the common case for small keys
        return raw.astype(np.uint64)
    starts = np.concatenate(([0], ends[:-1] + 1))
    group = np.repeat(np.arange(len(ends)), ends - starts + 1)
    shift = (np.arange(len(raw)) - starts[group]).astype(np.uint64) * np.uint64(7)
    if shift.max() > 63:
        raise ValueError("varint too long")
    parts = (raw & 0x7F).astype(np.uint64) << shift
    return np.add.reduceat(parts, starts).astype(np.uint64)


def _skip(buf: Any, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        length, pos = _varint(buf, pos)
        return pos + length
    if wire == 5:
        return pos + 4
    raise ValueError(f"unsupported wire type {wire}")


def _fields(buf: Any, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of a message's fields; for length-
    delimited fields start/end bound the bytes, for others the encoded value."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("field overruns its message")
            yield number, wire, pos, pos + length
            pos += length
        else:
            after = _skip(buf, pos, wire)
            if after > end:
                raise ValueError("field overruns its message")
            yield number, wire, pos, after
            pos = after


def _tensor(buf: Any, start: int, end: int, kind: str, dtype: np.dtype[Any], width: int) -> Tensor:
    values: list[NDArray[Any]] = []
    keys: list[NDArray[Any]] = []
    shape: list[NDArray[Any]] = []
    for number, wire, a, b in _fields(buf, start, end):
        if number == 1:
            if wire == 2:
                values.append(np.frombuffer(buf[a:b], dtype=dtype) if width else
                              _varints(buf[a:b]).astype(np.int64).astype(np.int32))
            elif width:
                values.append(np.frombuffer(buf[a:b], dtype=dtype))
            else:
                values.append(np.array([_varint(buf, a)[0]], dtype=np.int64).astype(np.int32))
        elif number in (2, 3):
            target = keys if number == 2 else shape
            target.append(_varints(buf[a:b]) if wire == 2 else
                          np.array([_varint(buf, a)[0]], dtype=np.uint64))
    value_array = (np.concatenate(values) if len(values) > 1 else
                   values[0] if values else np.zeros(0, dtype=dtype if width else np.int32))
    key_array = (np.concatenate(keys) if keys else None)
    shape_tuple = tuple(int(s) for s in np.concatenate(shape)) if shape else None
    return Tensor(value_array, key_array, shape_tuple, kind)


def _value(buf: Any, start: int, end: int) -> Any:
    for number, _wire, a, b in _fields(buf, start, end):
        if number in _TENSORS:
            return _tensor(buf, a, b, *_TENSORS[number])
        if number == 9:
            return [bytes(buf[c:d]) for n, _w, c, d in _fields(buf, a, b) if n == 1]
    return None


def _entry(buf: Any, start: int, end: int) -> tuple[str, Any]:
    key, value = "", None
    for number, _wire, a, b in _fields(buf, start, end):
        if number == 1:
            key = bytes(buf[a:b]).decode("utf-8")
        elif number == 2:
            value = _value(buf, a, b)
    return key, value


def parse_record(payload: bytes | memoryview) -> Record:
    """One ``aialgs.data.Record`` from its serialized bytes."""
    buf = payload if isinstance(payload, bytes) else bytes(payload)
    record = Record()
    for number, _wire, a, b in _fields(buf, 0, len(buf)):
        if number in (1, 2):
            key, value = _entry(buf, a, b)
            (record.features if number == 1 else record.label)[key] = value
        elif number in (3, 4, 5):
            text = buf[a:b].decode("utf-8")
            setattr(record, ("uid", "metadata", "configuration")[number - 3], text)
    return record


# ------------------------------------------------------------------------ records -> arrays


def _scalar_label(record: Record, label_key: str, number: int, where: str) -> float:
    tensor = record.label.get(label_key)
    if not isinstance(tensor, Tensor) or len(tensor.values) != 1:
        raise DataError(f"{where}: record {number} has no single-valued label "
                        f"label[{label_key!r}]")
    return float(tensor.values[0])


def records_to_labeled(records: Sequence[Record], *, feature_dim: int | None = None,
                       feature_key: str = "values", label_key: str = "values",
                       where: str = "RecordIO data") -> LabeledData:
    """Records as one matrix (dense float32, or CSR when the records are sparse) and labels
    (NaN-free float32; empty when no record has a label)."""
    if not records:
        raise DataError(f"{where}: no records")
    first = records[0].features.get(feature_key)
    if not isinstance(first, Tensor):
        raise DataError(f"{where}: record 1 has no tensor features[{feature_key!r}]")
    sparse = first.sparse
    has_label = label_key in records[0].label
    labels = np.empty(len(records) if has_label else 0, dtype=np.float32)
    rows: list[NDArray[Any]] = []
    keys: list[NDArray[Any]] = []
    width = feature_dim
    for i, record in enumerate(records):
        tensor = record.features.get(feature_key)
        if not isinstance(tensor, Tensor):
            raise DataError(f"{where}: record {i + 1} has no tensor features[{feature_key!r}]")
        if tensor.sparse != sparse:
            raise DataError(f"{where}: record {i + 1} is {'sparse' if tensor.sparse else 'dense'}"
                            f" but record 1 is {'sparse' if sparse else 'dense'}; a channel "
                            f"must not mix dense and sparse records")
        if (label_key in record.label) != has_label:
            raise DataError(f"{where}: record {i + 1} {'has' if not has_label else 'lacks'} a "
                            f"label but record 1 {'does not' if not has_label else 'does'}")
        if has_label:
            labels[i] = _scalar_label(record, label_key, i + 1, where)
        rows.append(tensor.values)
        if sparse:
            row_keys = tensor.keys if tensor.keys is not None else np.zeros(0, np.uint64)
            if len(row_keys) != len(tensor.values):
                raise DataError(f"{where}: record {i + 1} has {len(row_keys)} keys for "
                                f"{len(tensor.values)} values")
            keys.append(row_keys)
            if tensor.shape:
                width = max(width or 0, tensor.shape[0])
    if sparse:
        return LabeledData(features=_csr(rows, keys, width, where), labels=labels)
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        number = next(i for i, r in enumerate(rows) if len(r) != len(rows[0])) + 1
        raise DataError(f"{where}: record {number} has {len(rows[number - 1])} features but "
                        f"record 1 has {len(rows[0])}")
    return LabeledData(features=np.vstack(rows).astype(np.float32, copy=False), labels=labels)


def _csr(rows: list[NDArray[Any]], keys: list[NDArray[Any]], width: int | None,
         where: str) -> Any:
    import scipy.sparse

    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.concatenate(keys).astype(np.int64) if keys else np.zeros(0, np.int64)
    values = np.concatenate(rows).astype(np.float32) if rows else np.zeros(0, np.float32)
    top = int(indices.max()) + 1 if len(indices) else 0
    if width is None:
        width = top
    if top > width:
        row = int(np.searchsorted(indptr, int(np.argmax(indices >= width)), side="right"))
        raise DataError(f"{where}: record {row} has feature index {top - 1}, outside "
                        f"feature_dim {width}")
    return scipy.sparse.csr_matrix((values, indices, indptr), shape=(len(rows), width))


def _uniform_dense(buffer: Any, *, feature_key: str,
                   label_key: str) -> LabeledData | None:
    """The fast path: equal-length frames whose payloads differ only in fixed-width tensor
    values (dense float32/float64 rows, as ``record_set()`` writes). None when it does not
    apply."""
    raw = np.frombuffer(buffer, dtype=np.uint8)
    if len(raw) < _HEADER:
        return None
    magic, word = struct.unpack_from("<II", raw.data, 0)
    if magic != MAGIC or word >> 29:
        return None
    length = word & _LENGTH_MASK
    stride = _HEADER + length + _pad(length)
    if len(raw) % stride:
        return None
    rows = raw.reshape(-1, stride)
    first = bytes(rows[0, _HEADER:_HEADER + length])
    try:
        layout = _dense_layout(first, feature_key, label_key)
    except ValueError:
        return None
    if layout is None:
        return None
    (f_off, f_len, f_dtype), label = layout
    # Every byte outside the values must equal the first record's (checked in blocks).
    mask = np.ones(stride, dtype=bool)
    for off, n, _ in (layout[0], *([label] if label else [])):
        mask[_HEADER + off:_HEADER + off + n] = False
    template = rows[0][mask]
    if label and label[2] == np.uint8:  # every varint label byte must be a whole varint
        at = _HEADER + label[0]
        if (rows[:, at] >= 0x80).any():
            return None
    block = max(1, (1 << 24) // stride)
    for start in range(0, len(rows), block):
        if not (rows[start:start + block][:, mask] == template).all():
            return None
    features = rows[:, _HEADER + f_off:_HEADER + f_off + f_len]
    features = np.ascontiguousarray(features).view(f_dtype).astype(np.float32, copy=False)
    labels = np.zeros(0, dtype=np.float32)
    if label:
        l_off, l_len, l_dtype = label
        labels = np.ascontiguousarray(rows[:, _HEADER + l_off:_HEADER + l_off + l_len]).view(
            l_dtype)[:, 0].astype(np.float32)
    return LabeledData(features=features, labels=labels)


def _dense_layout(payload: bytes, feature_key: str,
                  label_key: str) -> tuple[tuple[int, int, np.dtype[Any]], Any] | None:
    """Byte offset, length and dtype of the feature values (and the label value) in a dense
    record with fixed-width tensors; None when the record is not like that."""
    found: dict[int, tuple[int, int, np.dtype[Any]]] = {}
    for number, _wire, a, b in _fields(payload, 0, len(payload)):
        if number not in (1, 2):
            continue
        key, value_at = None, None
        for entry_field, _w, c, d in _fields(payload, a, b):
            if entry_field == 1:
                key = payload[c:d].decode("utf-8")
            elif entry_field == 2:
                value_at = (c, d)
        if value_at is None or key != (feature_key if number == 1 else label_key):
            return None
        tensors = list(_fields(payload, *value_at))
        if len(tensors) != 1 or tensors[0][0] not in _TENSORS:
            return None
        _kind, dtype, width = _TENSORS[tensors[0][0]]
        parts = list(_fields(payload, tensors[0][2], tensors[0][3]))
        if [p[:2] for p in parts] != [(1, 2)]:
            return None  # sparse (keys/shape) or unpacked values
        a_, b_ = parts[0][2], parts[0][3]
        if not width:
            # An Int32 label 0..127 is one varint byte, which is its value (int64 labels).
            if number != 2 or b_ - a_ != 1:
                return None
            dtype = np.dtype(np.uint8)
        found[number] = (a_, b_ - a_, dtype)
    if 1 not in found:
        return None
    label = found.get(2)
    if label is not None and label[1] != label[2].itemsize:
        return None  # not a scalar label
    return found[1], label


_VALUE_TAGS = {0x12: ("float32", "<f4"), 0x1A: ("float64", "<f8"), 0x3A: ("int32", "")}


def _entry_tensor(buf: bytes, pos: int, end: int) -> tuple[str, str, tuple[int, int],
                                                          tuple[int, int], tuple[int, int]]:
    """A map entry laid out as protobuf writers lay it out (key, then a Value holding one
    tensor): (key, kind, values span, keys span, shape span). ValueError otherwise."""
    if buf[pos] != 0x0A:
        raise ValueError("entry key first")
    length, pos = _varint(buf, pos + 1)
    key = buf[pos:pos + length].decode("utf-8")
    pos += length
    if buf[pos] != 0x12:
        raise ValueError("entry value second")
    _, pos = _varint(buf, pos + 1)
    tag = buf[pos]
    if tag not in _VALUE_TAGS:
        raise ValueError("not a tensor")
    length, pos = _varint(buf, pos + 1)
    stop = pos + length
    if stop > end:
        raise ValueError("tensor overruns its entry")
    spans = {0x0A: (0, 0), 0x12: (0, 0), 0x1A: (0, 0)}
    while pos < stop:
        field_tag = buf[pos]
        if field_tag not in spans:
            raise ValueError("unpacked or unknown tensor field")
        length, pos = _varint(buf, pos + 1)
        spans[field_tag] = (pos, pos + length)
        pos += length
    return key, _VALUE_TAGS[tag][0], spans[0x0A], spans[0x12], spans[0x1A]


def _columnar(buffer: Any, *, feature_dim: int | None, feature_key: str, label_key: str,
              where: str) -> LabeledData | None:
    """Records of any length (sparse rows, varint labels) parsed with plain byte slicing and
    assembled into arrays once at the end: a few microseconds a record. None when a record
    is laid out in a way only the general parser reads (split tensors, bytes values, several
    feature tensors of different types)."""
    value_bytes: list[bytes] = []
    key_bytes: list[bytes] = []
    counts: list[int] = []
    key_lengths: list[int] = []
    labels: list[float] = []
    width = 0
    kind = sparse = has_label = None
    try:
        for number, payload in enumerate(iter_payloads(buffer, where=where), start=1):
            buf = bytes(payload)
            pos, end = 0, len(buf)
            features = label = None
            while pos < end:
                tag = buf[pos]
                length, pos = _varint(buf, pos + 1)
                if tag == 0x0A and features is None:
                    features = _entry_tensor(buf, pos, pos + length)
                elif tag == 0x12 and label is None:
                    label = _entry_tensor(buf, pos, pos + length)
                elif tag not in (0x1A, 0x22, 0x2A):  # uid, metadata, configuration
                    return None
                pos += length
            if features is None or features[0] != feature_key:
                raise DataError(f"{where}: record {number} has no tensor "
                                f"features[{feature_key!r}]")
            _, f_kind, values, keys, shape = features
            row_sparse = keys != (0, 0) or shape != (0, 0)
            if kind is None:
                kind, sparse, has_label = f_kind, row_sparse, label is not None
            if f_kind != kind or f_kind == "int32":
                return None
            if row_sparse != sparse:
                raise DataError(f"{where}: record {number} is "
                                f"{'sparse' if row_sparse else 'dense'} but record 1 is "
                                f"{'sparse' if sparse else 'dense'}; a channel must not mix "
                                f"dense and sparse records")
            if (label is not None) != has_label:
                raise DataError(f"{where}: record {number} "
                                f"{'has' if not has_label else 'lacks'} a label but record 1 "
                                f"{'does not' if not has_label else 'does'}")
            value_bytes.append(buf[values[0]:values[1]])
            counts.append((values[1] - values[0]) // (4 if kind == "float32" else 8))
            if sparse:
                key_bytes.append(buf[keys[0]:keys[1]])
                key_lengths.append(keys[1] - keys[0])
                if shape != (0, 0):
                    width = max(width, _varint(buf, shape[0])[0])
            if label is not None:
                _, l_kind, l_values, _, _ = label
                raw = buf[l_values[0]:l_values[1]]
                if l_kind == "int32":
                    value, after = _varint(raw, 0) if raw else (None, 0)
                    if value is not None and value >= 1 << 63:
                        value -= 1 << 64
                else:
                    size = 4 if l_kind == "float32" else 8
                    value = (struct.unpack("<f" if size == 4 else "<d", raw)[0]
                             if len(raw) == size else None)
                    after = len(raw)
                if value is None or after != len(raw):
                    raise DataError(f"{where}: record {number} has no single-valued label "
                                    f"label[{label_key!r}]")
                labels.append(float(value))
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    if kind is None:
        raise DataError(f"{where}: no records")
    values_array = np.frombuffer(b"".join(value_bytes),
                                 dtype="<f4" if kind == "float32" else "<f8")
    label_array = np.asarray(labels, dtype=np.float32)
    if not sparse:
        if len(set(counts)) != 1:
            bad = next(i for i, c in enumerate(counts) if c != counts[0])
            raise DataError(f"{where}: record {bad + 1} has {counts[bad]} features but record "
                            f"1 has {counts[0]}")
        return LabeledData(features=values_array.reshape(len(counts), counts[0]).astype(
            np.float32, copy=False), labels=label_array)
    keys_array = _varints(b"".join(key_bytes)) if key_bytes else np.zeros(0, np.uint64)
    # Each row's key bytes must hold exactly as many varints as it has values.
    terminators = np.frombuffer(b"".join(key_bytes), dtype=np.uint8) < 0x80
    starts = np.concatenate(([0], np.cumsum(key_lengths)[:-1])).astype(np.int64)
    per_row = np.zeros(len(counts), dtype=np.int64)
    nonempty = np.asarray(key_lengths) > 0
    if terminators.size:
        per_row[nonempty] = np.add.reduceat(terminators.astype(np.int64), starts[nonempty])
    mismatch = np.flatnonzero(per_row != np.asarray(counts))
    if len(mismatch):
        row = int(mismatch[0])
        raise DataError(f"{where}: record {row + 1} has {per_row[row]} keys for "
                        f"{counts[row]} values")
    import scipy.sparse

    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = keys_array.astype(np.int64)
    top = int(indices.max()) + 1 if len(indices) else 0
    width = max(width, feature_dim or 0) or top
    if top > width:
        row = int(np.searchsorted(indptr, int(np.argmax(indices >= width)), side="right"))
        raise DataError(f"{where}: record {row} has feature index {top - 1}, outside "
                        f"feature_dim {width}")
    matrix = scipy.sparse.csr_matrix((values_array.astype(np.float32), indices, indptr),
                                     shape=(len(counts), width))
    return LabeledData(features=matrix, labels=label_array)


def decode(buffer: bytes | bytearray | memoryview, *, feature_dim: int | None = None,
           feature_key: str = "values", label_key: str = "values",
           where: str = "RecordIO data") -> LabeledData:
    """A RecordIO-protobuf buffer as features (dense or CSR) and labels."""
    fast = _uniform_dense(buffer, feature_key=feature_key, label_key=label_key)
    if fast is not None:
        if feature_dim is not None and fast.features.shape[1] != feature_dim:
            raise DataError(f"{where}: records have {fast.features.shape[1]} features but "
                            f"feature_dim is {feature_dim}")
        return fast
    columnar = _columnar(buffer, feature_dim=feature_dim, feature_key=feature_key,
                         label_key=label_key, where=where)
    if columnar is not None:
        if (feature_dim is not None and not hasattr(columnar.features, "tocsr")
                and columnar.features.shape[1] != feature_dim):
            raise DataError(f"{where}: records have {columnar.features.shape[1]} features but "
                            f"feature_dim is {feature_dim}")
        return columnar
    records = []
    for number, payload in enumerate(iter_payloads(buffer, where=where), start=1):
        try:
            records.append(parse_record(payload))
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"{where}: record {number} is not a valid protobuf Record ({e})") \
                from None
    data = records_to_labeled(records, feature_dim=feature_dim, feature_key=feature_key,
                              label_key=label_key, where=where)
    if (feature_dim is not None and not hasattr(data.features, "tocsr")
            and data.features.shape[1] != feature_dim):
        raise DataError(f"{where}: records have {data.features.shape[1]} features but "
                        f"feature_dim is {feature_dim}")
    return data


def read_recordio(path: str | os.PathLike[str]) -> Any:
    """A file's bytes for decoding: memory-mapped when it is a plain uncompressed file."""
    path = Path(path)
    if path.is_file() and not is_gzip(path) and path.stat().st_size:
        with open(path, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    with open_binary(path) as f:
        return f.read()


def read_recordio_protobuf(location: str | os.PathLike[str], *,
                           feature_dim: int | None = None) -> LabeledData:
    """Every RecordIO-protobuf file at ``location`` (a file, FIFO or channel directory)."""
    parts: list[LabeledData] = []
    for path in data_files(location):
        buffer = read_recordio(path)
        if not len(buffer):
            continue
        parts.append(decode(buffer, feature_dim=feature_dim, where=path.name))
    if not parts:
        raise DataError(f"no data: {Path(location)} holds no RecordIO-protobuf records")
    return _concat(parts, location)


def read_labeled_recordio(location: str | os.PathLike[str], **_options: Any) -> LabeledData:
    """:func:`read_recordio_protobuf` for labeled data (xgboost): every record needs a label."""
    data = read_recordio_protobuf(location)
    if len(data.labels) != data.features.shape[0]:
        raise DataError(f"{Path(location).name}: the records have no label; put it in "
                        f"label['values']")
    return data


def _concat(parts: list[LabeledData], location: Any) -> LabeledData:
    if len(parts) == 1:
        return parts[0]
    sparse = {hasattr(p.features, "tocsr") for p in parts}
    if len(sparse) > 1:
        raise DataError(f"{Path(location).name}: files mix dense and sparse records")
    labelled = {len(p.labels) > 0 for p in parts}
    if len(labelled) > 1:
        raise DataError(f"{Path(location).name}: some files have labels and some do not")
    if sparse == {True}:
        import scipy.sparse

        width = max(p.features.shape[1] for p in parts)
        features: Any = scipy.sparse.vstack(
            [p.features if p.features.shape[1] == width else
             scipy.sparse.csr_matrix(p.features, shape=(p.features.shape[0], width))
             for p in parts], format="csr")
    else:
        widths = {p.features.shape[1] for p in parts}
        if len(widths) > 1:
            raise DataError(f"{Path(location).name}: files have different feature counts "
                            f"({', '.join(map(str, sorted(widths)))})")
        features = np.concatenate([p.features for p in parts])
    return LabeledData(features=features, labels=np.concatenate([p.labels for p in parts]))


# ---------------------------------------------------------------------------------- writing


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32 values are sign-extended to 64 bits, as protobuf
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(number: int, body: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(body)) + body


def _kind_of(array: NDArray[Any]) -> str:
    """The SDK's ``_resolve_type``: int64 -> Int32Tensor, float64 / float32 -> their own."""
    if array.dtype == np.dtype(int):
        return "int32"
    if array.dtype == np.float64:
        return "float64"
    if array.dtype == np.float32:
        return "float32"
    raise ValueError(f"Unsupported dtype {array.dtype} on array")


def _packed_values(values: NDArray[Any], kind: str) -> bytes:
    if kind == "int32":
        return b"".join(_encode_varint(int(v)) for v in values.astype(np.int32))
    return values.astype("<f4" if kind == "float32" else "<f8").tobytes()


def _tensor_bytes(values: NDArray[Any], kind: str, keys: NDArray[Any] | None = None,
                  shape: Sequence[int] | None = None) -> bytes:
    body = b""
    if len(values):
        body += _length_delimited(1, _packed_values(values, kind))
    if keys is not None and len(keys):
        body += _length_delimited(2, b"".join(_encode_varint(int(k)) for k in keys))
    if shape:
        body += _length_delimited(3, b"".join(_encode_varint(int(s)) for s in shape))
    return _length_delimited(_VALUE_FIELD[kind], body)


def _entry_bytes(map_field: int, key: str, value: bytes) -> bytes:
    return _length_delimited(map_field, _length_delimited(1, key.encode()) +
                             _length_delimited(2, value))


def _check_labels(array_rows: int, array_shape: tuple[int, ...],
                  labels: NDArray[Any] | None) -> None:
    if labels is not None:
        if labels.ndim != 1:
            raise ValueError("Labels must be a Vector")
        if labels.shape[0] not in array_shape:
            raise ValueError(f"Label shape {labels.shape} not compatible with array shape "
                             f"{array_shape}")


def encode_dense(array: NDArray[Any], labels: NDArray[Any] | None = None) -> bytes:
    """RecordIO frames of dense Records, one per row; the bytes the SDK's
    ``write_numpy_to_dense_tensor`` writes."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError("Array must be a Matrix")
    labels = None if labels is None else np.asarray(labels)
    _check_labels(array.shape[0], array.shape, labels)
    kind = _kind_of(array)
    label_kind = _kind_of(labels) if labels is not None else None
    if kind != "int32" and label_kind != "int32" and len(array):
        return _encode_dense_fast(array, labels, kind, label_kind)
    out = []
    for i, row in enumerate(array):
        payload = _entry_bytes(1, "values", _tensor_bytes(row, kind))
        if labels is not None:
            assert label_kind is not None
            payload += _entry_bytes(2, "values", _tensor_bytes(labels[i:i + 1], label_kind))
        out.append(frame(payload))
    return b"".join(out)


def _encode_dense_fast(array: NDArray[Any], labels: NDArray[Any] | None, kind: str,
                       label_kind: str | None) -> bytes:
    """All rows share one layout: build it once and fill the values in with NumPy."""
    n, width = array.shape
    dtype = np.dtype("<f4" if kind == "float32" else "<f8")
    feature_part = _entry_bytes(1, "values", _tensor_bytes(np.zeros(width, dtype), kind))
    f_values = width * dtype.itemsize
    f_off = len(feature_part) - f_values
    payload_len = len(feature_part)
    l_off = l_dtype = None
    label_part = b""
    if labels is not None and label_kind is not None:
        l_dtype = np.dtype("<f4" if label_kind == "float32" else "<f8")
        label_part = _entry_bytes(2, "values", _tensor_bytes(np.zeros(1, l_dtype), label_kind))
        l_off = payload_len + len(label_part) - l_dtype.itemsize
        payload_len += len(label_part)
    template = frame(feature_part + label_part)
    out = np.empty((n, len(template)), dtype=np.uint8)
    out[:] = np.frombuffer(template, dtype=np.uint8)
    if f_values:
        out[:, _HEADER + f_off:_HEADER + f_off + f_values] = (
            np.ascontiguousarray(array, dtype=dtype).view(np.uint8).reshape(n, f_values))
    if l_off is not None and labels is not None and l_dtype is not None:
        out[:, _HEADER + l_off:_HEADER + l_off + l_dtype.itemsize] = (
            np.ascontiguousarray(labels, dtype=l_dtype).view(np.uint8).reshape(n, -1))
    return out.tobytes()


def encode_sparse(matrix: Any, labels: NDArray[Any] | None = None) -> bytes:
    """RecordIO frames of sparse Records, one per row; the bytes the SDK's
    ``write_spmatrix_to_sparse_tensor`` writes."""
    import scipy.sparse

    if not scipy.sparse.issparse(matrix):
        raise TypeError("Array must be sparse")
    if matrix.ndim != 2:
        raise ValueError("Array must be a Matrix")
    labels = None if labels is None else np.asarray(labels)
    _check_labels(matrix.shape[0], matrix.shape, labels)
    csr = matrix.tocsr()
    kind = _kind_of(csr.data)
    label_kind = _kind_of(labels) if labels is not None else None
    out = []
    for i in range(csr.shape[0]):
        lo, hi = csr.indptr[i], csr.indptr[i + 1]
        payload = _entry_bytes(1, "values", _tensor_bytes(
            csr.data[lo:hi], kind, keys=csr.indices[lo:hi].astype(np.uint64),
            shape=[csr.shape[1]]))
        if labels is not None:
            assert label_kind is not None
            payload += _entry_bytes(2, "values", _tensor_bytes(labels[i:i + 1], label_kind))
        out.append(frame(payload))
    return b"".join(out)


def encode_outputs(outputs: Mapping[str, NDArray[Any]]) -> bytes:
    """Inference responses: one Record per row, each output a Float32 tensor in ``label``
    (``{"closest_cluster": [...], "distance_to_cluster": [...]}`` -> n records)."""
    columns = {name: np.asarray(values, dtype=np.float32) for name, values in outputs.items()}
    n = len(next(iter(columns.values()))) if columns else 0
    out = []
    for i in range(n):
        payload = b"".join(
            _entry_bytes(2, name, _tensor_bytes(np.atleast_1d(values[i]), "float32"))
            for name, values in columns.items())
        out.append(frame(payload))
    return b"".join(out)


def write_dense(stream: IO[bytes], array: NDArray[Any], labels: NDArray[Any] | None = None) -> None:
    """Write :func:`encode_dense` to a binary stream."""
    stream.write(encode_dense(array, labels))


def iter_records(buffer: bytes | memoryview) -> Iterable[Record]:
    """Parsed Records of a RecordIO-protobuf buffer (for tests and small payloads)."""
    return (parse_record(p) for p in iter_payloads(buffer))


def encode_records(records: Iterable[Record]) -> bytes:
    """RecordIO frames of Records whose features and label are :class:`Tensor` values (dense or
    sparse, their ``kind`` kept): seq2seq's Int32 token-id Records, for example."""
    out = []
    for record in records:
        payload = b""
        for field_number, tensors in ((1, record.features), (2, record.label)):
            for key, tensor in tensors.items():
                payload += _entry_bytes(field_number, key, _tensor_bytes(
                    np.asarray(tensor.values), tensor.kind, keys=tensor.keys,
                    shape=tensor.shape))
        out.append(frame(payload))
    return b"".join(out)
