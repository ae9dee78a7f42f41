"""The inference contract the built-in algorithms share: request parsing, content
negotiation and response encoding, as the SageMaker containers answer them.

A built-in's ``serve.load(model_dir)`` returns an object with ``invoke(body, content_type,
accept) -> (body, content type)``; a refused request raises :class:`InferenceError` with the
HTTP status the container gives (400 bad payload, 406 unsupported Accept, 415 unsupported
Content-Type). :class:`BuiltinModel` implements ``invoke`` for the first-party algorithms
(linear-learner, kmeans, pca, knn, factorization-machines, randomcutforest): a subclass says
which content types it takes and implements ``predict(features, verbose) -> {output: array}``.

Request bodies (no label column, rows in order):

* ``text/csv``: rows of comma-separated numbers;
* ``application/json``: ``{"instances": [{"features": [...]}, {"data": {"features":
  {"values": [...]}}}, ...]}``, sparse as ``{"data": {"features": {"keys": [...], "shape":
  [d], "values": [...]}}}``;
* ``application/jsonlines``: one such instance per line;
* ``application/x-recordio-protobuf``: RecordIO-protobuf Records (dense or sparse).

Responses: ``application/json`` ``{"predictions": [{...}, ...]}`` (the top-level key is the
algorithm's: ``projections`` for PCA, ``scores`` for RCF), ``application/jsonlines`` one
object per line, ``text/csv`` one line per row, ``application/x-recordio-protobuf`` one Record
per row with the outputs in its ``label`` map. ``; verbose=true`` on Accept asks for the
verbose outputs where an algorithm has them (knn, ipinsights).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
RECORDIO = "application/x-recordio-protobuf"


class InferenceError(Exception):
    """The model server's answer to a request it refuses: an HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(value: str | None) -> str:
    """``"application/json; verbose=true"`` -> ``"application/json"``."""
    return (value or "").split(";", 1)[0].strip().lower()


def media_params(value: str | None) -> dict[str, str]:
    """The parameters of a media type, keys and values lower-cased."""
    params: dict[str, str] = {}
    for part in (value or "").split(";")[1:]:
        key, sep, val = part.partition("=")
        if sep:
            params[key.strip().lower()] = val.strip().strip('"').lower()
    return params


def negotiate(accept: str | None, supported: Sequence[str],
              default: str) -> tuple[str, dict[str, str]]:
    """The response type for an Accept header (first supported choice; wildcards and no
    header get ``default``) and its parameters, or a 406."""
    choices = [a for a in (accept or "").split(",") if a.strip()]
    if not choices:
        return default, {}
    for choice in choices:
        kind = media_type(choice)
        if kind in supported:
            return kind, media_params(choice)
        if kind in ("*/*", "text/*", "application/*"):
            return default, media_params(choice)
    raise InferenceError(406, f"Accept {accept} is not supported by this algorithm; use one of "
                              f"{', '.join(supported)}.")


def default_accept(supported: Sequence[str], fallback: str) -> str:
    """``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` when it names a supported type, else
    ``fallback`` (the container's default)."""
    wanted = media_type(os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"))
    return wanted if wanted in supported else fallback


def is_verbose(params: Mapping[str, str]) -> bool:
    return params.get("verbose", "false") in ("true", "1")


# ---------------------------------------------------------------------------------- parsing


LARGE_CSV = 1 << 16  # bytes from which pyarrow's parser beats NumPy's


def parse_csv(body: bytes) -> NDArray[Any]:
    """Rows of comma-separated numbers (empty fields are missing values) -> float32 matrix.

    One row (a real-time request) is split directly; a large body (a batch transform
    mini-batch) goes through pyarrow's multi-threaded parser; anything that does not parse
    is re-read line by line to say which line and value are wrong."""
    body = body.strip()
    try:
        if b"\n" not in body and b"\r" not in body:
            return np.array(body.split(b","), dtype=np.float32).reshape(1, -1)
        if len(body) >= LARGE_CSV:
            return _parse_csv_arrow(body)
        return np.loadtxt(io.StringIO(body.decode("utf-8", "replace")), delimiter=",",
                          dtype=np.float32, ndmin=2, comments=None)
    except ValueError:
        return _parse_csv_slowly(body.decode("utf-8", "replace"))


def _parse_csv_arrow(body: bytes) -> NDArray[Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    width = body.split(b"\n", 1)[0].count(b",") + 1
    names = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(body), read_options=pacsv.ReadOptions(column_names=names),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.float32()),
                null_values=[""], strings_can_be_null=True))
    except pa.ArrowInvalid as e:
        raise ValueError(str(e)) from None
    from opensage.data.csv import table_to_arrays

    return table_to_arrays(table)[1]


def _parse_csv_slowly(text: str) -> NDArray[Any]:
    """The error path of :func:`parse_csv`: find the line and value that do not parse."""
    lines = [line for line in text.splitlines() if line.strip()]
    width = None
    out = []
    for number, line in enumerate(lines, 1):
        fields = line.split(",")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise InferenceError(400, f"Unable to parse CSV: line {number} has {len(fields)} "
                                      f"columns, expected {width}.")
        try:
            out.append([float(f) if f.strip() else np.nan for f in fields])
        except ValueError:
            bad = next(f for f in fields if f.strip() and not _is_number(f))
            raise InferenceError(400, f"Unable to parse CSV: could not convert string to "
                                      f"float: {bad.strip()!r} (line {number}).") from None
    return np.asarray(out, dtype=np.float32)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def json_instances(body: bytes, *, lines: bool) -> list[Any]:
    """The instances of a JSON (``{"instances": [...]}``, a bare list, or one instance) or
    JSON lines body, each as sent."""
    try:
        if lines:
            instances = [json.loads(line) for line in body.splitlines() if line.strip()]
        else:
            document = json.loads(body)
            if isinstance(document, dict) and "instances" in document:
                instances = document["instances"]
            elif isinstance(document, dict):
                instances = [document]
            else:
                instances = document
    except ValueError as e:
        raise InferenceError(400, f"Unable to parse JSON: {e}") from None
    if not isinstance(instances, list) or not instances:
        raise InferenceError(400, 'Invalid JSON payload: expected {"instances": [{"features": '
                                  '[...]}, ...]}.')
    return instances


def instance_features(instance: Any, number: int) -> Any:
    """An instance's features: a list (dense), or a dict with keys/shape/values (sparse)."""
    if isinstance(instance, list):
        return instance
    if isinstance(instance, dict):
        if "features" in instance:
            return instance["features"]
        data = instance.get("data")
        if isinstance(data, dict) and isinstance(data.get("features"), dict):
            features = data["features"]
            return features if "keys" in features else features.get("values")
    raise InferenceError(400, f"Invalid JSON payload: instance {number} has no \"features\" "
                              f"(expected {{\"features\": [...]}} or {{\"data\": {{\"features\":"
                              f" {{\"values\": [...]}}}}}}).")


def parse_json(body: bytes, *, lines: bool, feature_dim: int | None = None) -> Any:
    """JSON or JSON lines instances as a float32 matrix, or CSR when any is sparse."""
    features = [instance_features(x, i) for i, x in enumerate(json_instances(body, lines=lines),
                                                               start=1)]
    if any(isinstance(f, dict) for f in features):
        return _sparse_json(features, feature_dim)
    try:
        rows = np.asarray(features, dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise InferenceError(400, f"Invalid JSON payload: features must be lists of numbers "
                                  f"of one length ({e}).") from None
    if rows.ndim != 2:
        raise InferenceError(400, "Invalid JSON payload: features must be lists of numbers of "
                                  "one length.")
    return rows


def _sparse_json(features: list[Any], feature_dim: int | None) -> Any:
    import scipy.sparse

    indptr: list[int] = [0]
    indices: list[Any] = []  # JSON: validated by numpy below
    values: list[Any] = []
    width = feature_dim or 0
    for number, f in enumerate(features, start=1):
        if isinstance(f, dict):
            keys, vals = f.get("keys") or [], f.get("values") or []
            shape = f.get("shape") or []
        else:
            keys, vals, shape = list(range(len(f or []))), f or [], [len(f or [])]
        if len(keys) != len(vals):
            raise InferenceError(400, f"Invalid JSON payload: instance {number} has "
                                      f"{len(keys)} keys and {len(vals)} values.")
        indices += keys
        values += vals
        indptr.append(len(indices))
        if shape:
            width = max(width, int(shape[0]))
    try:
        idx = np.asarray(indices, dtype=np.int64)
        val = np.asarray(values, dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise InferenceError(400, f"Invalid JSON payload: {e}") from None
    if len(idx) and (idx.min() < 0 or idx.max() >= max(width, 1)):
        raise InferenceError(400, f"Invalid JSON payload: a feature key is outside the shape "
                                  f"({width}).")
    return scipy.sparse.csr_matrix((val, idx, np.asarray(indptr)), shape=(len(features), width))


def parse_recordio(body: bytes, feature_dim: int | None = None) -> Any:
    """RecordIO-protobuf Records as a float32 matrix or CSR."""
    from opensage.data import DataError
    from opensage.data.recordio import decode

    try:
        return decode(body, where="request").features
    except DataError as e:
        raise InferenceError(400, f"Unable to parse RecordIO-protobuf: {e}") from None


# --------------------------------------------------------------------------------- encoding


def _rows(outputs: Mapping[str, NDArray[Any]]) -> list[dict[str, Any]]:
    columns = {name: np.asarray(values).tolist() for name, values in outputs.items()}
    n = len(next(iter(columns.values()))) if columns else 0
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def encode(outputs: Mapping[str, NDArray[Any]], accept: str, *,
           top_key: str = "predictions") -> bytes:
    """Per-row outputs (name -> array of length n, or n x k) in the response type."""
    if accept == JSON:
        return json.dumps({top_key: _rows(outputs)}).encode()
    if accept == JSONLINES:
        return "".join(json.dumps(row) + "\n" for row in _rows(outputs)).encode()
    if accept == RECORDIO:
        from opensage.data.recordio import encode_outputs

        return encode_outputs(outputs)
    if accept == CSV:
        columns = [np.asarray(v, dtype=np.float64).reshape(len(v), -1) for v in outputs.values()]
        matrix = np.hstack(columns) if columns else np.zeros((0, 0))
        return "".join(",".join(map(_csv_number, row)) + "\n" for row in matrix.tolist()).encode()
    raise InferenceError(406, f"Accept {accept} is not supported.")


def _csv_number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


# ------------------------------------------------------------------------------------ model


class BuiltinModel:
    """``invoke`` for a first-party algorithm: parse, check, ``predict``, encode.

    A subclass sets ``feature_dim`` and overrides ``predict``; it may narrow
    ``request_types`` / ``response_types`` and change ``top_key`` or ``default_response``.
    """

    request_types: tuple[str, ...] = (CSV, JSON, JSONLINES, RECORDIO)
    response_types: tuple[str, ...] = (JSON, JSONLINES, CSV, RECORDIO)
    default_response = JSON
    top_key = "predictions"
    feature_dim: int = 0
    dense = True  # predict wants a dense matrix (a sparse request is densified)

    def predict(self, features: Any, verbose: bool) -> dict[str, NDArray[Any]]:
        raise NotImplementedError

    def invoke(self, body: bytes, content_type: str | None,
               accept: str | None = None) -> tuple[bytes, str]:
        kind = media_type(content_type) or self.request_types[0]
        if kind not in self.request_types:
            raise InferenceError(415, f"Content type {content_type} is not supported by this "
                                      f"algorithm; use one of {', '.join(self.request_types)}.")
        response_type, params = negotiate(
            accept, self.response_types, default_accept(self.response_types,
                                                        self.default_response))
        if not body.strip():
            raise InferenceError(400, "Invalid payload: the request body is empty.")
        features = self.parse(body, kind)
        features = self.check(features)
        outputs = self.predict(features, is_verbose(params))
        return encode(outputs, response_type, top_key=self.top_key), response_type

    def parse(self, body: bytes, kind: str) -> Any:
        if kind == CSV:
            return parse_csv(body)
        if kind in (JSON, JSONLINES):
            return parse_json(body, lines=kind == JSONLINES, feature_dim=self.feature_dim)
        return parse_recordio(body, self.feature_dim)

    def check(self, features: Any) -> Any:
        """The request's matrix, checked: its width is the model's, every value finite."""
        width = int(features.shape[1])
        if width != self.feature_dim:
            raise InferenceError(400, f"Invalid input: the request has {width} features per "
                                      f"record but the model was trained with feature_dim "
                                      f"{self.feature_dim}.")
        values = features.data if hasattr(features, "tocsr") else features
        if not np.isfinite(values).all():
            if hasattr(features, "tocsr"):
                row = int(np.searchsorted(features.indptr,
                                          int(np.flatnonzero(~np.isfinite(values))[0]),
                                          side="right"))
            else:
                row = int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0]) + 1
            raise InferenceError(400, f"Invalid input: record {row} has a NaN, infinite or "
                                      f"missing value; every feature must be a finite number.")
        if self.dense and hasattr(features, "tocsr"):
            return np.asarray(features.todense(), dtype=np.float32)
        return features
