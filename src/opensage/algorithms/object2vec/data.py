"""Object2Vec's JSON lines pairs: ``{"label": 1, "in0": [token ids], "in1": [token ids]}``,
checked record by record (a bad one fails the job naming its file and line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.contract import UserError
from opensage.data import data_files, open_binary


def pad(sequences: list[list[int]], length: int) -> NDArray[np.int64]:
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for i, seq in enumerate(sequences):
        seq = seq[:length]
        out[i, :len(seq)] = seq
    return out


def check_tokens(value: Any, key: str, vocab: int, where: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in value):
        raise UserError(f"{where}: \"{key}\" must be a non-empty list of integer token ids.")
    bad = [t for t in value if t < 0 or t >= vocab]
    if bad:
        raise UserError(f"{where}: \"{key}\" has token id {bad[0]}, outside the vocabulary "
                        f"[0, {vocab}) of {'enc0' if key == 'in0' else 'enc1'}_vocab_size.")
    return value


def read_pairs(location: Path, channel: str, config: dict[str, Any],
               regression: bool) -> tuple[NDArray[np.int64], NDArray[np.int64],
                                          NDArray[Any]]:
    in0: list[list[int]] = []
    in1: list[list[int]] = []
    labels: list[float] = []
    files = data_files(location)
    if not files:
        raise UserError(f"No data in the {channel} channel (input/data/{channel}).")
    for path in files:
        with open_binary(path) as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                where = f"The {channel} channel's {path.name}, line {number}"
                try:
                    record = json.loads(raw)
                except ValueError as e:
                    raise UserError(f"{where} is not JSON ({e}); Object2Vec takes JSON "
                                    f"lines like {{\"label\": 1, \"in0\": [1, 2], "
                                    f"\"in1\": [3]}}.") from None
                if not isinstance(record, dict) or "in0" not in record or "in1" not in record:
                    raise UserError(f"{where} needs \"in0\" and \"in1\" token lists.")
                in0.append(check_tokens(record["in0"], "in0", config["enc0_vocab_size"], where))
                in1.append(check_tokens(record["in1"], "in1", config["enc1_vocab_size"], where))
                label = record.get("label")
                if not isinstance(label, (int, float)) or isinstance(label, bool):
                    raise UserError(f"{where} has no numeric \"label\".")
                if not regression and (label != int(label) or not
                                       0 <= label < config["num_classes"]):
                    raise UserError(f"{where} has label {label!r}; with output_layer softmax "
                                    f"labels are class ids in [0, {config['num_classes']}).")
                labels.append(float(label))
    if not labels:
        raise UserError(f"No records in the {channel} channel.")
    return (pad(in0, config["enc0_max_seq_len"]), pad(in1, config["enc1_max_seq_len"]),
            np.asarray(labels, dtype=np.float32))
