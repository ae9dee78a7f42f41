"""The one worker fleet: the model worker processes serving one model, for an endpoint's
variant and for a batch transform job alike.

A :class:`Launcher` (one per service) starts worker processes: forked from the warm fork
server when it preloaded the algorithm, else fresh interpreters forked from one long-lived
thread (PDEATHSIG follows the thread that forked, so never a short-lived one). A framework
model's workers (a :class:`WorkerProgram` with an environment's python) are always fresh
interpreters of that environment. An isolated model's workers (``ModelServer.isolated``, the
model's ``EnableNetworkIsolation``) are never forked: each is launched into a network
namespace of its own (see ``serving.process``).

A :class:`Fleet` is the set of workers running one :class:`ModelServer`: it starts new ones
and waits for their ``/ping`` (killing every one it started when any fails), admits them as
members, hands members back to retire, swaps a dead member for its replacement, and stops
or kills them all. New workers are not members until admitted, so a caller decides when
traffic may reach them; ``kill`` also reaches workers still starting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opensage.containers import ContainerEngine
from opensage.data.archives import ArchiveLimits
from opensage.serving.artifacts import fetch_model
from opensage.serving.process import LogSink, Worker, WorkerFailed, WorkerProgram, warm
from opensage.store.objects import ObjectStore

__all__ = ["Fleet", "InstanceLauncher", "Launcher", "ModelServer", "WorkerFailed", "WorkerProgram",
           "prepare_model"]

DEFAULT_STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class ModelServer:
    """What every worker of a fleet runs."""

    program: WorkerProgram  # a built-in algorithm's handler, or a framework's
    model_dir: Path
    work_dir: Path
    cpus: int
    env: Mapping[str, str] = field(default_factory=dict)
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    isolated: bool = False  # the model's EnableNetworkIsolation: workers with loopback only
    # where an instance on another machine fetches the model (a Ray node: ``model_dir`` is
    # this server's), and the instance type it asks that machine for
    model_url: str | None = None
    instance_type: str = ""
    # isolated, the server's files the workers do not see (``Settings.private_paths``) but
    # for ``shared`` (read-only: ``Settings.shared_paths``) and their model and directory
    hidden: tuple[Path, ...] = ()
    shared: tuple[Path, ...] = ()


def prepare_model(objects: ObjectStore, url: str | None, dest: Path,
                  limits: ArchiveLimits) -> Path:
    """The model directory workers load from: ``url``'s archive unpacked there (raises
    ``ArtifactError``), or an empty directory for a model without artifacts."""
    if url:
        return fetch_model(objects, url, dest, limits)
    dest.mkdir(parents=True, exist_ok=True)
    return dest


class InstanceLauncher(Protocol):
    """Where a fleet's instances run: :class:`Launcher` (processes on this machine) or
    ``serving.ray_instances.RayLauncher`` (actors on a Ray cluster's nodes). A launched
    worker is a :class:`Worker` (``host``/``port``, ``proc``, ``stop``, ``kill``) either
    way; the fleet, the router and the transform job's senders do not know which.
    ``remote``: the workers run on other machines, which get the model's framework
    environment and code themselves (nothing of it is needed on this one)."""

    remote: bool

    def warm(self) -> None: ...

    def launch(self, model: ModelServer, log_sink: Callable[[Worker], LogSink | None],
               on_exit: Callable[[Worker], None] | None = None) -> Worker: ...

    def close(self) -> None: ...


class Launcher:
    """Starts worker processes; ``forkserver`` is a ``runner.forkserver.ForkServer`` or None;
    ``containers`` runs own images' containers (None: no engine here)."""

    remote = False

    def __init__(self, forkserver: Any, name: str,
                 containers: ContainerEngine | None = None) -> None:
        self.forkserver = forkserver
        self.containers = containers
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-spawner")

    def warm(self) -> None:
        """Probe the fork server now: workers fork from it once it is ready."""
        if self.forkserver is not None:
            warm(self.forkserver)

    def launch(self, model: ModelServer, log_sink: Callable[[Worker], LogSink | None],
               on_exit: Callable[[Worker], None] | None = None) -> Worker:
        worker = Worker(program=model.program, model_dir=model.model_dir,
                        work_dir=model.work_dir, cpus=model.cpus, env=model.env,
                        isolated=model.isolated, hidden=model.hidden, shared=model.shared)
        worker.log_sink = log_sink(worker)
        worker.on_exit = on_exit
        worker.start(self._spawner, self.forkserver, self.containers)
        return worker

    def close(self) -> None:
        self._spawner.shutdown(wait=False)


class Fleet:
    def __init__(self, launcher: InstanceLauncher, model: ModelServer,
                 log_sink: Callable[[Worker], LogSink | None],
                 on_exit: Callable[[Worker], None] | None = None) -> None:
        self.launcher = launcher
        self.model = model
        self._log_sink = log_sink
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._members: list[Worker] = []
        self._starting: set[Worker] = set()
        self._killed = False

    @property
    def workers(self) -> list[Worker]:
        """The members now (a copy: the fleet may change meanwhile)."""
        with self._lock:
            return list(self._members)

    def start(self, count: int) -> list[Worker]:
        """``count`` new workers, each past ``/ping``, not yet members. When one fails, all
        of them are killed and :class:`WorkerFailed` says why."""
        started: list[Worker] = []
        try:
            for _ in range(count):
                self._check_alive()
                worker = self.launcher.launch(self.model, self._log_sink, self._on_exit)
                started.append(worker)
                with self._lock:
                    self._starting.add(worker)
                if self._killed:  # killed while this one was being launched
                    worker.kill()
            for worker in started:
                self._check_alive()
                worker.wait_ready(self.model.startup_timeout)
        except BaseException:
            for worker in started:
                worker.kill()
            raise
        finally:
            with self._lock:
                self._starting.difference_update(started)
        return started

    def _check_alive(self) -> None:
        if self._killed:
            raise WorkerFailed("the workers were stopped")

    def admit(self, workers: Sequence[Worker]) -> None:
        with self._lock:
            self._members.extend(workers)

    def release(self, count: int) -> list[Worker]:
        """The last ``count`` members, no longer members (the caller drains them)."""
        with self._lock:
            keep = max(0, len(self._members) - count)
            released, self._members = self._members[keep:], self._members[:keep]
        return released

    def swap(self, old: Worker, new: Worker) -> bool:
        """``new`` takes ``old``'s place; False (nothing changed) if ``old`` is no member."""
        with self._lock:
            for i, member in enumerate(self._members):
                if member is old:
                    self._members[i] = new
                    old.stopped = True  # the runtime forgets its connections
                    return True
        return False

    def dead(self) -> list[Worker]:
        """Members whose process exited without being stopped."""
        return [w for w in self.workers if not w.stopped and (
            w.exited or (w.proc is not None and w.proc.poll() is not None))]

    def stop(self, grace: float) -> None:
        """Drain every member (SIGTERM: the requests in flight finish), in parallel."""
        drain(self.workers, grace)

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            doomed = [*self._members, *self._starting]
        for worker in doomed:
            worker.kill()


def drain(workers: Sequence[Worker], grace: float) -> None:
    """Stop ``workers`` together: each finishes its requests in flight within ``grace``."""
    for worker in workers:
        worker.stopped = True  # the runtime drops its connections to it
    threads = [threading.Thread(target=w.stop, args=(grace,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
