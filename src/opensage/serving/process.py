"""A worker process per variant instance, started like a training job: forked from the warm
fork server when it preloaded the algorithm (no import time: a worker is up in a fraction of a
second instead of seconds), else through ``opensage.runner.launch``. Either way it dies with
the server (PDEATHSIG) and gets the CPU affinity of its instance.

What it runs is a :class:`WorkerProgram`: a built-in algorithm's handler
(``python -m opensage.serving.worker --module M``, forkable; a deep-learning built-in's with
its environment's interpreter, PYTHONPATH the directory holding only the opensage package), a framework's inference
handlers (``<environment's python> framework_worker.py --framework F --code-dir C``, always a
fresh process through ``opensage.runner.launch``, in the framework's own environment), or the
user's own image: a container running ``serve`` (SageMaker's contract: the model unpacked at
``/opt/ml/model``, read-only, HTTP on 8080 or ``SAGEMAKER_BIND_TO_PORT``), that port published
on 127.0.0.1; the container is the worker's process (:class:`ContainerProcess`).

Launched, the parent binds the worker's 127.0.0.1 socket itself and passes the descriptor
down, so the port is known before the child starts and no other process can take it in
between. Forked (the fork server passes no other descriptor), the worker binds a free port
itself and writes it to a file the parent reads before its first ``/ping``.

A model with ``EnableNetworkIsolation`` (``isolated``): its workers are always launched,
never forked, with ``runner.launch --netns``: the worker moves into a network namespace of its
own holding only a loopback interface before the program starts, and serves on the listening
socket inherited from the parent, which stays in the server's namespace (a socket belongs to
the namespace it was created in): the server reaches the worker, the worker reaches nothing,
the server included. An own image's container runs with ``NetworkMode: none`` (only its own
loopback) and publishes no port; the server reaches it through a
:class:`~opensage.serving.relay.NamespaceRelay`, which opens each connection from inside the
container's namespace.
"""

from __future__ import annotations

import functools
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opensage.containers import (
    CONTAINER_PORT,
    ContainerEngine,
    ContainerError,
    ContainerProcess,
    ContainerSpec,
    Mount,
)
from opensage.serving.relay import NamespaceRelay, RelayUnavailable

HOST = "127.0.0.1"
log = logging.getLogger(__name__)
# Fork servers known to have finished their imports (a probe came back); until then workers
# start as fresh interpreters rather than queue behind those imports.
_ready_forkservers: weakref.WeakSet[Any] = weakref.WeakSet()
_probing_forkservers: weakref.WeakSet[Any] = weakref.WeakSet()
_probe_lock = threading.Lock()
LogSink = Callable[[list[tuple[int, str]]], None]
FRAMEWORK_WORKER = Path(__file__).with_name("framework_worker.py")
# The server's own interpreter settings must not reach a framework environment's python.
FOREIGN = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONSAFEPATH")


@dataclass(frozen=True)
class WorkerProgram:
    """What a model worker runs: ``module`` is a built-in algorithm's package when
    ``python`` is None or ``path`` is set (a deep-learning built-in: ``python`` is its
    environment's interpreter, ``path`` its PYTHONPATH, holding only opensage), else the
    framework whose default handlers apply (``sklearn``, ``pytorch``, ...), served by
    ``python`` (its environment's interpreter) running ``framework_worker.py`` with the user's
    code from ``code_dir``; or the user's ``image`` (``module`` is then its name too).
    ``env``: variables the platform gives a framework's worker (what boto3 needs to call this
    server), under the model's ``Environment``. ``environment``: the framework environment
    ``python`` belongs to (a ``runner.environments.Framework``), which a worker on another
    machine (a Ray node: ``serving.remote_instance``) gets there (:meth:`on_node`)."""

    module: str
    python: str | None = None
    code_dir: str | None = None
    image: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    path: str | None = None
    environment: Any = field(default=None, compare=False)

    @classmethod
    def builtin(cls, module: str, *, python: Path | str | None = None,
                path: Path | str | None = None, framework: Any = None) -> WorkerProgram:
        return cls(module, str(python) if python is not None else None,
                   path=str(path) if path is not None else None, environment=framework)

    @classmethod
    def framework(cls, framework: str, python: Path | str, code_dir: Path | str | None,
                  env: Mapping[str, str] | None = None, *, spec: Any = None) -> WorkerProgram:
        return cls(framework, str(python), str(code_dir) if code_dir is not None else None,
                   env=tuple(sorted((env or {}).items())), environment=spec)

    @property
    def in_environment(self) -> bool:
        """Whether it runs in a framework environment's interpreter (a framework's handlers,
        or a deep-learning built-in), which another machine must have too."""
        return self.python is not None and self.image is None

    def on_node(self, python: Path | str, *, code_dir: Path | str | None = None,
                path: Path | str | None = None,
                env: Mapping[str, str] | None = None) -> WorkerProgram:
        """The same program on another machine: that machine's interpreter of the same
        environment, and the user's code (a framework's), opensage's path (a deep-learning
        built-in's) and the platform's variables as found there."""
        return replace(self, python=str(python),
                       code_dir=None if code_dir is None else str(code_dir),
                       path=None if path is None else str(path),
                       env=self.env if env is None else tuple(sorted(env.items())))

    @classmethod
    def own_image(cls, image: str) -> WorkerProgram:
        return cls(image, image=image)

    @property
    def forkable(self) -> bool:
        """Whether the fork server may start it (a built-in, preloaded there)."""
        return self.python is None and self.image is None

    def command(self) -> list[str]:
        """The command line, without ``--model-dir``/``--fd``/``--failure-file``."""
        if self.python is None or self.path is not None:
            return [self.python or sys.executable, "-m", "opensage.serving.worker",
                    "--module", self.module]
        argv = [self.python, str(FRAMEWORK_WORKER), "--framework", self.module]
        if self.code_dir is not None:
            argv += ["--code-dir", self.code_dir]
        return argv


ISOLATED_CONTAINER = ("EnableNetworkIsolation: the server reaches an isolated container's "
                      "port from inside its network namespace, which cannot be done here: ")


class WorkerFailed(Exception):
    """The worker exited or never passed ``/ping``; the message is a FailureReason."""


class Worker:
    remote = False  # runs on another machine (a Ray node: ``serving.ray_instances``)

    def __init__(self, *, program: WorkerProgram | str, model_dir: Path, work_dir: Path,
                 cpus: int, instance_id: str | None = None, log_sink: LogSink | None = None,
                 env: Mapping[str, str] | None = None, isolated: bool = False,
                 host: str = HOST, hidden: Sequence[Path] = (),
                 shared: Sequence[Path] = ()) -> None:
        self.program = (program if isinstance(program, WorkerProgram)
                        else WorkerProgram.builtin(program))
        self.env = dict(env or {})  # the model's / job's Environment, on top of the server's
        self.model_dir = model_dir
        self.work_dir = work_dir
        self.cpus = cpus
        self.isolated = isolated  # EnableNetworkIsolation: loopback only, launched with --netns
        # isolated, it does not see ``hidden`` (the server's files) but for its directory,
        # and read-only its model, its code and ``shared`` (the framework environments)
        self.hidden, self.shared = tuple(hidden), tuple(shared)
        self.instance_id = instance_id or f"i-{uuid.uuid4().hex[:17]}"
        self.key = uuid.uuid4().hex  # unique per process, unlike a port
        self.log_sink = log_sink
        self.host = host  # where it listens: 127.0.0.1 here, a node's address on Ray
        self.port = 0
        self.proc: Any = None  # subprocess.Popen, or the fork server's ForkedProcess
        self.relay: NamespaceRelay | None = None  # the way in to an isolated container
        self.stopped = False
        self.exited = False  # set once the process is gone (crashed or stopped)
        # Called (from the log pump thread) when the process exits without being stopped.
        self.on_exit: Callable[[Worker], None] | None = None
        self._tail: deque[str] = deque(maxlen=8)

    @property
    def failure_file(self) -> Path:
        return self.work_dir / f"{self.instance_id}.failure"

    @property
    def port_file(self) -> Path:
        return self.work_dir / f"{self.instance_id}.port"

    @property
    def module(self) -> str:
        return self.program.module

    def _environment(self) -> dict[str, str]:
        base = dict(os.environ)
        if not self.program.forkable and self.program.path is None:
            # the user's code: neither the server's interpreter settings nor its AWS
            # configuration
            base = {k: v for k, v in base.items()
                    if k not in FOREIGN and not k.startswith("AWS_")}
        elif not self.program.forkable:  # a deep-learning built-in: not the server's python
            base = {k: v for k, v in base.items() if k not in FOREIGN}
        env = {**base, "OMP_NUM_THREADS": "1", **dict(self.program.env),
               **{str(k): str(v) for k, v in self.env.items()}, "PYTHONUNBUFFERED": "1"}
        if self.program.path is not None:
            env["PYTHONPATH"] = self.program.path
        return env

    def start(self, spawner: Executor | None = None, forkserver: Any = None,
              containers: ContainerEngine | None = None) -> None:
        """Start the process: forked by ``forkserver`` (a :class:`ForkServer`) when it has
        this algorithm preloaded, else a fresh interpreter forked from ``spawner``'s thread;
        an own image's container through ``containers``."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.program.image is not None:
            self._start_container(self.program.image, containers)
            return
        self.failure_file.unlink(missing_ok=True)
        self.port_file.unlink(missing_ok=True)
        if (forkserver is not None and self.program.forkable and not self.isolated
                and self.module in getattr(forkserver, "modules", ()) and warm(forkserver)):
            argv = ["--module", self.module, "--model-dir", str(self.model_dir),
                    "--port-file", str(self.port_file), "--failure-file",
                    str(self.failure_file)]
            try:
                self.proc = forkserver.spawn("opensage.serving.worker", argv,
                                             str(self.work_dir), self._environment(),
                                             self.cpus)
            except (OSError, RuntimeError) as e:
                log.warning("fork server unavailable (%s): starting the worker directly", e)
            else:
                threading.Thread(target=self._pump, daemon=True,
                                 name=f"worker-log-{self.instance_id}").start()
                return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.bind((self.host, 0))
            sock.listen(1024)
            self.port = sock.getsockname()[1]
            fd = sock.fileno()
            command = [sys.executable, "-m", "opensage.runner.launch", str(self.cpus),
                       str(os.getpid()), *(["--netns"] if self.isolated else []),
                       *self._hiding(), "--", *self.program.command(),
                       "--model-dir", str(self.model_dir),
                       "--fd", str(fd), "--failure-file", str(self.failure_file)]
            env = self._environment()
            popen = functools.partial(
                subprocess.Popen, command, cwd=self.work_dir, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(fd,), start_new_session=True)
            # PDEATHSIG fires when the *thread* that forked the child ends: fork from a
            # thread that lives as long as the server, never from a short-lived one.
            self.proc = spawner.submit(popen).result() if spawner is not None else popen()
        finally:
            sock.close()  # the child holds its own copy
        threading.Thread(target=self._pump, daemon=True,
                         name=f"worker-log-{self.instance_id}").start()

    def _hiding(self) -> list[str]:
        """The launcher's arguments hiding the server's files from an isolated worker."""
        if not self.isolated or not self.hidden:
            return []
        shared = [*self.shared, self.model_dir, *(p for p in (self.program.code_dir,
                                                             self.program.path) if p)]
        return [*(a for p in self.hidden for a in ("--hide", str(p))),
                "--rw", str(self.work_dir), *(a for p in shared for a in ("--ro", str(p)))]

    def _start_container(self, image: str, containers: ContainerEngine | None) -> None:
        """``<image> serve`` with the model at ``/opt/ml/model`` and the model's
        environment (none of the server's); raises :class:`WorkerFailed`. Isolated, the
        container has no network (``NetworkMode: none``) and the server reaches its port
        through a :class:`NamespaceRelay`."""
        if containers is None:
            raise WorkerFailed(f"no container engine is reachable to run {image}")
        try:
            port = int(self.env.get("SAGEMAKER_BIND_TO_PORT") or CONTAINER_PORT)
        except ValueError:
            raise WorkerFailed("SAGEMAKER_BIND_TO_PORT is not a port number") from None
        env = {"SAGEMAKER_BIND_TO_PORT": str(port),
               **{str(k): str(v) for k, v in self.env.items()}}
        try:
            proc = containers.run(ContainerSpec(
                image=image, command=["serve"], environment=env,
                mounts=[Mount(self.model_dir, "/opt/ml/model", read_only=True)],
                publish=None if self.isolated else port,
                network_mode="none" if self.isolated else None,
                cpus=self.cpus, purpose="serving"))
        except ContainerError as e:
            raise WorkerFailed(str(e)) from None
        self.proc, self.port = proc, proc.host_port or 0
        if self.isolated:
            try:
                self.relay = NamespaceRelay.for_container(containers.main_pid(proc.id),
                                                          proc.id, port)
            except (ContainerError, RelayUnavailable) as e:
                proc.send_signal(signal.SIGKILL)
                raise WorkerFailed(f"{ISOLATED_CONTAINER}{e}") from None
            self.port = self.relay.port
        threading.Thread(target=self._pump, daemon=True,
                         name=f"worker-log-{self.instance_id}").start()

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                continue
            self._tail.append(text)
            if self.log_sink is not None:
                try:
                    self.log_sink([(int(time.time() * 1000), text)])
                except Exception:
                    log.exception("storing a log line of worker %s failed", self.instance_id)
        self.proc.wait()
        self.exited = True
        if self.relay is not None:
            self.relay.close()
        if not self.stopped and self.on_exit is not None:
            try:
                self.on_exit(self)
            except Exception:
                log.exception("handling the exit of worker %s failed", self.instance_id)

    @property
    def lost(self) -> str | None:
        """Why the worker was lost with the machine it ran on (a Ray node); None for one
        that was not, and for every local one."""
        return None

    @property
    def healthy(self) -> bool:
        """Routable: started, not stopped, not known to have exited (no system call)."""
        return not (self.exited or self.stopped) and self.proc is not None

    def ping(self, timeout: float = 1.0) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", "/ping")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def wait_ready(self, timeout: float) -> None:
        """Return once ``/ping`` answers 200; raise :class:`WorkerFailed` otherwise."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise WorkerFailed(self.exit_reason())
            if not self.port:
                try:
                    self.port = int(self.port_file.read_text())
                except (OSError, ValueError):
                    pass
            if self.port and self.ping(timeout=min(1.0, max(0.05, deadline - time.monotonic()))):
                return
            if time.monotonic() > deadline:
                raise WorkerFailed("did not pass the ping health check")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def exit_reason(self) -> str:
        try:
            return self.failure_file.read_text().strip()
        except OSError:
            pass
        time.sleep(0.05)  # let the pump read the last lines
        code = self.proc.returncode if self.proc else None
        tail = " | ".join(self._tail) or "no output"
        return f"the model server exited ({code}): {tail[-600:]}"

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (finish the requests in flight), SIGKILL after ``grace`` seconds."""
        self.stopped = True
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(5)

    def kill(self) -> None:
        self.stopped = True
        if self.proc is not None and self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGKILL)
            self.proc.wait(5)


def warm(forkserver: Any) -> bool:
    """Whether ``forkserver`` is ready to fork workers at once; if not yet known, start a probe
    (a worker process that only prints its usage) that marks it ready when it comes back."""
    key = forkserver
    with _probe_lock:
        if key in _ready_forkservers:
            return True
        if key in _probing_forkservers:
            return False
        _probing_forkservers.add(key)

    def probe() -> None:
        try:
            proc = forkserver.spawn("opensage.serving.worker", ["--help"], "/",
                                    dict(os.environ), 1)
            proc.stdout.read()
            proc.stdout.close()
            proc.wait(60)
        except Exception as e:  # noqa: BLE001 - then workers keep starting directly
            log.info("the fork server cannot start workers: %s", e)
        else:
            with _probe_lock:
                _ready_forkservers.add(key)
        finally:
            with _probe_lock:
                _probing_forkservers.discard(key)

    threading.Thread(target=probe, daemon=True, name="forkserver-probe").start()
    return False


def _signal_group(proc: Any, sig: int) -> None:
    if isinstance(proc, ContainerProcess):  # the container's main process
        proc.send_signal(sig)
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
