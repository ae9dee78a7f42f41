"""One model worker (an endpoint's instance, a transform job's worker) on another machine,
such as a Ray node.

``serving.ray_instances`` makes each instance an actor of this class (nothing here imports
Ray). On its node the actor fetches the model through S3 (``RemoteObjects``: the server's
facade, never the server's disk), unpacks it with the one safe extractor, and starts the
same :class:`serving.process.Worker` the server starts locally, listening on the node's
address (the interface that routes to the server), so the server's router and the transform
job's senders talk to it over HTTP as they do to a local one. Its output lines are handed to
the server as they come (``read``).

A program that runs in a framework environment (a framework model's handlers,
``framework_worker.py``; a deep-learning built-in's ``serve``) gets that environment on the
node as a Ray training host does (``Environments.python``, through the ``environments``
factory the server hands over: built there if missing, under that machine's lock, the
build's lines the first the instance hands out), its user code found in the node's copy of
the model or fetched through S3 (``serving.artifacts.code_directory``), and runs as
:meth:`WorkerProgram.on_node` says: the same command line and environment variables the
server's own ``Launcher`` gives it, with that node's paths, its boto3 pointed at the address
the node reaches the server at.

A model with EnableNetworkIsolation (``isolated``) runs as it does locally: its worker is
launched (never forked) through ``runner.launch --netns`` into a network namespace of its
own, serving on the socket the actor bound on the node's address, and with ``--hide`` it sees
none of the server's files (``hidden``: this node may be the server's machine), nor this
node's hosts' and instances' directories (``settings.NODE_HOSTS_DIR`` / ``NODE_INSTANCES_DIR``)
but for its own, nor Ray's directory (``private``: its raylet's and object store's sockets
would make the worker a Ray client); ``shared`` (the frameworks directory and wheelhouse),
its model and code read-only. A node that cannot isolate fails the instance with the reason
(``isolation_unavailable``, else the launcher's): it never serves unisolated.
"""

from __future__ import annotations

import collections
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from opensage.data.archives import ArchiveLimits
from opensage.serving.artifacts import ArtifactError, code_directory, fetch_model
from opensage.serving.process import Worker, WorkerFailed, WorkerProgram
from opensage.settings import NODE_HOSTS_DIR, NODE_INSTANCES_DIR
from opensage.store.remote_objects import RemoteObjects, S3Endpoint

READ_WAIT_SECONDS = 0.2  # how long ``read`` holds a call open waiting for a line
NO_ENVIRONMENTS = ("this server gives its Ray instances no framework environments, which "
                   "this model's workers run in")
NO_RAY_DIRECTORIES = ("EnableNetworkIsolation: this server does not tell its Ray instances "
                      "where Ray's directory is on their node, which an isolated worker must "
                      "not see")


class NodeEnvironments(Protocol):
    """The framework environments of the machine an instance runs on
    (``runner.environments.Environments``, which this layer does not import)."""

    def python(self, framework: Any, requirements: Path | None = None,
               log: Callable[[str], None] | None = None,
               cancel: threading.Event | None = None) -> Path: ...

    def opensage_path(self) -> Path: ...


class RemoteModelServer:
    """A model worker on the machine it was placed on."""

    def __init__(self, program: WorkerProgram, model_url: str | None, endpoint: S3Endpoint,
                 cpus: int, env: dict[str, str], limits: ArchiveLimits, instance_id: str,
                 scratch: str | None = None,
                 environments: Callable[[], NodeEnvironments] | None = None, *,
                 isolated: bool = False, hidden: Sequence[str] = (),
                 shared: Sequence[str] = (),
                 private: Callable[[], list[str]] | None = None,
                 isolation_unavailable: Callable[[], str | None] | None = None) -> None:
        """``environments``: this node's framework environments (a factory the server
        hands over: its frameworks directory and wheelhouse, paths of the node's own).
        ``isolated``: the model's EnableNetworkIsolation (see the module's docstring), with
        ``hidden`` the server's files, ``shared`` what of them the worker reads,
        ``private`` what else of this node it must not see (Ray's directory, asked on the
        node: ``runner.ray_executor.ray_directories``), ``isolation_unavailable`` why this
        node cannot isolate (``runner.toolkit.isolation.unavailable``, asked here)."""
        self.program, self.model_url, self.cpus = program, model_url, cpus
        self.environments = environments
        self.isolated, self.hidden, self.shared = isolated, tuple(hidden), tuple(shared)
        self.private, self.isolation_unavailable = private, isolation_unavailable
        self._cancel = threading.Event()  # ends an environment build (the instance stopped)
        self.env, self.limits, self.instance_id = env, limits, instance_id
        self.endpoint = endpoint
        self.objects = RemoteObjects(endpoint)
        self.base = Path(scratch or tempfile.gettempdir()) / NODE_INSTANCES_DIR
        self.root = self.base / instance_id
        self._lines: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        # PDEATHSIG follows the thread that forked: fork from one that lives as the actor does
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")
        self.worker: Worker | None = None

    def node_address(self) -> str:
        """This node's address as the server reaches it (the interface that routes to the
        server's S3 endpoint)."""
        return self.endpoint.reached_from()

    def start(self, startup_timeout: float) -> tuple[str, int]:
        """Fetch the model, start the worker and wait for its ``/ping``; the address and
        port it listens on. ``WorkerFailed`` says why it did not come up."""
        hidden = self._hidden() if self.isolated else ()
        model_dir = self.root / "model"
        if self.model_url:
            try:
                fetch_model(self.objects, self.model_url, model_dir, self.limits)
            except Exception as err:  # noqa: BLE001 - ArtifactError, or the store's error
                raise WorkerFailed(f"Failed to download or extract the model data: "
                                   f"{err}") from None
        else:
            model_dir.mkdir(parents=True, exist_ok=True)
        program = self._on_this_node(model_dir) if self.program.in_environment \
            else self.program
        worker = Worker(program=program, model_dir=model_dir, work_dir=self.root,
                        cpus=self.cpus, instance_id=self.instance_id, env=self.env,
                        host=self.node_address(), isolated=self.isolated, hidden=hidden,
                        shared=[Path(p) for p in self.shared])
        worker.log_sink = self._keep
        self.worker = worker
        worker.start(self._spawner)
        worker.wait_ready(startup_timeout)
        return worker.host, worker.port

    def _hidden(self) -> list[Path]:
        """What an isolated worker must not see on this node (see the module's docstring);
        ``WorkerFailed`` when this node cannot isolate, or what to hide is not known."""
        if self.isolation_unavailable is not None and \
                (why := self.isolation_unavailable()) is not None:
            raise WorkerFailed(why)
        if self.private is None:
            raise WorkerFailed(NO_RAY_DIRECTORIES)
        node = [Path(tempfile.gettempdir()) / name
                for name in (NODE_HOSTS_DIR, NODE_INSTANCES_DIR)]
        paths = [*(Path(p) for p in self.hidden), self.base, *node,
                 *(Path(p) for p in self.private())]
        return list(dict.fromkeys(paths))

    def _on_this_node(self, model_dir: Path) -> WorkerProgram:
        """The program with this node's environment: a framework's with the user's code
        found here (and its ``requirements.txt`` overlaid), a deep-learning built-in's with
        this node's path to opensage. ``WorkerFailed`` says why it cannot be had."""
        program, framework = self.program, self.program.environment
        if self.environments is None or framework is None:
            raise WorkerFailed(NO_ENVIRONMENTS)
        environments = self.environments()
        if program.path is not None:  # a deep-learning built-in
            python = self._python(environments, framework, None)
            return program.on_node(python, path=environments.opensage_path())
        try:
            code_dir = code_directory(self.objects, model_dir, self.root, self.env,
                                      self.limits, local_code=False)
        except ArtifactError as err:
            raise WorkerFailed(str(err)) from None
        requirements = code_dir / "requirements.txt" if code_dir is not None else None
        if requirements is not None and not requirements.is_file():
            requirements = None
        python = self._python(environments, framework, requirements)
        env = dict(program.env)
        if "AWS_ENDPOINT_URL" in env:  # the handlers' boto3 calls the server from this node
            env["AWS_ENDPOINT_URL"] = self.endpoint.url
        return program.on_node(python, code_dir=code_dir, env=env)

    def _python(self, environments: NodeEnvironments, framework: Any,
                requirements: Path | None) -> Path:
        try:
            return environments.python(framework, requirements, self._say, self._cancel)
        except Exception as err:  # noqa: BLE001 - EnvironmentBuildError, UnsupportedFramework
            reason = getattr(err, "message", None) or str(err)
            raise WorkerFailed(f"The {framework.name} {framework.version} environment could "
                               f"not be built on the Ray node: {reason}") from None

    def _say(self, line: str) -> None:
        """A line of the instance's own (an environment's build) on its log stream."""
        self._keep([(0, line.rstrip("\n"))])

    def _keep(self, events: list[tuple[int, str]]) -> None:
        with self._cond:
            self._lines.extend(text.encode() + b"\n" for _, text in events)
            self._cond.notify_all()

    def read(self, limit: int = 500) -> tuple[list[bytes], int | None]:
        """The output lines since the last call (waiting a moment for one), and the exit
        code once the worker has ended and every line was handed out."""
        with self._cond:
            if not self._lines:
                self._cond.wait(READ_WAIT_SECONDS)
            lines = [self._lines.popleft() for _ in range(min(limit, len(self._lines)))]
            empty = not self._lines
        worker = self.worker
        done = empty and worker is not None and worker.exited
        code = worker.proc.returncode if done and worker is not None else None
        return lines, (code if code is not None else (-1 if done else None))

    def exit_reason(self) -> str:
        return self.worker.exit_reason() if self.worker is not None else "never started"

    def stop(self, grace: float) -> None:
        """SIGTERM: the requests in flight finish; SIGKILL after ``grace``."""
        self._cancel.set()
        if self.worker is not None:
            self.worker.stop(grace)

    def close(self) -> None:
        self._cancel.set()
        if self.worker is not None:
            self.worker.kill()
        self._spawner.shutdown(wait=False)
        shutil.rmtree(self.root, ignore_errors=True)


def describe(err: Any) -> str:
    """The first line of an error's text (a Ray error's text is long)."""
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__
