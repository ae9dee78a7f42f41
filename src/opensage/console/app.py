"""The console's Starlette application: routes, templates, the loopback guard.

Pages are plain ``request -> response`` functions that Starlette runs in its thread pool (the
services block). Every read goes through ``views`` to the services; every action calls the
service operation the API's handler calls. Under ``--auth sigv4`` the pages need a session
(``session.SessionGate``, after ``/login``) and each read or action is first authorised
(``access.Caller``); under ``--auth none`` they answer loopback clients only.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from opensage.console import actions, views
from opensage.console.access import Caller, Denied
from opensage.console.kinds import BY_SLUG, PAGES, settled
from opensage.console.session import (
    PRINCIPAL,
    LoginFailed,
    SessionGate,
    Sessions,
    clear_cookie,
    safe_next,
    set_cookie,
)
from opensage.errors import AwsError
from opensage.services.iam import Principal
from opensage.services.wiring import Services
from opensage.settings import Settings

log = logging.getLogger(__name__)
PREFIX = "/_console"
MAX_LOGIN_FORM = 16 * 1024
HERE = Path(__file__).parent
ServicesOf = Callable[[], Services]
# The runtime's InvokeEndpoint (api.runtime.RuntimeApi.invoke): (path, headers, body chunks)
# -> (status, headers, body). Handed in by the API layer, which the console does not import.
Invoke = Callable[[str, Mapping[str, str], AsyncIterator[bytes]],
                  Awaitable[tuple[int, dict[str, str], bytes]]]


def create_console(services: ServicesOf, settings: Settings | None = None,
                   invoke: Invoke | None = None) -> Starlette:
    """The console app; ``services`` answers the running server's services (built in the
    main app's lifespan, after this app is made)."""
    signed = settings is not None and settings.auth == "sigv4"
    env = _environment(signed)

    def render(request: Request, template: str, context: dict[str, Any],
               code: int = 200) -> Response:
        html = env.get_template(template).render(request=request, pages=PAGES,
                                                 caller=request.scope.get(PRINCIPAL),
                                                 signed=signed, **context)
        return HTMLResponse(html, code)

    def page(fn: Callable[[Request, Services], tuple[str, dict[str, Any]]]
             ) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                template, context = fn(request, services())
            except views.Redirect as moved:
                return RedirectResponse(moved.url, 303)
            except Denied as err:
                return render(request, "error.html", {"error": err, "title": "Access denied"},
                              403)
            except AwsError as err:
                return render(request, "error.html", {"error": err},
                              404 if "not" in err.message.lower() else 400)
            return render(request, template, context)
        return endpoint

    def api(fn: Callable[[Request, Services], Any]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(fn(request, services()))
            except AwsError as err:
                return JSONResponse({"error": err.code, "message": err.message},
                                    403 if isinstance(err, Denied) else 400)
        return endpoint

    sessions: list[Sessions] = []

    def sessions_of() -> Sessions:
        if not sessions:
            hours = settings.console_session_hours if settings is not None else 12.0
            sessions.append(Sessions(services().iam, hours * 3600))
        return sessions[0]

    async def login(request: Request) -> Response:
        if not signed:  # nothing to sign in to
            return RedirectResponse(PREFIX + "/", 303)
        target = request.query_params.get("next", "")
        if request.method == "GET":
            return render(request, "login.html", {"next": target, "key_id": ""})
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_FORM:
                return JSONResponse({"error": "RequestEntityTooLarge",
                                     "message": "The login form is too large."}, 413)
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        key_id = form.get("access_key_id", "").strip()
        target = form.get("next", "")
        client = request.client.host if request.client else ""
        agent = request.headers.get("user-agent", "")
        audit = services().audit

        def record(principal: Principal | None, failure: str = "") -> None:
            try:
                audit.record_console_login(principal, key_id, client, agent, failure)
            except Exception:  # the login was answered: say the record failed, do not hide it
                log.exception("audit: recording a console login failed")

        try:
            made = await run_in_threadpool(sessions_of().login, key_id,
                                           form.get("secret_access_key", ""),
                                           form.get("session_token", "").strip() or None)
        except LoginFailed as failed:
            await run_in_threadpool(record, failed.principal, "Failed authentication")
            return render(request, "login.html", {"next": target, "key_id": key_id,
                                                  "failure": failed.message}, 401)
        await run_in_threadpool(record, made.principal)
        response = RedirectResponse(safe_next(target, PREFIX), 303)
        set_cookie(response, made, PREFIX)
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse(PREFIX + ("/login" if signed else "/"), 303)
        clear_cookie(response, PREFIX)
        return response

    def download(request: Request) -> Response:
        """An object's bytes, for a session's caller allowed ``s3:GetObject`` on it."""
        try:
            info, handle = views.open_object(request, services())
        except Denied as err:
            return render(request, "error.html", {"error": err, "title": "Access denied"},
                          403)
        except AwsError as err:
            return render(request, "error.html", {"error": err}, 404)
        name = info.key.rsplit("/", 1)[-1].replace('"', "")
        return StreamingResponse(
            iterate_in_threadpool(_chunks(handle)),
            media_type=info.meta.get("ContentType") or "application/octet-stream",
            headers={"content-length": str(info.size),
                     "content-disposition": f'attachment; filename="{name}"'})

    async def invocations(request: Request) -> Response:
        """The endpoint page's "Try it": InvokeEndpoint for the session's caller (a signed
        client calls the runtime itself)."""
        if request.headers.get(actions.HEADER) != "1":
            return JSONResponse({"error": "Forbidden", "message": f"console actions need "
                                 f"the {actions.HEADER} header"}, 403)
        name = request.path_params["name"]
        caller = Caller.of(request, services())
        try:
            await run_in_threadpool(caller.require, "sagemaker:InvokeEndpoint",
                                    caller.sagemaker_arn("endpoint", name))
        except Denied as err:
            return JSONResponse({"error": err.code, "message": err.message}, 403)
        if invoke is None:
            return JSONResponse({"error": "NotImplemented", "message": "no runtime"}, 501)
        headers = {k: v for k, v in request.headers.items()
                   if k in ("content-type", "accept", "content-length")
                   or k.startswith("x-amzn-sagemaker-")}
        status, out, body = await invoke(f"/endpoints/{quote(name, safe='')}/invocations",
                                         headers, request.stream())
        return Response(body, status, out)

    routes = [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", page(views.home)),
        Route("/compare", page(views.compare)),
        Route("/objects", page(views.buckets)),
        Route("/objects/{bucket}", page(views.bucket)),
        Route("/objects/{bucket}/preview", page(views.preview)),
        Route("/objects/{bucket}/download", download),
        Route("/api/logs/{slug}/{name}", api(actions.logs)),
        Route("/api/training-jobs/{name}/clone",
              actions.with_body(actions.guarded(api(actions.clone))), methods=["POST"]),
        Route("/api/{slug}/{name}/stop", actions.guarded(api(actions.stop)), methods=["POST"]),
        Route("/api/endpoints/{name}/invocations", invocations, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        Route("/{slug}", page(views.resource_list)),
        Route("/{slug}/{name}", page(views.resource_detail)),
    ]
    app = Starlette(routes=routes)
    app.state.sessions = sessions_of
    return app


class LoopbackOnly:
    """Authentication is off: the console answers clients on this machine only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client and not _loopback(client[0]):
            response = HTMLResponse(
                "<!doctype html><title>Forbidden</title><p>The opensage console answers "
                "clients on this machine only while authentication is off.</p>", 403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ConsoleMount(Mount):
    """The console's route: never an AWS request. A SigV4-signed request (header or
    presigned query) under the prefix is left to the AWS router, which answers it as AWS
    would (S3: no bucket can be named ``_console``)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and signed_request(scope):
            return Match.NONE, {}
        return super().matches(scope)


def signed_request(scope: Scope) -> bool:
    """Whether a request carries an AWS signature (an AWS request, not the console's)."""
    for key, value in scope.get("headers") or ():
        if key == b"authorization" and value.startswith(b"AWS"):
            return True
    query = scope.get("query_string") or b""
    return b"X-Amz-Signature=" in query or b"Signature=" in query


def mount(services: ServicesOf, settings: Settings | None = None,
          invoke: Invoke | None = None) -> Mount:
    """The console as a route of the main app: behind the session gate when authentication
    is on, else behind the loopback guard."""
    console = create_console(services, settings, invoke)
    if settings is not None and settings.auth == "sigv4":
        return ConsoleMount(PREFIX, app=SessionGate(console, console.state.sessions, PREFIX))
    return ConsoleMount(PREFIX, app=LoopbackOnly(console))


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(1024 * 1024):
            yield chunk


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# -- templates ----------------------------------------------------------------------------
def _environment(signed: bool) -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True, auto_reload=False)
    env.globals.update(prefix=PREFIX, url=_url, s3=views.s3_location, settled=settled,
                       by_slug=BY_SLUG, tojson=_json,
                       download=_console_download if signed else _s3_download)
    env.filters.update(when=_when, iso=_iso, duration=_duration, number=_number,
                       quote=lambda s: quote(str(s), safe=""), status_class=_status_class,
                       arn_name=lambda arn: str(arn).rsplit("/", 1)[-1])
    return env


def _s3_download(bucket: str, key: str) -> str:
    """An object's link to the S3 facade: an unsigned path-style GET (``--auth none``)."""
    return f"/{quote(bucket, safe='')}/{quote(key)}"


def _console_download(bucket: str, key: str) -> str:
    """An object's link through the console, for a session's caller (``s3:GetObject``)."""
    return f"{PREFIX}/objects/{quote(bucket, safe='')}/download?key={quote(key, safe='')}"


def _url(path: str, **query: Any) -> str:
    pairs = [(k, v) for k, v in query.items() if v not in (None, "", [])]
    flat: list[tuple[str, Any]] = []
    for k, v in pairs:
        flat += [(k, x) for x in v] if isinstance(v, list | tuple) else [(k, v)]
    return PREFIX + path + ("?" + urlencode(flat) if flat else "")


def _json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<`` escaped, so no text
    ends the script element."""
    return json.dumps(value, default=_plain, separators=(",", ":")).replace("<", "\\u003c")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    return str(value)


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _when(value: Any) -> str:
    t = _epoch(value)
    if t is None:
        return "" if value is None else str(value)
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(value: Any) -> str:
    t = _epoch(value)
    return "" if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or seconds < 0:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _number(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _status_class(status: Any) -> str:
    if isinstance(status, dict):
        status = status.get("PrimaryStatus")
    text = str(status or "")
    if text in ("Failed", "UpdateRollbackFailed", "RollingBack"):
        return "bad"
    if text in ("Completed", "InService"):
        return "good"
    if text in ("Stopped", "Stopping", "OutOfService", "Deleting"):
        return "muted"
    return "busy" if text else ""
