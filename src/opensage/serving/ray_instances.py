"""Model workers as Ray actors: where a fleet's instances run with ``--executor ray``.

:class:`RayLauncher` is the :class:`serving.fleet.InstanceLauncher` the endpoint and
transform services take instead of the local :class:`serving.fleet.Launcher`: each instance
is a :class:`serving.remote_instance.RemoteModelServer` actor asking Ray for its instance
type's CPUs, memory and GPUs (``runner.workspace.ray_resources``, what a training host's
bundle holds; spread across nodes), which fetches the model through S3 and runs the same
model worker on its node, listening on the node's address: a built-in's handler, or a
framework model's handlers (``framework_worker.py``) in the framework's environment, which
the actor gets on its node as a Ray training host does. A model with EnableNetworkIsolation
runs there as it does locally: its worker launched in a network namespace of its own, the
server's, the node's other instances' and hosts' and Ray's directories hidden
(``serving.remote_instance``). Own images are refused (they run with ``--executor local``).
Here it is a :class:`RayWorker`:
a :class:`serving.process.Worker` whose ``host``/``port`` are that address and whose
``proc`` is the actor's output, so the fleet, the router, the endpoint's replacement of dead
instances and the transform job's senders are unchanged. An actor that dies (its node was
lost) ends its ``proc``: the worker is ``lost``, the endpoint replaces it (Ray places the new
actor on a live node) and retries requests on the healthy ones; a transform job re-sends
the lost worker's records.

Nothing here imports Ray: the launcher is handed a function that returns the connected
``ray`` module (``runner.ray_executor.connect``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from opensage.data.archives import ArchiveLimits
from opensage.serving.fleet import ModelServer
from opensage.serving.process import LogSink, Worker, WorkerFailed
from opensage.serving.remote_instance import NodeEnvironments, RemoteModelServer, describe
from opensage.store.remote_objects import S3Endpoint

log = logging.getLogger(__name__)
UNAVAILABLE_STRIKES = 30  # an actor unreachable this many times in a row (1 s apart) is lost
LOCAL_ONLY = ("With --executor ray, endpoints and transform jobs serve built-in algorithms' "
              "and framework models on the cluster; own images run with --executor local")
# a framework model's instance may first build the framework's environment on its node
ENVIRONMENT_BUILD_SECONDS = 1800.0


class ActorOutput:
    """An instance actor's output seen as the part of ``subprocess.Popen`` a worker uses:
    ``stdout`` a pipe fed with the lines the actor hands out, ``poll``, ``wait``,
    ``returncode``; ``lost`` says why the actor died when its node was lost."""

    def __init__(self, ray: Any, actor: Any) -> None:
        self._ray, self.actor = ray, actor
        read_fd, self._write_fd = os.pipe()
        self.stdout: IO[bytes] | None = os.fdopen(read_fd, "rb")
        self.returncode: int | None = None
        self.lost: str | None = None
        self._ended = threading.Event()
        threading.Thread(target=self._feed, daemon=True, name="instance-output").start()

    def _feed(self) -> None:
        code: int | None = None
        unavailable = getattr(self._ray.exceptions, "ActorUnavailableError", ())
        strikes = 0
        try:
            with os.fdopen(self._write_fd, "wb") as pipe:
                while code is None:
                    try:
                        lines, code = self._ray.get(self.actor.read.remote())
                    except self._ray.exceptions.RayActorError as err:
                        if isinstance(err, unavailable) and strikes < UNAVAILABLE_STRIKES:
                            strikes += 1  # unreachable for a moment: ask again
                            time.sleep(1.0)
                            continue
                        self.lost, code = describe(err), -9
                        self._ray.kill(self.actor, no_restart=True)  # never left running
                        break
                    strikes = 0
                    pipe.write(b"".join(lines))
                    pipe.flush()
        except Exception:  # the worker reads the stream's end and the code below
            log.exception("reading a Ray instance's output failed")
        finally:
            self.returncode = code if code is not None else -9
            self._ended.set()

    def poll(self) -> int | None:
        return self.returncode if self._ended.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired("ray instance", timeout or 0)
        assert self.returncode is not None
        return self.returncode


class RayWorker(Worker):
    """An instance on a Ray node, seen as a local worker is (see the module's docstring)."""

    remote = True

    def __init__(self, launcher: RayLauncher, model: ModelServer) -> None:
        super().__init__(program=model.program, model_dir=model.model_dir,
                         work_dir=model.work_dir, cpus=model.cpus, env=model.env)
        self.launcher, self.model = launcher, model
        self.actor: Any = None
        self._ready: Any = None

    @property
    def resources(self) -> Mapping[str, float]:
        """What the actor asks Ray for: its instance type's CPUs, memory and GPUs."""
        if self.model.instance_type:
            return self.launcher.resources_for(self.model.instance_type)
        return {"CPU": self.cpus}

    @property
    def lost(self) -> str | None:
        """Why the instance's actor died (its node was lost); None while it lives."""
        return self.proc.lost if isinstance(self.proc, ActorOutput) else None

    def start(self, spawner: Any = None, forkserver: Any = None,
              containers: Any = None) -> None:
        if self.program.image is not None:
            raise WorkerFailed(LOCAL_ONLY)
        launcher = self.launcher
        ray = launcher.ray()
        wanted = self.resources
        cpus = int(wanted["CPU"])
        self.actor = launcher.actor_class().options(
            num_cpus=cpus, memory=wanted.get("memory"), num_gpus=wanted.get("GPU", 0),
            max_restarts=0, max_concurrency=4, scheduling_strategy="SPREAD",
        ).remote(self.program, self.model.model_url, launcher.instance_endpoint(), cpus,
                 dict(self.env), launcher.limits, self.instance_id, None,
                 launcher.environments if self.program.in_environment else None,
                 **launcher.isolation(self.model))
        self._ready = self.actor.start.remote(self.model.startup_timeout)
        self.proc = ActorOutput(ray, self.actor)
        threading.Thread(target=self._pump, daemon=True,
                         name=f"worker-log-{self.instance_id}").start()

    def wait_ready(self, timeout: float) -> None:
        """Once the actor was placed, fetched the model and its worker passed ``/ping`` on
        its node, and answers ``/ping`` from here too."""
        ray = self.launcher.ray()
        if self.program.in_environment:  # the environment may be built on the node first
            timeout += ENVIRONMENT_BUILD_SECONDS
        deadline = time.monotonic() + timeout
        try:
            self.host, self.port = ray.get(self._ready, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise WorkerFailed(f"no Ray node had room for the instance ({_room(self.resources)}) "
                               "or it did not pass the ping health check within "
                               f"{timeout:g} s") from None
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            raise WorkerFailed(str(cause) if cause is not None else describe(err)) from None
        except ray.exceptions.RayActorError as err:
            raise WorkerFailed(f"the Ray node running the instance was lost "
                               f"({describe(err)})") from None
        while not self.ping(timeout=1.0):
            if self.proc is not None and self.proc.poll() is not None:
                raise WorkerFailed(self.exit_reason())
            if time.monotonic() > deadline:
                raise WorkerFailed(f"the instance on {self.host}:{self.port} does not answer "
                                   "/ping from this server")
            time.sleep(0.1)

    def exit_reason(self) -> str:
        if self.lost is not None:
            return f"the Ray node running the instance was lost ({self.lost})"
        ray = self.launcher.ray()
        try:
            return str(ray.get(self.actor.exit_reason.remote(), timeout=10))
        except ray.exceptions.RayError as err:
            return f"the instance's actor ended ({describe(err)})"

    def stop(self, grace: float = 30.0) -> None:
        """The worker on the node drains (SIGTERM), then the actor goes."""
        self.stopped = True
        if self.actor is None:
            return
        ray = self.launcher.ray()
        try:
            ray.get(self.actor.stop.remote(grace), timeout=grace + 10)
        except ray.exceptions.RayError:
            pass  # gone already, or it did not stop in time: killed below
        self._end()

    def kill(self) -> None:
        self.stopped = True
        self._end()

    def _end(self) -> None:
        if self.actor is None:
            return
        ray = self.launcher.ray()
        try:
            ray.get(self.actor.close.remote(), timeout=10)
        except ray.exceptions.RayError:
            pass
        ray.kill(self.actor, no_restart=True)


class RayLauncher:
    """Starts a fleet's instances as actors on the Ray cluster (an ``InstanceLauncher``).

    ``connect`` returns the connected ``ray`` module; ``endpoint`` is where nodes reach the
    objects (the models); ``resources_for`` gives what an instance of a type asks Ray for
    (``runner.workspace.ray_resources``: CPUs, memory, GPUs); ``limits`` caps unpacking a
    model (and a framework model's code) on the node; ``environments`` makes a node's
    framework environments there (``runner.environments.Environments`` of the server's
    frameworks directory and wheelhouse); ``credentials`` (``--auth sigv4``) issues the
    short-lived session each instance fetches its model with. ``private`` (called on a node,
    in the instance's actor: ``runner.ray_executor.ray_directories``) says what of the node
    besides its instances' and hosts' directories a worker with EnableNetworkIsolation must
    not see (Ray's directory), ``isolation_unavailable`` (called there too:
    ``runner.toolkit.isolation.unavailable``) why the node cannot isolate; both are
    module-level functions, which Ray hands over by reference."""

    remote = True  # a framework model's environment and code are had on each node

    def __init__(self, connect: Callable[[], Any], endpoint: S3Endpoint,
                 resources_for: Callable[[str], Mapping[str, float]], limits: ArchiveLimits,
                 credentials: Callable[[], Mapping[str, str]] | None = None,
                 environments: Callable[[], NodeEnvironments] | None = None,
                 private: Callable[[], list[str]] | None = None,
                 isolation_unavailable: Callable[[], str | None] | None = None) -> None:
        self._connect, self.endpoint = connect, endpoint
        self.private, self.isolation_unavailable = private, isolation_unavailable
        self.credentials, self.environments = credentials, environments
        self.resources_for, self.limits = resources_for, limits
        self._ray: Any = None
        self._actor_class: Any = None
        self._lock = threading.Lock()

    def ray(self) -> Any:
        with self._lock:
            if self._ray is None:
                self._ray = self._connect()
            return self._ray

    def instance_endpoint(self) -> S3Endpoint:
        """Where a new instance fetches its model, signing with a session of its own."""
        if self.credentials is None:
            return self.endpoint
        return self.endpoint.with_credentials(self.credentials())

    def isolation(self, model: ModelServer) -> dict[str, Any]:
        """The instance actor's arguments for a model with EnableNetworkIsolation (none
        without): the server's files to hide should its node be this machine, what of them
        it reads (the frameworks directory and wheelhouse, the node's own paths), and how
        to find on the node what else to hide and whether it can isolate."""
        if not model.isolated:
            return {}
        return {"isolated": True, "hidden": [str(p) for p in model.hidden],
                "shared": [str(p) for p in model.shared], "private": self.private,
                "isolation_unavailable": self.isolation_unavailable}

    def actor_class(self) -> Any:
        ray = self.ray()
        with self._lock:
            if self._actor_class is None:
                self._actor_class = ray.remote(RemoteModelServer)
            return self._actor_class

    def warm(self) -> None:
        """Nothing to warm: the nodes start their workers."""

    def launch(self, model: ModelServer, log_sink: Callable[[Worker], LogSink | None],
               on_exit: Callable[[Worker], None] | None = None) -> Worker:
        worker = RayWorker(self, model)
        worker.log_sink = log_sink(worker)
        worker.on_exit = on_exit
        worker.start()
        return worker

    def close(self) -> None:
        """The actors belong to this server's driver and go with it."""


def _room(resources: Mapping[str, float]) -> str:
    """What an instance asks for, in words: "2 CPU, 8 GiB memory, 1 GPU"."""
    parts = [f"{resources.get('CPU', 0):g} CPU"]
    if resources.get("memory"):
        parts.append(f"{resources['memory'] / 1024**3:g} GiB memory")
    if resources.get("GPU"):
        parts.append(f"{resources['GPU']:g} GPU")
    return ", ".join(parts)
