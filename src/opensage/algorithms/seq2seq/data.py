"""seq2seq's inputs: the vocabularies (``vocab.src.json``, ``vocab.trg.json``: token -> id, with
Sockeye's ``<pad>`` 0, ``<unk>``, ``<s>``, ``</s>``) and RecordIO-protobuf Records of token ids
(source in the features' Int32 ``values``, target in the label's), checked record by record: a
bad one fails the job naming its file and record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.contract import UserError
from opensage.data import DataError, data_files, open_binary
from opensage.data.recordio import iter_payloads, parse_record

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
VOCAB_FILES = {"source": "vocab.src.json", "target": "vocab.trg.json"}


def check_vocab(vocab: Any, name: str) -> dict[str, int]:
    if not isinstance(vocab, dict) or not vocab or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in vocab.items()):
        raise UserError(f"{name} must be a JSON object mapping each token to its integer id.")
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise UserError(f"{name}: token ids must be 0..{len(ids) - 1}, each once.")
    if vocab.get(PAD) != 0:
        raise UserError(f"{name}: the padding token {PAD!r} must have id 0.")
    missing = [t for t in (UNK, BOS, EOS) if t not in vocab]
    if missing:
        raise UserError(f"{name} has no {', '.join(repr(t) for t in missing)} token "
                        f"(seq2seq needs {PAD}, {UNK}, {BOS} and {EOS}).")
    return vocab


def read_vocabularies(location: Path) -> tuple[dict[str, int], dict[str, int]]:
    found = {path.name: path for path in data_files(location)}
    out = []
    for side in ("source", "target"):
        name = VOCAB_FILES[side]
        if name not in found:
            raise UserError(f"The vocab channel has no {name} (the {side} vocabulary); it "
                            f"needs {VOCAB_FILES['source']} and {VOCAB_FILES['target']}.")
        try:
            vocab = json.loads(found[name].read_text(encoding="utf-8"))
        except ValueError as e:
            raise UserError(f"The vocab channel's {name} is not JSON ({e}).") from None
        out.append(check_vocab(vocab, f"The vocab channel's {name}"))
    return out[0], out[1]


def _ids(value: Any, what: str, size: int, vocab_file: str, where: str) -> NDArray[np.int64]:
    if value is None or getattr(value, "kind", None) != "int32" or value.sparse:
        raise UserError(f"{where} has no dense Int32 {what} 'values' tensor of token ids.")
    ids = np.asarray(value.values, dtype=np.int64)
    if not len(ids):
        raise UserError(f"{where} has an empty {what} sequence.")
    bad = ids[(ids < 0) | (ids >= size)]
    if len(bad):
        raise UserError(f"{where}: {what} token id {int(bad[0])} is outside {vocab_file} "
                        f"(ids 0..{size - 1}).")
    return ids


def read_pairs(location: Path, channel: str, source_size: int, target_size: int,
               max_source: int, max_target: int
               ) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """(source ids, target ids) per Record, cut to the maximum lengths."""
    files = data_files(location)
    if not files:
        raise UserError(f"No data in the {channel} channel (input/data/{channel}).")
    pairs = []
    for path in files:
        with open_binary(path) as f:
            buffer = f.read()
        try:
            for number, payload in enumerate(iter_payloads(buffer, where=path.name), start=1):
                where = f"The {channel} channel's {path.name}, record {number},"
                try:
                    record = parse_record(payload)
                except Exception as e:  # noqa: BLE001 - a malformed protobuf
                    raise UserError(f"{where} is not a protobuf Record ({e}).") from None
                source = _ids(record.features.get("values"), "source", source_size,
                              VOCAB_FILES["source"], where.rstrip(","))
                target = _ids(record.label.get("values"), "target", target_size,
                              VOCAB_FILES["target"], where.rstrip(","))
                pairs.append((source[:max_source], target[:max_target]))
        except DataError as e:
            raise UserError(f"The {channel} channel's {path.name} is not RecordIO-protobuf: "
                            f"{e}") from None
    if not pairs:
        raise UserError(f"No records in the {channel} channel.")
    return pairs


def pad(sequences: list[NDArray[np.int64]]) -> NDArray[np.int64]:
    out = np.zeros((len(sequences), max(len(s) for s in sequences)), dtype=np.int64)
    for i, seq in enumerate(sequences):
        out[i, :len(seq)] = seq
    return out
