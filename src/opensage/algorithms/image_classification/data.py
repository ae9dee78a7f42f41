"""Image data of the image classification built-in, read without MXNet.

* MXNet image RecordIO (``.rec``, ``application/x-recordio``): RecordIO frames (magic
  ``0xced7230a``) whose payload is an ``IRHeader`` — ``flag`` (uint32), ``label`` (float32),
  ``id`` and ``id2`` (uint64), little-endian — then, when ``flag`` > 0, ``flag`` float32 labels,
  then the encoded image (JPEG or PNG), as MXNet's ``recordio.pack``/``im2rec`` write them.
* augmented manifest (``application/x-recordio``, Pipe mode, ``AttributeNames`` source-ref
  and the label attribute, ``RecordWrapperType`` RecordIO): each image's record (it starts
  with a JPEG/PNG/GIF/BMP signature, never an IRHeader) followed by its label's record (``3``
  or a JSON list).
* ``.lst`` files (``application/x-image``): ``index<TAB>label[<TAB>label...]<TAB>path`` lines,
  the path relative to the image channel.

:func:`pack_record` and :func:`write_png` make such data without MXNet or Pillow (tests,
benchmarks). Decoding (:func:`decode`) imports Pillow, which only the ``builtin-torch``
environment has."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.contract import UserError
from opensage.data import DataError
from opensage.data.recordio import frame, iter_payloads

IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)
# JPEG, PNG, GIF, BMP: a record that starts so is an image, not an IRHeader
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM")


@dataclass
class Example:
    """One image and its labels, ``where`` naming it in error messages."""

    labels: tuple[float, ...]
    image: bytes
    where: str


def pack_record(labels: float | Sequence[float], image: bytes, index: int = 0) -> bytes:
    """One ``.rec`` frame: an IRHeader (one label in the header, several after it) and the
    encoded image, as ``mxnet.recordio.pack`` writes it."""
    if isinstance(labels, (int, float)):
        header = struct.pack(IR_FORMAT, 0, float(labels), index, 0)
    else:
        values = [float(v) for v in labels]
        header = struct.pack(IR_FORMAT, len(values), 0.0, index, 0) + struct.pack(
            f"<{len(values)}f", *values)
    return frame(header + image)


def write_png(pixels: NDArray[Any]) -> bytes:
    """A PNG file of ``pixels`` (uint8, HxW grey or HxWx3 RGB), written with zlib alone."""
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = array.shape[:2]
    color = 2 if array.ndim == 3 else 0
    raw = b"".join(b"\x00" + array[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _files(location: Path) -> list[Path]:
    if location.is_file():
        return [location]
    return sorted(p for p in location.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_recordio(location: Path, channel: str) -> list[Example]:
    """Every record of the ``.rec`` files under ``location``."""
    examples: list[Example] = []
    for path in _files(location):
        name = path.name if location.is_dir() else channel
        try:
            payloads = list(iter_payloads(path.read_bytes(), where=f"{channel} file {name}"))
        except DataError as e:
            raise UserError(f"{e} (channel {channel} must hold MXNet image RecordIO, "
                            f"application/x-recordio)") from None
        number = 0
        while number < len(payloads):
            data = bytes(payloads[number])
            number += 1
            where = f"{channel} file {name} record {number}"
            if data.startswith(IMAGE_SIGNATURES):  # augmented manifest: image, then label
                if number >= len(payloads):
                    raise UserError(f"{where} is an image without the label record after it "
                                    f"(augmented manifest: AttributeNames source-ref, then "
                                    f"the label attribute)")
                label_record = bytes(payloads[number])
                number += 1
                examples.append(Example(_manifest_labels(label_record, where), data,
                                        f"{where} (augmented manifest line {number // 2})"))
                continue
            examples.append(_ir_example(data, where))
    if not examples:
        raise UserError(f"No records in the {channel} channel.")
    return examples


def _ir_example(data: bytes, where: str) -> Example:
    if len(data) < IR_SIZE:
        raise UserError(f"{where} is too short for an image record header ({len(data)} bytes)")
    flag, label, _, _ = struct.unpack_from(IR_FORMAT, data)
    start = IR_SIZE
    if flag > 0:
        if flag > 100_000 or len(data) < IR_SIZE + 4 * flag:
            raise UserError(f"{where} has a corrupt header (label width {flag})")
        labels = struct.unpack_from(f"<{flag}f", data, IR_SIZE)
        start += 4 * flag
    else:
        labels = (label,)
    return Example(tuple(float(v) for v in labels), data[start:], where)


def _manifest_labels(record: bytes, where: str) -> tuple[float, ...]:
    """An augmented manifest's label attribute: ``3``, ``"3"`` or ``[0, 1, 1]``."""
    import json

    try:
        value = json.loads(record.decode("utf-8"))
        if isinstance(value, str):
            value = float(value)
        values = value if isinstance(value, list) else [value]
        return tuple(float(v) for v in values)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise UserError(f"{where}: the label record after the image is not a number or a "
                        f"list of numbers: {record[:40]!r}") from None


def read_lst(lst_location: Path, image_location: Path, channel: str) -> list[Example]:
    """The images the ``.lst`` files under ``lst_location`` name, read from
    ``image_location``."""
    examples: list[Example] = []
    for path in _files(lst_location):
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{channel}_lst file {path.name} line {number}"
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                raise UserError(f"{where}: expected index<TAB>label<TAB>image path, got "
                                f"{line[:80]!r}")
            try:
                labels = tuple(float(v) for v in parts[1:-1])
            except ValueError:
                raise UserError(f"{where}: the label {parts[1]!r} is not a number") from None
            relative = parts[-1].strip()
            image = (image_location / relative).resolve()
            if not image.is_relative_to(image_location.resolve()) or not image.is_file():
                raise UserError(f"{where}: the image {relative} is not in the {channel} "
                                f"channel")
            examples.append(Example(labels, image.read_bytes(), f"{where} ({relative})"))
    if not examples:
        raise UserError(f"No images listed in the {channel}_lst channel.")
    return examples


def check_labels(examples: Sequence[Example], num_classes: int, multi_label: bool
                 ) -> NDArray[Any]:
    """The labels as an array: class indices, or (multi_label) 0/1 rows of num_classes."""
    out: list[Any] = []
    for example in examples:
        labels = example.labels
        if multi_label:
            if len(labels) != num_classes or any(v not in (0.0, 1.0) for v in labels):
                raise UserError(f"{example.where}: multi_label needs {num_classes} labels of "
                                f"0 or 1, not {list(labels)[:8]}")
            out.append(labels)
            continue
        value = labels[0]
        if len(labels) != 1 or not value.is_integer() or not 0 <= value < num_classes:
            raise UserError(f"{example.where}: label {labels[0] if len(labels) == 1 else list(labels)}"
                            f" is out of range: labels are class indices 0..{num_classes - 1} "
                            f"(num_classes {num_classes})")
        out.append(int(value))
    return np.asarray(out, dtype=np.float32 if multi_label else np.int64)


def decode(image: bytes, channels: int, resize: int | None, height: int, width: int,
           where: str) -> NDArray[np.uint8]:
    """The image as uint8 HxWxC: decoded, converted to ``channels``, its shortest side resized
    to ``resize``; a UserError when it cannot be decoded or is smaller than height x width."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as opened:
            picture = opened.convert("RGB" if channels == 3 else "L")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UserError(f"{where}: the image cannot be decoded ({e})") from None
    if resize is not None:
        w, h = picture.size
        scale = resize / min(w, h)
        picture = picture.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                 Image.Resampling.BILINEAR)
    array = np.asarray(picture, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[0] < height or array.shape[1] < width:
        raise UserError(f"{where}: the image is {array.shape[1]}x{array.shape[0]} pixels, "
                        f"smaller than image_shape's {width}x{height}"
                        + ("" if resize is None else f" after resizing to {resize}"))
    return array


def center_crop(array: NDArray[Any], height: int, width: int) -> NDArray[Any]:
    top = (array.shape[0] - height) // 2
    left = (array.shape[1] - width) // 2
    return array[top:top + height, left:left + width]


def iter_batches(count: int, size: int, rng: np.random.Generator | None
                 ) -> Iterator[NDArray[Any]]:
    order = rng.permutation(count) if rng is not None else np.arange(count)
    for start in range(0, count, size):
        yield order[start:start + size]
