"""One variant instance: ``python -m opensage.serving.worker --module M --model-dir D --fd N``
(or ``--port-file F`` instead of ``--fd``, when forked by the warm fork server).

Loads the model with ``<M>.serve.load(D)`` (a built-in algorithm's inference handler), then
serves the inference contract on the listening socket ``N`` the parent bound and passed in (or
on one it binds to a free 127.0.0.1 port and writes to ``F``, atomically, once loaded):
``GET /ping`` (200 once the model is loaded), ``POST /invocations`` (body, ``Content-Type``
and ``Accept`` handed to ``model.invoke``), ``GET /execution-parameters`` (batch transform).

A model that fails to load writes the reason to ``--failure-file`` and exits 1. SIGTERM stops
accepting, finishes the requests in flight and exits (uvicorn's graceful shutdown).
"""

from __future__ import annotations

import argparse
import importlib
import json
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from opensage.serving.framework_worker import failed_to_load, listening_socket, worker_arguments

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"


def make_app(model: Any) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A bare ASGI app (no framework on the hot path)."""

    async def respond(send: Send, status: int, body: bytes, content_type: bytes,
                      extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = [(b"content-type", content_type),
                   (b"content-length", str(len(body)).encode()), *(extra or [])]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/invocations" and method == "POST":
            chunks = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = b"".join(chunks)
            headers = dict(scope["headers"])
            content_type = headers.get(b"content-type", b"").decode("latin-1") or None
            accept = headers.get(b"accept", b"").decode("latin-1") or None
            try:
                result, result_type = model.invoke(body, content_type, accept)
            except Exception as e:  # noqa: BLE001 - the model's answer to a bad request
                status = getattr(e, "status", None)
                if not isinstance(status, int):
                    traceback.print_exc()
                    status = 500
                reason = getattr(e, "message", None)
                if not isinstance(reason, str) or not reason:  # e.g. bytes or a dict
                    reason = str(e) or type(e).__name__
                await respond(send, status, reason.encode(), b"text/plain")
                return
            extra = []
            if CUSTOM_ATTRIBUTES in headers:
                extra.append((CUSTOM_ATTRIBUTES, headers[CUSTOM_ATTRIBUTES]))
            await respond(send, 200, result, result_type.encode(), extra)
        elif path == "/ping" and method == "GET":
            await respond(send, 200, b"", b"text/plain")
        elif path == "/execution-parameters" and method == "GET":
            await respond(send, 200, json.dumps({"MaxConcurrentTransforms": 1,
                                                 "BatchStrategy": "MULTI_RECORD",
                                                 "MaxPayloadInMB": 6}).encode(),
                          b"application/json")
        else:
            await respond(send, 404, b"Not Found", b"text/plain")

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m opensage.serving.worker")
    parser.add_argument("--module", required=True)
    worker_arguments(parser)
    args = parser.parse_args(argv)
    try:
        serve = importlib.import_module(args.module + ".serve")
        model = serve.load(args.model_dir)
    except Exception as e:  # noqa: BLE001 - the reason the endpoint fails
        failed_to_load(args.failure_file, " ".join(str(e).split()) or type(e).__name__)

    import uvicorn

    # A socket from the descriptor, not uvicorn's fd= (which would call it AF_UNIX).
    sock = listening_socket(args.fd, args.port_file)
    print(f"Model loaded from {args.model_dir}; serving the inference contract.", flush=True)
    config = uvicorn.Config(make_app(model), lifespan="off", access_log=False,
                            log_level="warning", timeout_keep_alive=75,
                            server_header=False, date_header=False,  # nobody reads them
                            timeout_graceful_shutdown=30)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
