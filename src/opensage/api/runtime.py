"""sagemaker-runtime (REST-JSON): ``InvokeEndpoint`` on ``POST /endpoints/<name>/invocations``.

The body and ``Content-Type``/``Accept``/custom attributes/inference id go to a worker the
endpoint's router picks (by variant weight, or ``X-Amzn-SageMaker-Target-Variant``) over a
pooled keep-alive connection; its answer comes back with ``x-Amzn-Invoked-Production-Variant``.
A non-2xx answer from the model is ``ModelError`` (424) with ``OriginalStatusCode`` and
``OriginalMessage``. The routing table is in memory: no store access on this path, and the
CloudWatch metrics are handed to a batch writer. A request whose instance vanished (crashed,
or drained by an update) goes to another instance of the variant that is up, or waits up to
``RETRY_SECONDS`` for a replacement, then fails as ``ModelError`` (502): it never hangs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from opensage.api.error_encoding import rest_json_error
from opensage.errors import (
    AwsError,
    InternalFailure,
    ModelError,
    NotImplementedOperation,
    ValidationError,
)
from opensage.services.endpoints import EndpointService
from opensage.serving.client import WorkerPool, WorkerTimeout, WorkerUnavailable
from opensage.serving.process import Worker
from opensage.settings import Settings

log = logging.getLogger(__name__)
MAX_PAYLOAD = 6 * 1024 * 1024  # 6 MiB, InvokeEndpoint's BodyBlob limit
CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
FORWARDED = ("content-type", "accept", CUSTOM_ATTRIBUTES, "x-amzn-sagemaker-inference-id",
             "x-amzn-sagemaker-target-model", "x-amzn-sagemaker-enable-explanations")
PREFIX = "/endpoints/"
HOP_BY_HOP = frozenset(("host", "content-length", "connection", "keep-alive", "expect",
                        "transfer-encoding", "te", "upgrade", "proxy-authorization"))
# Set on a request one server forwards to another (the value: the forwarder's URL). A
# server never forwards such a request again: two servers whose --advertise-url lead to
# each other (or to themselves) answer an error instead of passing a request round forever.
FORWARDED_BY = "x-opensage-forwarded-by"
RETRY_SECONDS = 10.0  # how long a request may wait for an instance to replace a dead one


class RuntimeApi:
    def __init__(self, endpoints: EndpointService, settings: Settings) -> None:
        self.endpoints = endpoints
        self.settings = settings
        self._pools: dict[str, tuple[Worker, WorkerPool]] = {}
        self._servers: dict[str, WorkerPool] = {}  # other servers' URL -> connections

    async def __call__(self, request: Request) -> Response:
        """The Starlette route (requests the app's fast path did not take)."""
        status, headers, body = await self.invoke(request.url.path, request.headers,
                                                  request.stream())
        return Response(body, status, headers)

    async def asgi(self, scope: Scope, headers: Mapping[str, str], receive: Receive,
                   send: Send) -> None:
        """The same, as a bare ASGI call (``headers``: the request's, names lower-cased):
        no framework objects on the hot path."""
        status, out, body = await self.invoke(scope["path"], headers, _chunks(receive))
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def invoke(self, path: str, headers: Mapping[str, str],
                     chunks: AsyncIterator[bytes]) -> tuple[int, dict[str, str], bytes]:
        """``(status, headers, body)`` of the answer to one runtime request."""
        request_id = str(uuid.uuid4())
        try:
            return await self._handle(path, headers, chunks, request_id)
        except AwsError as err:
            return rest_json_error(err, request_id)
        except Exception as exc:  # a bug, not the caller's fault: log it, answer 500
            log.exception("InvokeEndpoint failed")
            return rest_json_error(InternalFailure(f"{type(exc).__name__}: {exc}"), request_id)

    async def _handle(self, path: str, headers: Mapping[str, str],
                      chunks: AsyncIterator[bytes],
                      request_id: str) -> tuple[int, dict[str, str], bytes]:
        started = time.perf_counter()
        name, _, operation = path[len(PREFIX):].partition("/")
        if operation != "invocations":
            # An endpoint that does not exist is the caller's error (4xx) before ours (501).
            self.endpoints.route(name, headers.get("x-amzn-sagemaker-target-variant"))
            raise NotImplementedOperation(f"opensage does not implement {operation} yet")
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_PAYLOAD:
            raise ValidationError(_too_large(int(declared)))
        body = await _read_body(chunks)
        endpoints = self.endpoints
        elsewhere = endpoints.serving_elsewhere(name)
        if elsewhere is not None:  # another server sharing the database serves it
            if FORWARDED_BY in headers:
                raise InternalFailure(
                    f"Endpoint {name} is served at {elsewhere}, but this server "
                    f"({self.settings.own_url}) was reached by forwarding from "
                    f"{headers[FORWARDED_BY]}: the servers' --advertise-url settings do not "
                    "lead to the servers they name; a request is forwarded at most once.")
            return await self._forward(elsewhere, name, path, headers, body)
        variant, routed = endpoints.route(name, headers.get("x-amzn-sagemaker-target-variant"))
        worker: Worker | None = routed
        forwarded = {k: v for k in FORWARDED if (v := headers.get(k)) is not None}
        sent = time.perf_counter()
        answer, reason = None, ""
        while worker is not None:
            try:
                answer = await self._pool(worker).request("POST", "/invocations", body,
                                                          forwarded)
                break
            except WorkerUnavailable as e:
                reason = str(e)
                if isinstance(e, WorkerTimeout):
                    break
                worker = await self._another(name, variant, worker, sent + RETRY_SECONDS)
        answered = time.perf_counter()
        if answer is None or answer.status >= 300:
            status = answer.status if answer is not None else 502
            message = (answer.body.decode("utf-8", "replace") if answer is not None
                       else reason)
            endpoints.record(name, variant, 424, (answered - sent) * 1e6,
                             (sent - started) * 1e6)
            raise self._model_error(name, variant, status, message)
        out = {"content-type": answer.headers.get("content-type", "application/octet-stream"),
               "x-amzn-invoked-production-variant": variant, "x-amzn-requestid": request_id}
        attributes = answer.headers.get(CUSTOM_ATTRIBUTES)
        if attributes is not None:
            out["x-amzn-sagemaker-custom-attributes"] = attributes
        finished = time.perf_counter()
        endpoints.record(name, variant, 200, (answered - sent) * 1e6,
                         ((sent - started) + (finished - answered)) * 1e6)
        endpoints.capture.record(  # data capture: sampled, buffered, written off this path
            name, variant, headers.get("content-type", "application/octet-stream"), body,
            out["content-type"], answer.body, headers.get("x-amzn-sagemaker-inference-id"))
        return 200, out, answer.body

    async def _forward(self, url: str, name: str, path: str, headers: Mapping[str, str],
                       body: bytes) -> tuple[int, dict[str, str], bytes]:
        """The answer of the server at ``url`` (it routes, records the metrics and captures)."""
        pool = self._servers.get(url)
        if pool is None:
            where = urlsplit(url)
            pool = self._servers[url] = WorkerPool(where.hostname or "127.0.0.1",
                                                   where.port or 80)
        # Every header as the client sent it, Host included: a SigV4 signature checks there
        # as it did here (the same canonical request).
        sent = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
        sent[FORWARDED_BY] = self.settings.own_url  # unsigned: the signature still holds
        try:
            answer = await pool.request("POST", path, body, sent, host=headers.get("host"))
        except WorkerUnavailable as e:
            self.endpoints.forget_owner(name)
            raise InternalFailure(
                f"The server serving endpoint {name} ({url}) did not answer ({e}); another "
                "server takes the endpoint over once that server's lease expires. Please "
                "retry.") from None
        out = {k: v for k, v in answer.headers.items()
               if k == "content-type" or k.startswith(("x-amzn-", "x-amz-"))}
        return answer.status, out, answer.body

    async def _another(self, name: str, variant: str, failed: Worker,
                       deadline: float) -> Worker | None:
        """An instance to retry on, once one is up; None after ``deadline``."""
        delay = 0.01
        while True:
            worker = self.endpoints.reroute(name, variant, failed)
            if worker is not None or time.perf_counter() >= deadline:
                return worker
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _pool(self, worker: Worker) -> WorkerPool:
        entry = self._pools.get(worker.key)
        if entry is not None:
            return entry[1]
        for key, (old, pool) in list(self._pools.items()):  # forget stopped workers
            if old.stopped:
                pool.close()
                del self._pools[key]
        pool = WorkerPool(worker.host, worker.port)
        self._pools[worker.key] = (worker, pool)
        return pool

    def _model_error(self, name: str, variant: str, status: int, message: str) -> ModelError:
        settings = self.settings
        region, account = settings.region, settings.account_id
        side = "client" if status < 500 else "server"
        group = f"/aws/sagemaker/Endpoints/{name}"
        err = ModelError(
            f'Received {side} error ({status}) from primary with message "{message}". See '
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#logEventViewer:group={group} in account {account} for more information.")
        err.fields.update(OriginalStatusCode=status, OriginalMessage=message,
                          LogStreamArn=self.endpoints.log_stream_arn(name, variant))
        return err


def _too_large(size: int) -> str:
    return (f"Request payload of {size} bytes is too large: InvokeEndpoint accepts at most "
            f"{MAX_PAYLOAD} bytes (6 MB).")


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _read_body(chunks: AsyncIterator[bytes]) -> bytes:
    """The whole body; ValidationError as soon as it passes ``MAX_PAYLOAD``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_PAYLOAD:
            raise ValidationError(_too_large(size))
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)

