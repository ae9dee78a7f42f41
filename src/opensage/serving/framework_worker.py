"""A framework model worker: the user's inference handlers behind the inference contract.

Run by file path with a framework environment's interpreter (which has numpy, scikit-learn,
torch... but not opensage, uvicorn or starlette)::

    <env>/bin/python framework_worker.py --framework sklearn --model-dir D --code-dir C
        (--fd N | --port-file F) --failure-file E

It speaks the protocol of ``opensage.serving.worker``: ``GET /ping``, ``POST /invocations``
(``Content-Type``, ``Accept`` and custom attributes), ``GET /execution-parameters``; a model
that fails to load writes the reason to ``--failure-file`` and exits 1; SIGTERM stops
accepting, finishes what is in flight and exits.

The handlers follow the SageMaker inference toolkits: the module ``SAGEMAKER_PROGRAM``
(default ``inference.py``) from the code directory, with ``model_fn(model_dir)``,
``input_fn(data, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction,
accept)`` or ``transform_fn(model, data, content_type, accept)`` (each may take a trailing
``context``), and each missing one replaced by the framework's default (decoders and encoders
for ``text/csv``, ``application/json``, ``application/x-npy``; ``SAGEMAKER_DEFAULT_
INVOCATIONS_ACCEPT`` when ``Accept`` is missing or ``*/*``). A handler that raises answers
the exception's status (``status_code``), else 500, with its message, and the traceback goes
to stdout (the endpoint's log stream).

Standard library only (numpy and the framework are imported lazily, from the environment):
this file never imports opensage.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import io
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
NPZ = "application/x-npz"
LIBSVM = "text/libsvm"
UTF8_TYPES = (JSON, CSV, "application/jsonlines", "text/plain")
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 406: "Not Acceptable",
           413: "Payload Too Large", 415: "Unsupported Media Type",
           500: "Internal Server Error", 503: "Service Unavailable"}
MAX_HEAD = 64 * 1024
MAX_BODY = 100 * 1024 * 1024


def _lib(name: str) -> Any:
    """A module of the framework's environment, imported when first needed."""
    return importlib.import_module(name)


class HandlerError(Exception):
    """An error with the HTTP status the toolkits answer with (415, 406, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status


class LoadError(Exception):
    """The model cannot be served; the message is the FailureReason."""


# -- the toolkits' decoders and encoders ---------------------------------------------------
def _text(data: bytes | str) -> str:
    return data.decode("utf-8") if isinstance(data, bytes) else data


def decode(data: bytes | str, content_type: str) -> Any:
    """A numpy array from the request body, as the toolkits' default decoders do."""
    import numpy as np

    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON:
        return np.array(json.loads(_text(data)))
    if kind == CSV:
        text = _text(data)
        if '"' in text:  # quoted fields: the csv module
            import csv

            rows = [row for row in csv.reader(io.StringIO(text)) if row]
        else:
            rows = [line.split(",") for line in text.splitlines() if line]
        try:
            array = np.array(rows, dtype=np.float64)
        except ValueError:
            array = np.array(rows)
        return array
    if kind == NPY:
        raw = data.encode("latin-1") if isinstance(data, str) else data
        return np.load(io.BytesIO(raw), allow_pickle=False)
    if kind == NPZ:
        scipy_sparse = _lib("scipy.sparse")
        raw = data.encode("latin-1") if isinstance(data, str) else data
        return scipy_sparse.load_npz(io.BytesIO(raw))
    raise HandlerError(415, f"Content type {content_type} is not supported by this framework "
                            f"(supported: {JSON}, {CSV}, {NPY}).")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy().tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(prediction: Any, accept: str) -> bytes:
    """The response body for one content type, as the toolkits' default encoders do."""
    import numpy as np

    if hasattr(prediction, "detach"):  # torch
        prediction = prediction.detach().cpu().numpy()
    if accept == JSON:
        return json.dumps(prediction, default=_jsonable).encode()
    if accept == CSV:
        array = np.asarray(prediction)
        if array.dtype.kind in "iub" or array.dtype == np.float64:
            # what np.savetxt(fmt="%s") writes, without its per-row formatting
            if array.ndim == 1:
                return "".join(f"{v}\n" for v in array.tolist()).encode()
            if array.ndim == 2:
                return "".join(",".join(map(str, r)) + "\n" for r in array.tolist()).encode()
        stream = io.StringIO()
        np.savetxt(stream, array if array.ndim else array.reshape(1), delimiter=",", fmt="%s")
        return stream.getvalue().encode()
    if accept == NPY:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(prediction), allow_pickle=False)
        return buffer.getvalue()
    raise HandlerError(406, f"Accept type {accept} is not supported by this framework "
                            f"(supported: {JSON}, {CSV}, {NPY}).")


def parse_accept(accept: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]


# -- the frameworks' defaults ---------------------------------------------------------------
class Defaults:
    """The default handlers of one framework's inference container."""

    framework = "generic"

    def model_fn(self, model_dir: str) -> Any:
        raise LoadError(
            f"The {self.framework} serving container needs a model_fn(model_dir) in the "
            "inference script (SAGEMAKER_PROGRAM) to load the model: none was found.")

    def input_fn(self, data: bytes | str, content_type: str) -> Any:
        return decode(data, content_type)

    def predict_fn(self, data: Any, model: Any) -> Any:
        return model.predict(data)

    def output_fn(self, prediction: Any, accept: str) -> Any:
        for kind in parse_accept(accept):
            if kind in (JSON, CSV, NPY):
                return encode(prediction, kind), kind
        raise HandlerError(406, f"Accept type {accept} is not supported (supported: "
                                f"{JSON}, {CSV}, {NPY}).")


class SklearnDefaults(Defaults):
    """sagemaker-scikit-learn-container: model_fn is required; JSON and CSV become float32."""

    framework = "scikit-learn"

    def input_fn(self, data: bytes | str, content_type: str) -> Any:
        import numpy as np

        array = decode(data, content_type)
        kind = content_type.split(";")[0].strip().lower()
        return array.astype(np.float32) if kind in UTF8_TYPES else array


class PytorchDefaults(Defaults):
    """sagemaker-pytorch-inference-toolkit: a TorchScript ``model.pt`` (or the only
    ``*.pt``/``*.pth`` file), tensors in, ``model(x)`` under ``no_grad``, lists out."""

    framework = "PyTorch"

    def model_fn(self, model_dir: str) -> Any:
        torch = _lib("torch")

        path = os.path.join(model_dir, "model.pt")
        if not os.path.exists(path):
            files = sorted(f for f in os.listdir(model_dir)
                           if os.path.isfile(os.path.join(model_dir, f))
                           and f.endswith((".pt", ".pth")))
            if len(files) != 1:
                raise LoadError("Exactly one .pth or .pt file is required for PyTorch models "
                                f"without a model_fn: found {files}.")
            path = os.path.join(model_dir, files[0])
        try:
            return torch.jit.load(path, map_location="cpu")
        except Exception as e:  # noqa: BLE001 - the reason the model won't load
            raise LoadError(f"Failed to load {os.path.basename(path)} as a TorchScript model "
                            f"({e}); provide a model_fn to load other formats.") from None

    def input_fn(self, data: bytes | str, content_type: str) -> Any:
        torch = _lib("torch")

        array = decode(data, content_type)
        kind = content_type.split(";")[0].strip().lower()
        return torch.FloatTensor(array) if kind in UTF8_TYPES else torch.from_numpy(array)

    def predict_fn(self, data: Any, model: Any) -> Any:
        torch = _lib("torch")

        model.eval()
        with torch.no_grad():
            return model(data)

    def output_fn(self, prediction: Any, accept: str) -> Any:
        if hasattr(prediction, "detach"):
            prediction = prediction.detach().cpu().numpy().tolist()
        return super().output_fn(prediction, accept)


class XgboostDefaults(Defaults):
    """sagemaker-xgboost-container in framework mode: the booster file, a DMatrix in."""

    framework = "XGBoost"

    def model_fn(self, model_dir: str) -> Any:
        xgboost = _lib("xgboost")

        files = sorted(f for f in os.listdir(model_dir)
                       if os.path.isfile(os.path.join(model_dir, f)))
        name = "xgboost-model" if "xgboost-model" in files else (files[0] if len(files) == 1
                                                                 else None)
        if name is None:
            raise LoadError("No xgboost-model file in the model directory and no model_fn: "
                            f"found {files}.")
        booster = xgboost.Booster()
        try:
            booster.load_model(os.path.join(model_dir, name))
        except Exception as e:  # noqa: BLE001
            raise LoadError(f"Failed to load {name} as an XGBoost booster: {e}") from None
        return booster

    def input_fn(self, data: bytes | str, content_type: str) -> Any:
        xgboost = _lib("xgboost")

        kind = content_type.split(";")[0].strip().lower()
        if kind == LIBSVM:
            import tempfile

            with tempfile.NamedTemporaryFile("wb", suffix=".libsvm") as f:
                f.write(data.encode() if isinstance(data, str) else data)
                f.flush()
                return xgboost.DMatrix(f.name + "?format=libsvm")
        return xgboost.DMatrix(decode(data, content_type))

    def predict_fn(self, data: Any, model: Any) -> Any:
        xgboost = _lib("xgboost")

        if not isinstance(data, xgboost.DMatrix):
            data = xgboost.DMatrix(data)
        return model.predict(data)


class TensorflowDefaults(Defaults):
    """TF Serving's REST format over a SavedModel: ``{"instances": [...]}`` (or
    ``{"inputs": ...}``) in, ``{"predictions": [...]}`` out, the ``serving_default``
    signature."""

    framework = "TensorFlow"

    def model_fn(self, model_dir: str) -> Any:
        tf = _lib("tensorflow")

        candidates = [Path(model_dir), *sorted(Path(model_dir).rglob("saved_model.pb"))]
        for candidate in candidates:
            base = candidate if candidate.is_dir() else candidate.parent
            if (base / "saved_model.pb").exists():
                loaded = tf.saved_model.load(str(base))
                return loaded.signatures["serving_default"]
        raise LoadError("No SavedModel (saved_model.pb) in the model directory and no "
                        "inference.py.")

    def input_fn(self, data: bytes | str, content_type: str) -> Any:
        kind = content_type.split(";")[0].strip().lower()
        if kind != JSON:
            raise HandlerError(415, f"TensorFlow Serving accepts {JSON}, not {content_type}.")
        request = json.loads(_text(data))
        if not isinstance(request, dict) or not ({"instances", "inputs"} & request.keys()):
            raise HandlerError(400, 'The request must be {"instances": [...]} or '
                                    '{"inputs": ...}.')
        return request.get("instances", request.get("inputs"))

    def predict_fn(self, data: Any, model: Any) -> Any:
        tf = _lib("tensorflow")

        (name, spec), = model.structured_input_signature[1].items()
        outputs = model(**{name: tf.constant(data, dtype=spec.dtype)})
        values = list(outputs.values())
        result = values[0] if len(values) == 1 else {k: v for k, v in outputs.items()}
        if isinstance(result, dict):
            return {k: v.numpy().tolist() for k, v in result.items()}
        return result.numpy().tolist()

    def output_fn(self, prediction: Any, accept: str) -> Any:
        return json.dumps({"predictions": prediction}).encode(), JSON


DEFAULTS: dict[str, type[Defaults]] = {
    "sklearn": SklearnDefaults, "pytorch": PytorchDefaults, "xgboost": XgboostDefaults,
    "tensorflow": TensorflowDefaults, "huggingface": PytorchDefaults,
}


# -- the user's module ----------------------------------------------------------------------
class Context:
    """The ``context`` argument handlers may take (a subset of the toolkits' one)."""

    def __init__(self, model_dir: str) -> None:
        self.model_dir = model_dir
        self.system_properties = {"model_dir": model_dir, "gpu_id": None}
        self.request_processor: list[Any] = []


def _call(fn: Callable[..., Any], args: tuple[Any, ...], context: Context) -> Any:
    return fn(*args, context) if _takes(fn, len(args) + 1) else fn(*args)


_arity: dict[Any, bool] = {}


def _takes(fn: Callable[..., Any], count: int) -> bool:
    key = (fn, count)
    known = _arity.get(key)
    if known is None:
        try:
            params = [p for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            known = len(params) >= count
        except (TypeError, ValueError):
            known = False
        _arity[key] = known
    return known


def load_user_module(code_dir: str | None, program: str) -> Any:
    if not code_dir:
        return None
    name = program.removesuffix(".py")
    path = Path(code_dir) / (name.replace(".", "/") + ".py")
    if not path.is_file():
        return None
    for entry in (code_dir, str(Path(code_dir) / "lib")):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    spec = importlib.util.spec_from_file_location(name.replace("/", "."), path)
    if spec is None or spec.loader is None:
        raise LoadError(f"Cannot import {program} from {code_dir}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Handler:
    """The model and the user's (or default) handlers."""

    def __init__(self, framework: str, model_dir: str, code_dir: str | None,
                 env: dict[str, str]) -> None:
        self.context = Context(model_dir)
        self.default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or JSON
        program = env.get("SAGEMAKER_PROGRAM") or "inference.py"
        self.user = load_user_module(code_dir, program)
        defaults = DEFAULTS.get(framework, Defaults)()
        user = self.user

        def pick(name: str) -> Callable[..., Any]:
            fn = getattr(user, name, None) if user is not None else None
            chosen: Callable[..., Any] = fn if callable(fn) else getattr(defaults, name)
            return chosen

        self.transform_fn = getattr(user, "transform_fn", None) if user is not None else None
        if self.transform_fn is not None:
            clash = [n for n in ("input_fn", "predict_fn", "output_fn")
                     if callable(getattr(user, n, None))]
            if clash:
                raise LoadError(f"{program} defines transform_fn and {', '.join(clash)}: "
                                "transform_fn cannot be combined with input_fn, predict_fn "
                                "or output_fn.")
        self.input_fn = pick("input_fn")
        self.predict_fn = pick("predict_fn")
        self.output_fn = pick("output_fn")
        self.execution_parameters_fn = (getattr(user, "execution_parameters_fn", None)
                                        if user is not None else None)
        pre = getattr(user, "pre_model_fn", None) if user is not None else None
        if callable(pre):
            _call(pre, (model_dir,), self.context)
        self.model = _call(pick("model_fn"), (model_dir,), self.context)
        warmup = getattr(user, "model_warmup_fn", None) if user is not None else None
        if callable(warmup):
            _call(warmup, (model_dir, self.model), self.context)

    def invoke(self, body: bytes, content_type: str | None,
               accept: str | None) -> tuple[bytes, str]:
        content_type = content_type or JSON
        if not accept or accept == "*/*":
            accept = self.default_accept
        kind = content_type.split(";")[0].strip().lower()
        data: bytes | str = body
        if kind in (JSON, CSV):
            data = body.decode("utf-8")
        ctx = self.context
        if self.transform_fn is not None:
            result = _call(self.transform_fn, (self.model, data, content_type, accept), ctx)
        else:
            decoded = _call(self.input_fn, (data, content_type), ctx)
            prediction = _call(self.predict_fn, (decoded, self.model), ctx)
            result = _call(self.output_fn, (prediction, accept), ctx)
        out_type = parse_accept(accept)[0] if accept else self.default_accept
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
            result, out_type = result
        if isinstance(result, str):
            result = result.encode("utf-8")
        elif isinstance(result, (bytearray, memoryview)):
            result = bytes(result)
        elif not isinstance(result, bytes):
            # An object the toolkits' Flask/MMS layers would have rendered: make it bytes.
            getter = getattr(result, "get_data", None)  # a Flask/werkzeug Response
            if callable(getter):
                out_type = getattr(result, "mimetype", None) or out_type
                result = getter()
            else:
                result = encode(result, out_type if out_type in (JSON, CSV, NPY) else JSON)
        return result, out_type

    def execution_parameters(self) -> bytes:
        if self.execution_parameters_fn is not None:
            answer = self.execution_parameters_fn()
            return answer if isinstance(answer, bytes) else str(answer).encode()
        return json.dumps({"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD",
                           "MaxPayloadInMB": 6}).encode()


# -- a minimal HTTP/1.1 server with keep-alive ----------------------------------------------
def _response(status: int, body: bytes, content_type: str,
              extra: list[tuple[str, str]] | None = None, close: bool = False) -> bytes:
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
            f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    if extra:
        head += [f"{k}: {v}" for k, v in extra]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class Server:
    """The connections of one worker and what they serve."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections: set[HttpProtocol] = set()
        self.closing = False

    def answer(self, method: str, path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, bytes, str, list[tuple[str, str]]]:
        path = path.split("?", 1)[0]
        if path == "/invocations" and method == "POST":
            try:
                result, result_type = self.handler.invoke(
                    body, headers.get("content-type"), headers.get("accept"))
            except Exception as e:  # noqa: BLE001 - the model's answer: ModelError upstream
                status = getattr(e, "status_code", None)
                if not isinstance(status, int) or not 400 <= status < 600:
                    status = 500
                traceback.print_exc()
                sys.stdout.flush()
                message = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                return status, message.encode("utf-8", "replace"), "text/plain", []
            extra = []
            attributes = headers.get("x-amzn-sagemaker-custom-attributes")
            if attributes is not None:
                extra.append(("X-Amzn-SageMaker-Custom-Attributes", attributes))
            return 200, result, result_type, extra
        if path == "/ping" and method == "GET":
            return 200, b"", "text/plain", []
        if path == "/execution-parameters" and method == "GET":
            try:
                return 200, self.handler.execution_parameters(), JSON, []
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                return 500, str(e).encode(), "text/plain", []
        return 404, b"Not Found", "text/plain", []


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 requests on one connection, answered in order; keep-alive by default."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False  # a request partly received

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer = self.buffer + data if self.buffer else data
        while self.transport is not None:
            if not self._one():
                break

    def _one(self) -> bool:
        """Answer one complete request from the buffer; False when more bytes are needed."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self.busy = bool(buffer)
            if len(buffer) > MAX_HEAD:
                self._fail(400, b"Request header too large")
            return False
        lines = buffer[:end].decode("latin-1").split("\r\n")
        try:
            method, path, version = lines[0].split(" ", 2)
        except ValueError:
            self._fail(400, b"Bad request line")
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parsed = _dechunk(buffer, start)
            if parsed is None:
                self.busy = True
                return False
            body, rest = parsed
        else:
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                self._fail(400, b"Bad Content-Length")
                return False
            if length > MAX_BODY:
                self._fail(413, b"Request body too large")
                return False
            if len(buffer) - start < length:
                self.busy = True
                return False
            body, rest = buffer[start:start + length], start + length
        self.buffer = buffer[rest:]
        self.busy = bool(self.buffer)
        connection = headers.get("connection", "").lower()
        close = (connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
                 or self.server.closing)
        status, out, content_type, extra = self.server.answer(method, path, headers, body)
        transport = self.transport
        if transport is None:
            return False
        transport.write(_response(status, out, content_type, extra, close))
        if close:
            transport.close()
            return False
        return True

    def _fail(self, status: int, message: bytes) -> None:
        if self.transport is not None:
            self.transport.write(_response(status, message, "text/plain", close=True))
            self.transport.close()
        self.buffer = b""


def _dechunk(buffer: bytes, start: int) -> tuple[bytes, int] | None:
    """(body, end) of a complete chunked body from ``start``; None if incomplete."""
    parts: list[bytes] = []
    position = start
    while True:
        eol = buffer.find(b"\r\n", position)
        if eol < 0:
            return None
        size = int(buffer[position:eol].split(b";")[0].strip() or b"0", 16)
        position = eol + 2
        if size == 0:
            trailer = buffer.find(b"\r\n", position)
            while trailer >= 0 and trailer != position:  # skip trailer headers
                position = trailer + 2
                trailer = buffer.find(b"\r\n", position)
            if trailer < 0:
                return None
            return b"".join(parts), trailer + 2
        if len(buffer) < position + size + 2:
            return None
        parts.append(buffer[position:position + size])
        position += size + 2


async def serve(handler: Handler, sock: socket.socket, grace: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    server = Server(handler)
    listener = await loop.create_server(lambda: HttpProtocol(server), sock=sock, backlog=1024)
    stopping = loop.create_future()

    def stop() -> None:
        if not stopping.done():
            stopping.set_result(None)

    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    await stopping
    # Stop accepting; idle connections close now, the others after their answer.
    server.closing = True
    listener.close()
    deadline = loop.time() + grace
    while True:
        for connection in list(server.connections):
            if not connection.busy and connection.transport is not None:
                connection.transport.close()
        if not server.connections or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)


def worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every model worker takes (this one and ``opensage.serving.worker``)."""
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--fd", type=int)
    parser.add_argument("--port-file")
    parser.add_argument("--failure-file", required=True)


def failed_to_load(failure_file: str, reason: str) -> NoReturn:
    """Say why the model did not load (stderr, the failure file) and exit 1."""
    print(f"Model failed to load: {reason}", file=sys.stderr, flush=True)
    Path(failure_file).write_text(reason[:1024])
    sys.exit(1)


def listening_socket(fd: int | None, port_file: str | None) -> socket.socket:
    """The socket to serve on: the descriptor the parent bound and passed down (family, type
    and protocol read from it, so asyncio sets TCP_NODELAY on accepted connections), or,
    forked by the fork server, a free 127.0.0.1 port written to ``port_file`` atomically."""
    if fd is not None:
        return socket.socket(fileno=fd)
    assert port_file is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    scratch = Path(port_file + ".tmp")
    scratch.write_text(str(sock.getsockname()[1]))
    scratch.replace(port_file)
    return sock


def main(argv: list[str] | None = None) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    # Run by path: this directory is sys.path[0]; opensage's sibling modules must not
    # shadow the user's (e.g. a user module named ``worker``).
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    parser = argparse.ArgumentParser(prog="framework_worker.py")
    parser.add_argument("--framework", "--module", dest="framework", default="generic")
    parser.add_argument("--code-dir")
    worker_arguments(parser)
    args = parser.parse_args(argv)
    try:
        handler = Handler(args.framework, args.model_dir, args.code_dir, dict(os.environ))
    except Exception as e:  # noqa: BLE001 - the reason the endpoint fails
        if not isinstance(e, LoadError):
            traceback.print_exc()
        reason = " ".join(str(e).split()) or type(e).__name__
        if not isinstance(e, LoadError):
            reason = f"{type(e).__name__}: {reason}"
        failed_to_load(args.failure_file, reason)
    sock = listening_socket(args.fd, args.port_file)
    sock.setblocking(False)
    print(f"Model loaded from {args.model_dir}; serving the inference contract "
          f"({args.framework} handlers).", flush=True)
    asyncio.run(serve(handler, sock))


if __name__ == "__main__":
    main()
