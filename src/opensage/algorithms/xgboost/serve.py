"""Inference for the SageMaker XGBoost algorithm, as the 1.7-1 container answers it.

``load(model_dir)`` reads ``xgboost-model`` from the unpacked model.tar.gz and returns a
:class:`XGBoostModel`; its ``invoke(body, content_type, accept)`` answers ``(body, content
type)`` or raises :class:`InferenceError` carrying the HTTP status the container gives:

* request ``text/csv`` (rows of features, no label), ``text/libsvm`` (``[label] i:v ...``,
  the label ignored), ``application/json`` / ``application/jsonlines``
  (``{"instances": [{"features": [...]}, ...]}`` or ``{"features": [...]}`` per line),
  ``application/x-recordio-protobuf`` (dense or sparse Records); anything else is ``415``;
* response ``text/csv`` by default: one comma-separated list of predictions (one line per
  row, comma-separated, when each row has several outputs, as ``multi:softprob``);
  ``Accept: application/json`` gives ``{"predictions": [{"score": ...}, ...]}`` and
  ``application/jsonlines`` one ``{"score": ...}`` per line;
* a payload that does not parse, is empty or has more features than the model is ``400``.

Parsing is vectorised (NumPy), never per value in Python where a batch path exists.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.inference import InferenceError, parse_csv, parse_json, parse_recordio
from opensage.algorithms.inference import media_type as _media_type
from opensage.algorithms.xgboost.spec import MODEL_FILENAME

CSV = "text/csv"
LIBSVM = "text/libsvm"
JSON = "application/json"
JSONLINES = "application/jsonlines"
RECORDIO = "application/x-recordio-protobuf"
REQUEST_TYPES = (CSV, LIBSVM, JSON, JSONLINES, RECORDIO, "application/x-libsvm")
RESPONSE_TYPES = (CSV, JSON, JSONLINES)


class XGBoostModel:
    def __init__(self, booster: Any, xgb: Any) -> None:
        self.booster = booster
        self.xgb = xgb
        self.num_features = int(booster.num_features())
        self.default_accept = _media_type(
            os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")) or CSV

    # -- the contract
    def invoke(self, body: bytes, content_type: str | None,
               accept: str | None = None) -> tuple[bytes, str]:
        kind = _media_type(content_type) or CSV
        if kind not in REQUEST_TYPES:
            raise InferenceError(415, f"Content type {content_type} is not supported by this "
                                      f"algorithm; use one of {', '.join(REQUEST_TYPES[:5])}.")
        response_type = self._response_type(accept)
        if not body.strip():
            raise InferenceError(400, "Invalid payload: the request body is empty.")
        if kind == CSV:
            matrix = self._dense(parse_csv(body))
        elif kind in (LIBSVM, "application/x-libsvm"):
            matrix = self._dmatrix_sparse(*parse_libsvm(body))
        else:
            rows = (parse_recordio(body) if kind == RECORDIO else
                    parse_json(body, lines=kind == JSONLINES))
            matrix = (self._dmatrix_sparse(rows.indptr, rows.indices, rows.data)
                      if hasattr(rows, "tocsr") else self._dense(rows))
        if isinstance(matrix, np.ndarray):
            # No DMatrix for dense rows: in-place prediction skips its construction cost.
            predictions = self.booster.inplace_predict(matrix, validate_features=False)
        else:
            predictions = self.booster.predict(matrix, validate_features=False)
        return encode(predictions, response_type), response_type

    def _response_type(self, accept: str | None) -> str:
        choices = [_media_type(a) for a in (accept or "").split(",") if a.strip()]
        if not choices:
            return self.default_accept
        for choice in choices:
            if choice in RESPONSE_TYPES:
                return choice
            if choice in ("*/*", "text/*", "application/*"):
                return self.default_accept
        raise InferenceError(406, f"Accept {accept} is not supported by this algorithm; use "
                                  f"one of {', '.join(RESPONSE_TYPES)}.")

    def _check_width(self, width: int) -> None:
        if width > self.num_features:
            raise InferenceError(400, f"Feature size of the request ({width}) does not match "
                                      f"the model's feature size ({self.num_features}).")

    def _dense(self, rows: NDArray[Any]) -> Any:
        if rows.shape[1] != self.num_features:
            # The container accepts fewer columns only through libsvm; CSV must match.
            raise InferenceError(400, f"Feature size of the request ({rows.shape[1]}) does not "
                                      f"match the model's feature size ({self.num_features}).")
        return np.ascontiguousarray(rows, dtype=np.float32)

    def _dmatrix_sparse(self, indptr: NDArray[Any], indices: NDArray[Any],
                        values: NDArray[Any]) -> Any:
        width = int(indices.max()) + 1 if len(indices) else 0
        self._check_width(width)
        import scipy.sparse

        csr = scipy.sparse.csr_matrix((values, indices, indptr),
                                      shape=(len(indptr) - 1, self.num_features))
        return self.xgb.DMatrix(csr, nthread=1)


def load(model_dir: str | os.PathLike[str]) -> XGBoostModel:
    """The model in ``model_dir``: ``xgboost-model`` (or the only file there)."""
    import xgboost

    directory = Path(model_dir)
    path = directory / MODEL_FILENAME
    if not path.is_file():
        files = [p for p in directory.rglob("*") if p.is_file()] if directory.is_dir() else []
        if len(files) != 1:
            raise RuntimeError(f"model.tar.gz has no {MODEL_FILENAME} file (found "
                               f"{', '.join(sorted(str(f.relative_to(directory)) for f in files)) or 'nothing'})")
        path = files[0]
    booster = xgboost.Booster()
    try:
        with warnings.catch_warnings():  # "Unknown file format": the container's name has none
            warnings.simplefilter("ignore", UserWarning)
            booster.load_model(str(path))
    except xgboost.core.XGBoostError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RuntimeError(f"Unable to load the model {path.name}: {first}") from None
    booster.set_param({"nthread": 1})
    return XGBoostModel(booster, xgboost)


# ---------------------------------------------------------------------------------- parsing


def parse_libsvm(body: bytes) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """``[label] index:value ...`` lines -> CSR (indptr, indices, values); labels ignored."""
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    for number, line in enumerate(body.decode("utf-8", "replace").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        for token in line.split():
            index, sep, value = token.partition(":")
            if not sep:
                continue  # the label (or qid-less weight): not a feature
            try:
                indices.append(int(index))
                values.append(float(value))
            except ValueError:
                raise InferenceError(400, f"Unable to parse libsvm: bad feature {token!r} "
                                          f"(line {number}).") from None
            if indices[-1] < 0:
                raise InferenceError(400, f"Unable to parse libsvm: negative feature index "
                                          f"(line {number}).")
        indptr.append(len(indices))
    return (np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64),
            np.asarray(values, dtype=np.float32))


# --------------------------------------------------------------------------------- encoding


def encode(predictions: NDArray[Any], accept: str) -> bytes:
    values = predictions.tolist()
    if accept == JSON:
        return json.dumps({"predictions": [{"score": v} for v in values]}).encode()
    if accept == JSONLINES:
        return "".join(json.dumps({"score": v}) + "\n" for v in values).encode()
    if predictions.ndim == 1:
        return ",".join(map(repr, values)).encode()
    return "\n".join(",".join(map(repr, row)) for row in values).encode()
