"""Running the app under uvicorn: in the foreground (CLI) or in a thread (tests, benchmarks)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from opensage.api.app import create_app
from opensage.settings import Settings

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback
                               for info in infos)


def anonymous_exposure(settings: Settings) -> str | None:
    """Why this server must not start (``--auth none`` on an address others can reach), or
    None. ``--allow-anonymous-remote`` overrides, loudly."""
    if settings.auth != "none" or is_loopback(settings.host):
        return None
    message = (f"--auth none on {settings.host}, which is not a loopback address: anyone who "
               "can reach this port could run code as this user (training scripts, models) "
               "and read every object. Use --auth sigv4 (clients sign with real keys), bind "
               "127.0.0.1, or pass --allow-anonymous-remote to accept the risk.")
    if not settings.allow_anonymous_remote:
        return message
    log.warning("UNAUTHENTICATED SERVER ON A NON-LOOPBACK ADDRESS (--allow-anonymous-remote): "
                "%s", message)
    return None


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind first, so that ``--port 0`` knows its port before serving.

    The protocol must be named: asyncio only turns Nagle off (TCP_NODELAY) on accepted
    sockets whose proto is IPPROTO_TCP, and with it on every keep-alive response waits 40 ms.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def make_server(settings: Settings, log_level: str = "warning") -> uvicorn.Server:
    config = uvicorn.Config(create_app(settings), log_level=log_level, access_log=False,
                            lifespan="on", timeout_keep_alive=30, limit_concurrency=None)
    return uvicorn.Server(config)


@dataclass
class RunningServer:
    server: uvicorn.Server
    thread: threading.Thread
    settings: Settings

    @property
    def url(self) -> str:
        return self.settings.endpoint_url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(settings: Settings) -> RunningServer:
    refusal = anonymous_exposure(settings)
    if refusal is not None:
        raise RuntimeError(refusal)
    sock = bind_socket(settings.host, settings.port)
    settings = settings.with_port(sock.getsockname()[1])
    server = make_server(settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="opensage-server")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("opensage server did not start")
        time.sleep(0.01)
    return RunningServer(server, thread, settings)
