"""One long-lived process per machine that runs the hosts this server places there.

Starting a Ray actor per host cost each job a fresh Python process importing opensage (about
2.5 s), and each built-in host's own fresh interpreter importing its algorithm (about 1.5 s
more): 6.9 s a job against 0.13 s locally. A :class:`NodeAgent` (one Ray actor per node and
server, ``runner.ray_executor`` makes it; nothing here imports Ray) lives as long as the
server's connection to the cluster and holds every host placed on its node:

- ``open`` makes a :class:`runner.remote_host.RemoteHost` (or its processing kind) in this
  process, and the other calls reach it by key (``call``), so a job's host costs a method
  call, not a process;
- built-in algorithms are forked from a warm fork server started with the agent, as the
  local executor does, and every process is started from one long-lived thread (PDEATHSIG
  follows the thread that forked);
- each host is pinned to CPUs of its own among the node's (:class:`runner.cpus.CpuSlots`),
  not to "the first N", which two hosts on one node would share.

The job's placement group still reserves each host's CPUs, memory and GPUs on the node: the
agent itself asks Ray for none. When the node (or the agent) dies, every call raises, and the
executor sees the host's node as lost, as it did with an actor per host.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opensage.runner.cpus import CpuSlots
from opensage.runner.forkserver import ForkServer
from opensage.runner.remote_host import HOSTS_DIR, RemoteHost, RemoteProcessingHost
from opensage.settings import NODE_INSTANCES_DIR

log = logging.getLogger(__name__)
INSTANCES_DIR = NODE_INSTANCES_DIR  # serving.remote_instance's, on the same nodes
HOST_KINDS: dict[str, type[RemoteHost]] = {"training": RemoteHost,
                                           "processing": RemoteProcessingHost}


class NodeAgent:
    """The hosts of this server on one node (see the module's docstring)."""

    def __init__(self, preload: bool = True,
                 private: Callable[[], list[str]] | None = None) -> None:
        """``preload``: start a fork server with the built-ins installed here imported.
        ``private``: what, on this node, a host with EnableNetworkIsolation must not see
        besides the hosts' and instances' directories (Ray's own directory)."""
        self.private = [str(Path(tempfile.gettempdir()) / name)
                        for name in (HOSTS_DIR, INSTANCES_DIR)] + (private() if private else [])
        self.cpus = CpuSlots()
        # PDEATHSIG follows the thread that forked: fork from one that lives as the agent does
        self.spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-spawner")
        self.forkserver: ForkServer | None = None
        if preload:
            self.forkserver = self.spawner.submit(_forkserver).result()
        self._hosts: dict[str, RemoteHost] = {}
        self._lock = threading.Lock()

    def open(self, key: str, kind: str, args: tuple[Any, ...], line: str = "") -> None:
        """A host of ``kind`` made with ``args`` (its class's), reached as ``key``; ``line``
        is the first line of its output (where it was placed)."""
        host = HOST_KINDS[kind](*args)
        host.node = self
        if line:
            host._say(line)
        with self._lock:
            self._hosts[key] = host

    def call(self, key: str, method: str, *args: Any) -> Any:
        """The host's ``method``; a host already dropped raises ``KeyError``."""
        with self._lock:
            host = self._hosts[key]
        return getattr(host, method)(*args)

    def drop(self, key: str) -> None:
        """The host's processes killed and its directory removed (it ended, or its job)."""
        with self._lock:
            host = self._hosts.pop(key, None)
        if host is not None:
            host.close()


def _forkserver() -> ForkServer | None:
    from opensage.algorithms.registry import preload_modules

    try:
        modules = preload_modules()
        return ForkServer(modules) if modules else None
    except (OSError, ImportError):  # the hosts start fresh interpreters instead
        log.warning("no fork server on this node", exc_info=True)
        return None
