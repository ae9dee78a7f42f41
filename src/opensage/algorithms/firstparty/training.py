"""Training-side I/O of the first-party built-ins: channels in, metrics out, model saved.

* :func:`read_channel` reads a channel (File or Pipe mode) in its declared format:
  RecordIO-protobuf (dense or sparse Records, label in ``label["values"]``) or CSV whose first
  ``label_size`` columns are the label (``text/csv;label_size=1``).
* :func:`log_metric` prints the containers' ``#quality_metric`` lines, which the algorithm's
  metric definitions match.
* :func:`save_model` / :func:`load_model` keep the model as ``model_algo-1``, a NumPy ``.npz``
  archive of arrays plus a JSON header: no pickle, loadable with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.channels import split_content_type
from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.firstparty import CSV_FORMAT, RECORDIO_FORMAT
from opensage.data import DataError, LabeledData, data_files

__all__ = ["MODEL_FILENAME", "as_dense", "check_finite", "check_labels", "is_sparse", "load_model",
           "log_metric", "read_channel", "save_model"]

MODEL_FILENAME = "model_algo-1"
_META = "__meta__"


def is_sparse(matrix: Any) -> bool:
    return hasattr(matrix, "tocsr")


def as_dense(features: Any) -> NDArray[Any]:
    """Features as a C-contiguous float32 matrix (sparse records densified)."""
    if is_sparse(features):
        features = features.toarray()
    return np.ascontiguousarray(features, dtype=np.float32)


# ---------------------------------------------------------------------------------- reading


def read_channel(env: TrainingEnv, name: str, data_format: str, *, default_label_size: int,
                 feature_dim: int | None = None, required: bool = True) -> LabeledData | None:
    """The channel ``name`` as features and labels (labels empty when it has none), every
    feature checked finite (a UserError names the first record that is not).

    ``default_label_size`` is 1 for supervised algorithms, 0 for the others; a CSV channel's
    ``label_size`` parameter overrides it. Features are checked against ``feature_dim``.
    Returns None for an absent optional channel.
    """
    if name not in env.input_data_config:
        if required:
            raise UserError(f"Missing required channel '{name}'.")
        return None
    location = env.channel_data(name)
    if not location.exists() or not data_files(location):
        raise UserError(f"No data in the {name} channel (input/data/{name}).")
    if data_format == RECORDIO_FORMAT:
        from opensage.data.recordio import read_recordio_protobuf

        data = read_recordio_protobuf(location, feature_dim=feature_dim)
    elif data_format == CSV_FORMAT:
        data = _read_csv(location, _label_size(env, name, default_label_size))
    else:  # the spec admits nothing else
        raise UserError(f"Channel '{name}': unsupported data format {data_format!r}.")
    width = int(data.features.shape[1])
    if feature_dim is not None and width != feature_dim:
        raise UserError(f"The {name} channel has {width} features per record but "
                        f"feature_dim is {feature_dim}.")
    if not data.features.shape[0]:
        raise UserError(f"No records in the {name} channel.")
    check_finite(data.features, name)
    return data


def _label_size(env: TrainingEnv, name: str, default: int) -> int:
    _, params = split_content_type(env.content_type(name) or "")
    try:
        return int(params.get("label_size", default))
    except ValueError:
        raise UserError(f"Channel '{name}': label_size must be 0 or 1.") from None


def _read_csv(location: Path, label_size: int) -> LabeledData:
    """Labelled CSV (label first, as xgboost reads it) or unlabelled CSV (every column a
    feature)."""
    from opensage.data.csv import read_csv, read_csv_file

    if label_size:
        return read_csv(location)
    parts: list[NDArray[np.float32]] = []
    for path in data_files(location):
        block = read_csv_file(path)
        if block is not None:
            if parts and block.shape[1] != parts[0].shape[1]:
                raise DataError(f"has {block.shape[1]} columns but the channel's first file "
                                f"has {parts[0].shape[1]}", path=path)
            parts.append(block)
    if not parts:
        raise DataError(f"no data: {location} holds no non-empty CSV file")
    data = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return LabeledData(features=data, labels=np.zeros(0, dtype=np.float32))


# ------------------------------------------------------------------------------- validation


def check_finite(features: Any, channel: str) -> None:
    """A UserError naming the first record with a NaN or infinite feature."""
    values = features.data if is_sparse(features) else features
    finite = np.isfinite(values)
    if finite.all():
        return
    if is_sparse(features):
        at = int(np.flatnonzero(~finite)[0])
        row = int(np.searchsorted(features.indptr, at, side="right"))
        column = int(features.indices[at]) + 1
    else:
        row_i, col_i = np.argwhere(~finite)[0]
        row, column = int(row_i) + 1, int(col_i) + 1
    raise UserError(f"The {channel} channel's record {row} has a NaN or infinite value in "
                    f"feature {column}; every feature must be a finite number.")


def check_labels(labels: NDArray[Any], channel: str, *, allowed: str,
                 ok: NDArray[Any]) -> None:
    """A UserError naming the first record whose label is not ``allowed`` (``ok`` marks the
    good ones)."""
    if len(labels) and not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise UserError(f"The {channel} channel's record {row + 1} has label {labels[row]!r}; "
                        f"labels must be {allowed}.")


def require_labels(data: LabeledData, channel: str) -> NDArray[Any]:
    if not len(data.labels):
        raise UserError(f"The {channel} channel has no labels: put the label in "
                        f"label['values'] (RecordIO-protobuf) or the first CSV column "
                        f"(text/csv;label_size=1).")
    check_labels(data.labels, channel, allowed="finite numbers",
                 ok=np.isfinite(data.labels))
    return data.labels


# ---------------------------------------------------------------------------------- metrics


def log_metric(channel: str, metric: str, value: float, *, loss: bool,
               epoch: int | None = None, host: str = "algo-1") -> None:
    """``#quality_metric: host=algo-1, [epoch=N, ]<channel> <metric> <loss|score>=<value>``."""
    at = f"epoch={epoch}, " if epoch is not None else ""
    kind = "loss" if loss else "score"
    print(f"#quality_metric: host={host}, {at}{channel} {metric} <{kind}>={float(value)!r}",
          flush=True)


# ------------------------------------------------------------------------------------ model


def save_model(model_dir: str | os.PathLike[str], arrays: Mapping[str, NDArray[Any]],
               meta: Mapping[str, Any]) -> Path:
    """Write ``model_algo-1`` (npz: the arrays plus a JSON header) atomically."""
    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILENAME
    partial = directory / (MODEL_FILENAME + ".partial")
    with open(partial, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()},
                 **{_META: np.array(json.dumps(dict(meta)))})
    os.replace(partial, path)
    return path


def load_model(model_dir: str | os.PathLike[str],
               algorithm: str) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
    """The arrays and header of ``model_algo-1``; a RuntimeError says what is wrong."""
    directory = Path(model_dir)
    path = directory / MODEL_FILENAME
    if not path.is_file():
        raise RuntimeError(f"model.tar.gz has no {MODEL_FILENAME} file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as e:
        raise RuntimeError(f"Unable to load the model {MODEL_FILENAME}: {e}") from None
    raw = arrays.pop(_META, None)
    meta = json.loads(str(raw)) if raw is not None else {}
    if meta.get("algorithm") != algorithm:
        raise RuntimeError(f"{MODEL_FILENAME} is not a {algorithm} model (it says "
                           f"{meta.get('algorithm')!r})")
    return arrays, meta
