"""The relay into a network namespace (``serving.relay``), with a real process in a namespace of
its own (loopback only) serving an echo on its 127.0.0.1: reached through the relay, several
messages on one connection (keep-alive), several connections at once, and refused when the
process is not a container's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from opensage.runner.toolkit import isolation
from opensage.serving.relay import NamespaceRelay, RelayUnavailable

pytestmark = pytest.mark.skipif(isolation.unavailable() is not None,
                                reason=str(isolation.unavailable()))

PORT = 8080  # free in a namespace that has nothing else
ECHO = f"""
import socket, sys, threading
from opensage.runner.toolkit.isolation import enter_namespace
enter_namespace()
server = socket.socket()
server.bind(("127.0.0.1", {PORT}))
server.listen(16)
print("ready", flush=True)

def echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data.upper())

while True:
    conn, _ = server.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
"""


@pytest.fixture
def isolated_echo() -> Iterator[int]:
    """The pid of a process serving an upper-casing echo on 127.0.0.1:8080 of its own
    network namespace."""
    proc = subprocess.Popen([sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def exchange(sock: socket.socket, message: bytes) -> bytes:
    sock.sendall(message)
    received = b""
    while len(received) < len(message):
        chunk = sock.recv(65536)
        assert chunk, "the relay closed the connection"
        received += chunk
    return received


def test_the_relay_reaches_a_port_only_the_namespace_has(isolated_echo: int) -> None:
    assert os.readlink(f"/proc/{isolated_echo}/ns/net") != os.readlink("/proc/self/ns/net")
    relay = NamespaceRelay(f"/proc/{isolated_echo}/ns/net", PORT)
    try:
        first = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
        second = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
        with first, second:
            assert exchange(first, b"ping") == b"PING"
            assert exchange(second, b"other") == b"OTHER"
            big = b"x" * 300_000
            assert exchange(first, big) == big.upper()  # the same connection, again
        # this thread is still in this machine's namespace: nothing listens on 8080 here
        with socket.socket() as direct:
            assert direct.connect_ex(("127.0.0.1", PORT)) != 0
    finally:
        relay.close()
    with socket.socket() as late:  # closed: nothing accepts any more
        assert late.connect_ex(("127.0.0.1", relay.port)) != 0


def test_close_cuts_the_connections_in_flight(isolated_echo: int) -> None:
    relay = NamespaceRelay(f"/proc/{isolated_echo}/ns/net", PORT)
    conn = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
    with conn:
        assert exchange(conn, b"a") == b"A"
        relay.close()
        assert conn.recv(10) == b""  # the relay ended it


def test_a_process_that_is_no_container_is_refused(isolated_echo: int) -> None:
    with pytest.raises(RelayUnavailable, match="is not the container's"):
        NamespaceRelay.for_container(isolated_echo, "0123456789abcdef" * 4, PORT)
    with pytest.raises(RelayUnavailable, match="not visible here"):
        NamespaceRelay.for_container(2 ** 22 + 1, "0123456789abcdef" * 4, PORT)
