"""The audit recorder: every AWS call passes here (it wraps the whole app, the auth gate and
the InvokeEndpoint fast path included) and its CloudTrail event is appended before the
answer's first byte is sent, so an answered call is on record even if the server is killed
right after.

The request body is teed as the app reads it (not S3's or InvokeEndpoint's: object bodies
are never kept); the answer is held back until the event is committed: whole for the RPC and
query services (their answers are one small message), only its status and headers for S3 and
the runtime unless it is an error (error bodies are small). The call then awaits the audit
writer thread's next group commit (``AuditService.record_async``: one transaction for all
calls queued meanwhile, no thread-pool hop); a data event no trail selects costs no INSERT.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, unquote

from starlette.types import Message, Receive, Scope, Send

from opensage.api.auth import PRINCIPAL, is_console
from opensage.api.router import identify_service
from opensage.services.audit import AuditService, Call, is_s3_data_event, read_only, s3_operation

log = logging.getLogger(__name__)
MAX_KEPT_BODY = 64 * 1024  # request bodies longer are not kept (nor parsed) for parameters
App = Callable[[Scope, Receive, Send], Awaitable[None]]
_UNREAD = ("s3", "sagemaker-runtime")
_CREDENTIAL = "Credential="


def _claimed_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "")
    at = auth.find(_CREDENTIAL)
    if at >= 0:
        return auth[at + len(_CREDENTIAL):].split("/", 1)[0]
    return (query.get("X-Amz-Credential", "").split("/", 1)[0]
            or query.get("AWSAccessKeyId", ""))


def _locate(scope: Scope, headers: Mapping[str, str]) -> tuple[str, str]:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    path = unquote(raw.split(b"?", 1)[0].decode("latin-1"), errors="replace")
    host = headers.get("host", "")
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.endswith(".localhost") and host != ".localhost":
        return host[: -len(".localhost")], path[1:]
    bucket, _, key = path[1:].partition("/")
    return bucket, key


async def audited(audit: AuditService, app: App, scope: Scope, receive: Receive, send: Send,
                  headers: Mapping[str, str]) -> None:
    """Run ``app`` on one request, recording its event before the answer goes out."""
    method, path = scope["method"], scope["path"]
    query_string = scope["query_string"].decode("latin-1")
    query = dict(parse_qsl(query_string, keep_blank_values=True))
    service = identify_service(method, path, headers, query)
    operation, bucket, key = "", "", ""
    if service == "s3":
        bucket, key = _locate(scope, headers)
        operation = s3_operation(method, bucket, key, query, "x-amz-copy-source" in headers)
        if is_s3_data_event(operation, key) and not audit.selectors.s3:
            await app(scope, receive, send)  # a data event no trail selects: not recorded
            return
    elif service == "sagemaker-runtime":
        operation = {"invocations": "InvokeEndpoint", "async-invocations":
                     "InvokeEndpointAsync", "invocations-response-stream":
                     "InvokeEndpointWithResponseStream"}.get(path.rsplit("/", 1)[-1], "")
        if not audit.selectors.endpoints[1 if not read_only(operation) else 0]:
            await app(scope, receive, send)
            return
    elif service == "sagemaker-metrics":
        operation = path.strip("/")
    elif service == "cloudwatch":
        operation = path.rsplit("/", 1)[-1]
    else:
        target = headers.get("x-amz-target", "")
        operation = target.rsplit(".", 1)[-1] if target else ""
    client = scope.get("client")
    call = Call(service=service, operation=operation, method=method, path=path,
                query=query_string, source_ip=client[0] if client else "",
                user_agent=headers.get("user-agent", ""), principal=None,
                claimed_key=_claimed_key(headers, query),
                body=None if service in _UNREAD else b"", bucket=bucket, key=key)
    parts: list[bytes] = []
    size = 0

    async def teed() -> Message:
        nonlocal size
        message = await receive()
        if call.body is not None and message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_KEPT_BODY:
                parts.append(chunk)
        return message

    held: list[Message] = []
    recorded = False
    whole = service not in _UNREAD

    async def record() -> None:
        nonlocal recorded
        recorded = True
        if call.body is not None:
            call.body = b"".join(parts) if size <= MAX_KEPT_BODY else b""
        call.principal = scope.get(PRINCIPAL)
        call.time = time.time()
        try:
            await audit.record_async(call)
        except Exception:  # the call was served: say the record failed, do not hide it
            log.exception("audit: recording %s %s failed", service, call.operation)

    async def holding(message: Message) -> None:
        if recorded:
            await send(message)
            return
        if message["type"] == "http.response.start":
            call.status = message["status"]
            call.response_headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                                     for k, v in message.get("headers", [])}
            if not whole and call.status < 400:
                await record()
                await send(message)
                return
            held.append(message)
            return
        if message["type"] == "http.response.body":
            held.append(message)
            if message.get("more_body", False) and sum(
                    len(m.get("body", b"")) for m in held[1:]) < MAX_KEPT_BODY:
                return
            call.response_body = b"".join(m.get("body", b"") for m in held[1:])
            await record()
            for m in held:
                await send(m)
            held.clear()
            return
        await send(message)

    await app(scope, teed, holding)
    if not recorded and held:  # an answer that never finished: record what was seen
        await record()
        for m in held:
            await send(m)


def wants_audit(scope: Scope) -> bool:
    """An AWS call (not ``/_opensage/*``, nor the console's pages: its sign-ins are recorded
    as ``ConsoleLogin`` events by the console)."""
    return (scope["type"] == "http" and not scope["path"].startswith("/_opensage/")
            and not is_console(scope))

