"""The way in to an isolated container: the server reaches the model server of a container
that has no network (``NetworkMode: none``, only its own loopback) through a relay.

A :class:`NamespaceRelay` listens on a free 127.0.0.1 port of the server's namespace; its
accepting thread moves into the container's network namespace (``setns`` on
``/proc/<pid>/ns/net``, a per-thread setting) and opens each upstream connection there, to
the container's ``127.0.0.1:<port>``. A socket belongs to the namespace it was created in, so
the listening socket stays reachable from the server while the connections it relays end up
inside the container; nothing goes the other way: the container still has no route out.

:meth:`NamespaceRelay.for_container` needs the container's main process on this machine (the
engine local, its pid in this pid namespace, checked against the process's cgroup, which
names the container) and the right to enter its namespace (root, or CAP_SYS_ADMIN);
:class:`RelayUnavailable` says which is missing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
HOST = "127.0.0.1"
CHUNK = 1 << 16
log = logging.getLogger(__name__)


class RelayUnavailable(Exception):
    """The container's namespace cannot be entered; the message says why."""


def _enter(namespace_fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(namespace_fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns(CLONE_NEWNET) failed: {os.strerror(errno)}")


class NamespaceRelay:
    """Relays connections to ``127.0.0.1:<target_port>`` inside the network namespace
    ``namespace`` (a ``/proc/<pid>/ns/net`` path); :meth:`for_container` finds a container's."""

    def __init__(self, namespace: str, target_port: int, name: str = "relay") -> None:
        self.target_port = target_port
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        try:
            namespace_fd = os.open(namespace, os.O_RDONLY)
        except OSError as e:
            raise RelayUnavailable(f"{namespace} cannot be opened ({e.strerror})") from None
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((HOST, 0))
        self._listener.listen(1024)
        self.port: int = self._listener.getsockname()[1]
        entered = threading.Event()
        failure: list[str] = []
        self._thread = threading.Thread(target=self._accept,
                                        args=(namespace_fd, entered, failure),
                                        daemon=True, name=name)
        self._thread.start()
        entered.wait()
        if failure:
            self.close()
            raise RelayUnavailable(f"entering the container's network namespace failed "
                                   f"({failure[0]}): opensage needs root or CAP_SYS_ADMIN")

    @classmethod
    def for_container(cls, pid: int, container_id: str, target_port: int) -> NamespaceRelay:
        """The relay into the namespace of ``container_id``, whose main process the engine
        numbers ``pid``: that process must be this machine's and the container's (its
        cgroup names the container), else :class:`RelayUnavailable`."""
        try:
            with open(f"/proc/{pid}/cgroup") as cgroup:
                owned = bool(pid) and container_id in cgroup.read()
        except OSError as e:
            raise RelayUnavailable(f"the container's process {pid} is not visible here "
                                   f"({e.strerror}): the container engine must run on this "
                                   "machine") from None
        if not owned:
            raise RelayUnavailable(f"process {pid} of this machine is not the container's "
                                   "(the container engine must run on this machine)")
        return cls(f"/proc/{pid}/ns/net", target_port, name=f"relay-{container_id[:12]}")

    def _accept(self, namespace: int, entered: threading.Event, failure: list[str]) -> None:
        try:
            _enter(namespace)  # this thread only: upstream sockets are created in there
        except OSError as e:
            failure.append(str(e))
            return
        finally:
            os.close(namespace)
            entered.set()
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection((HOST, self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()  # not listening (yet): the caller's ping fails and retries
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed.is_set():
                    client.close()
                    upstream.close()
                    return
                self._open.update((client, upstream))
            remaining = [2]  # pumps of this connection still running
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink, remaining),
                                 daemon=True, name="relay-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket, remaining: list[int]) -> None:
        """Copy ``source`` to ``sink`` until its end, pass the end on; the last of the
        connection's two pumps closes both sockets."""
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)  # the other direction goes on
        except OSError:
            pass
        with self._lock:
            remaining[0] -= 1
            last = remaining[0] == 0
            if last:
                self._open.difference_update((source, sink))
        if last:
            source.close()
            sink.close()

    def close(self) -> None:
        """Stop accepting and cut every relayed connection."""
        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            doomed, self._open = list(self._open), set()
        for sock in doomed:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
