"""The console's browser login under ``--auth sigv4``: an access key pair checked against the
credential store SigV4 uses, then a session cookie.

The cookie is ``<access key id>.<expiry>.<MAC>``: HMAC-SHA256 under a key derived from the
server's secret key file (``SecretBox.derive``), so it cannot be forged, and any server sharing
the database (and so the key file) accepts it. It names the key, not the caller: each request
looks the key up again (``IamService.lookup``, as a signed request does), so a key deleted or
made inactive, or its user deleted, ends the session at the next request (on another server,
within the lookup cache's ``CACHE_SECONDS``). It is HttpOnly, ``SameSite=Strict`` and scoped to
``/_console``; it lives ``console_session_hours`` (12 h), a session key's expiry at most.
Logging out clears it from the browser; a copy taken before stays valid until it expires or
its key is deactivated (nothing is stored per session).

``SessionGate`` sits in front of the console's pages: a request without a valid cookie is
sent to the login page (HTML) or answered 401 (the JSON endpoints); the login page and the
static files it uses are open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from opensage.services.iam import Credential, IamService, Principal

COOKIE = "opensage-console"
PRINCIPAL = "opensage.principal"  # the scope key api.auth's gate sets: the verified caller
OPEN = ("/login", "/logout", "/static/")
_PURPOSE = "opensage console session v1"
_DUMMY_SECRET = "x" * 40  # compared against when the key is unknown: the same work either way


class LoginFailed(Exception):
    """A refused login; ``user`` names whom it was for when the key is known."""

    def __init__(self, message: str, principal: Principal | None = None) -> None:
        super().__init__(message)
        self.message, self.principal = message, principal


@dataclass(frozen=True)
class Session:
    cookie: str
    max_age: int
    principal: Principal


class Sessions:
    def __init__(self, iam: IamService, lifetime_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.iam, self.lifetime, self.clock = iam, lifetime_seconds, clock
        self._key = iam.box.derive(_PURPOSE)

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def login(self, access_key_id: str, secret: str, token: str | None) -> Session:
        """A session for a valid key pair (blocking: reads the key), or LoginFailed."""
        credential = self.iam.lookup(access_key_id.strip()) if access_key_id.strip() else None
        given = secret.encode()
        expected = (credential.secret if credential is not None else _DUMMY_SECRET).encode()
        matches = hmac.compare_digest(expected, given)
        if credential is None or not matches or not credential.active:
            raise LoginFailed("Your authentication information is incorrect. Please try "
                              "again.", credential.principal if credential else None)
        if not self.iam.token_matches(credential, token or None):
            raise LoginFailed("The session token is missing or does not belong to this "
                              "access key.", credential.principal)
        now = self.clock()
        expires = now + self.lifetime
        if credential.expiration is not None:
            if credential.expiration <= now:
                raise LoginFailed("These temporary credentials have expired.",
                                  credential.principal)
            expires = min(expires, credential.expiration)
        payload = f"{credential.access_key_id}.{int(expires)}"
        return Session(f"{payload}.{self._mac(payload)}", max(1, int(expires - now)),
                       credential.principal)

    def key_of(self, cookie: str) -> str | None:
        """The access key a cookie names, if this server's key made it and it is unexpired
        (no I/O)."""
        key_id, dot, rest = cookie.partition(".")
        expires, dot2, mac = rest.partition(".")
        if not (dot and dot2 and key_id and expires.isdigit()):
            return None
        if not hmac.compare_digest(self._mac(f"{key_id}.{expires}"), mac):
            return None
        return key_id if int(expires) > self.clock() else None

    def principal(self, cookie: str) -> Principal | None:
        """The caller a cookie stands for, checked against the key now (blocking on a
        lookup-cache miss): None once the key is gone, inactive or expired."""
        key_id = self.key_of(cookie)
        if key_id is None:
            return None
        credential = self.iam.lookup(key_id)
        return credential.principal if credential and self.usable(credential) else None

    def usable(self, credential: Credential | None) -> bool:
        if credential is None or not credential.active:
            return False
        return credential.expiration is None or credential.expiration > self.clock()


def cookie_of(scope: Scope) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, found = part.strip().partition("=")
                if name == COOKIE:
                    return str(found)
    return None


def set_cookie(response: Response, session: Session, prefix: str) -> None:
    response.set_cookie(COOKIE, session.cookie, max_age=session.max_age, path=prefix,
                        httponly=True, samesite="strict")


def clear_cookie(response: Response, prefix: str) -> None:
    response.delete_cookie(COOKIE, path=prefix, httponly=True, samesite="strict")


class SessionGate:
    """Authentication is on: the console's pages need a session (``Sessions``)."""

    def __init__(self, app: ASGIApp, sessions: Callable[[], Sessions], prefix: str) -> None:
        self.app, self.sessions, self.prefix = app, sessions, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(self.prefix)
        if path.startswith(OPEN):
            await self.app(scope, receive, send)
            return
        cookie = cookie_of(scope)
        principal = None
        if cookie:
            sessions = self.sessions()
            key_id = sessions.key_of(cookie)
            cached = sessions.iam.cached(key_id) if key_id else None
            if cached is not None:  # no I/O on the event loop
                principal = cached.principal if sessions.usable(cached) else None
            elif key_id is not None:
                principal = await run_in_threadpool(sessions.principal, cookie)
        if principal is None:
            await self._refuse(scope, path, cookie is not None)(scope, receive, send)
            return
        scope[PRINCIPAL] = principal
        await self.app(scope, receive, send)

    def _refuse(self, scope: Scope, path: str, had_cookie: bool) -> Response:
        response: Response
        if path.startswith("/api/") or scope["method"] not in ("GET", "HEAD"):
            response = JSONResponse({"error": "NotAuthenticated", "message": (
                "Sign in to the console: the session is missing, has expired or its access "
                "key is no longer active.")}, 401)
        else:
            query = scope.get("query_string", b"").decode("latin-1")
            target = self.prefix + path + (f"?{query}" if query else "")
            response = RedirectResponse(f"{self.prefix}/login?next={quote(target, safe='')}",
                                        303)
        if had_cookie:
            clear_cookie(response, self.prefix)
        return response


def safe_next(target: str, prefix: str) -> str:
    """Where to go after a login: a console page, never another site."""
    if target.startswith(prefix + "/") and not target.startswith(prefix + "//") and (
            "\\" not in target) and not target.startswith(prefix + "/login"):
        return target
    return prefix + "/"
