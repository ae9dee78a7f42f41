"""The torch- and Pillow-free parts of the image classification built-in: MXNet image RecordIO
packing and reading (IRHeader, multi-label headers, augmented-manifest pairs), .lst files,
label checks and the spec's channel checks, each error naming the record or line."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from opensage.algorithms.contract import UserError
from opensage.algorithms.errors import SpecValidationError
from opensage.algorithms.image_classification.data import (
    check_labels,
    pack_record,
    read_lst,
    read_recordio,
    write_png,
)
from opensage.algorithms.image_classification.spec import SPEC
from opensage.data.recordio import MAGIC, frame


def test_pack_record_writes_mxnet_frames_and_read_recordio_reads_them(tmp_path: Path) -> None:
    png = write_png(np.zeros((4, 4, 3), dtype=np.uint8))
    data = pack_record(3.0, png, 7) + pack_record([1.0, 0.0, 1.0], png, 8)
    magic, length = struct.unpack_from("<II", data)
    assert magic == MAGIC == 0xCED7230A and length == 24 + len(png)
    flag, label, index, _ = struct.unpack_from("<IfQQ", data, 8)
    assert (flag, label, index) == (0, 3.0, 7)
    (tmp_path / "a.rec").write_bytes(data)
    first, second = read_recordio(tmp_path, "train")
    assert first.labels == (3.0,) and first.image == png and "a.rec record 1" in first.where
    assert second.labels == (1.0, 0.0, 1.0) and second.image == png


def test_augmented_manifest_pairs_are_an_image_record_then_its_label(tmp_path: Path) -> None:
    png = write_png(np.full((2, 2), 9, dtype=np.uint8))
    (tmp_path / "data").write_bytes(frame(png) + frame(b"4") + frame(png) + frame(b"[0, 1]"))
    examples = read_recordio(tmp_path / "data", "train")
    assert [e.labels for e in examples] == [(4.0,), (0.0, 1.0)]
    assert "augmented manifest line 2" in examples[1].where
    (tmp_path / "data").write_bytes(frame(png) + frame(b"cat"))
    with pytest.raises(UserError, match="record 1.*not a number"):
        read_recordio(tmp_path / "data", "train")


def test_corrupt_records_are_named(tmp_path: Path) -> None:
    png = write_png(np.zeros((2, 2), dtype=np.uint8))
    (tmp_path / "x.rec").write_bytes(pack_record(1.0, png) + frame(b"short"))
    with pytest.raises(UserError, match="x.rec record 2 is too short"):
        read_recordio(tmp_path, "validation")
    (tmp_path / "x.rec").write_bytes(pack_record(1.0, png) + b"\x00" * 12)
    with pytest.raises(UserError, match="record 2.*MXNet image RecordIO"):
        read_recordio(tmp_path, "validation")


def test_write_png_is_a_valid_png() -> None:
    pixels = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    png = write_png(pixels)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height, depth, color = struct.unpack_from(">IIBB", png, 16)
    assert (width, height, depth, color) == (2, 2, 8, 2)
    start = png.index(b"IDAT") + 4
    length = struct.unpack_from(">I", png, start - 8)[0]
    raw = zlib.decompress(png[start:start + length])
    assert raw == b"\x00" + pixels[0].tobytes() + b"\x00" + pixels[1].tobytes()


def test_lst_lines_name_images_in_the_channel(tmp_path: Path) -> None:
    images, lst = tmp_path / "images", tmp_path / "lst"
    (images / "a").mkdir(parents=True)
    lst.mkdir()
    (images / "a" / "one.png").write_bytes(b"png")
    (lst / "train.lst").write_text("0\t2\ta/one.png\n\n1\t1\ta/two.png\n")
    with pytest.raises(UserError, match=r"train.lst line 3: the image a/two.png is not in"):
        read_lst(lst, images, "train")
    (lst / "train.lst").write_text("0\t2\t../outside.png\n")
    with pytest.raises(UserError, match="line 1"):
        read_lst(lst, images, "train")
    (lst / "train.lst").write_text("0\tx\ta/one.png\n")
    with pytest.raises(UserError, match="line 1: the label 'x'"):
        read_lst(lst, images, "train")
    (lst / "train.lst").write_text("0\t2\ta/one.png\n")
    [example] = read_lst(lst, images, "train")
    assert example.labels == (2.0,) and example.image == b"png"


def test_labels_must_be_class_indices_or_multi_hot_rows(tmp_path: Path) -> None:
    png = write_png(np.zeros((2, 2), dtype=np.uint8))
    (tmp_path / "r.rec").write_bytes(pack_record(1.0, png) + pack_record(10.0, png))
    examples = read_recordio(tmp_path, "train")
    assert check_labels(examples[:1], 10, False).tolist() == [1]
    with pytest.raises(UserError, match=r"record 2: label 10.0 is out of range.*0..9"):
        check_labels(examples, 10, False)
    (tmp_path / "r.rec").write_bytes(pack_record([1.0, 0.0, 1.0], png))
    assert check_labels(read_recordio(tmp_path, "train"), 3, True).tolist() == [[1, 0, 1]]
    with pytest.raises(UserError, match="multi_label needs 4 labels"):
        check_labels(read_recordio(tmp_path, "train"), 4, True)


def test_spec_defaults_and_channel_checks() -> None:
    hps = SPEC.validate({"num_classes": "10", "num_training_samples": "100"}, fill_defaults=True)
    assert (hps["num_layers"], hps["image_shape"], hps["epochs"], hps["learning_rate"],
            hps["mini_batch_size"], hps["optimizer"]) == (152, "3,224,224", 30, 0.1, 32, "sgd")
    with pytest.raises(SpecValidationError, match="num_layers"):
        SPEC.validate({"num_classes": "10", "num_training_samples": "1", "num_layers": "19"})
    with pytest.raises(SpecValidationError, match="image_shape"):
        SPEC.validate({"num_classes": "10", "num_training_samples": "1",
                       "image_shape": "224,224"})
    with pytest.raises(SpecValidationError, match="validation_lst.*resize"):
        SPEC.validate({"num_classes": "10", "num_training_samples": "1"},
                      {"train": "application/x-image", "train_lst": "application/x-image",
                       "validation": "application/x-image"})
    assert SPEC.validate({"num_classes": "2", "num_training_samples": "1", "resize": "40"},
                         {"train": "application/x-image", "train_lst": "application/x-image",
                          "validation": "application/x-recordio"})["resize"] == 40
