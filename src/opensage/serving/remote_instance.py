"""One model worker (an endpoint's instance, a transform job's worker) on another machine,
such as a Ray node.

``serving.ray_instances`` makes each instance an actor of this class (nothing here imports
Ray). On its node the actor fetches the model through S3 (``RemoteObjects``: the server's
facade, never the server's disk), unpacks it with the one safe extractor, and starts the
same :class:`serving.process.Worker` the server starts locally, listening on the node's
address (the interface that routes to the server), so the server's router and the transform
job's senders talk to it over HTTP as they do to a local one. Its output lines are handed to
the server as they come (``read``).
"""

from __future__ import annotations

import collections
import shutil
import socket
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opensage.data.archives import ArchiveLimits
from opensage.serving.artifacts import fetch_model
from opensage.serving.process import Worker, WorkerFailed, WorkerProgram
from opensage.store.remote_objects import RemoteObjects, S3Endpoint

READ_WAIT_SECONDS = 0.2  # how long ``read`` holds a call open waiting for a line


class RemoteModelServer:
    """A model worker on the machine it was placed on."""

    def __init__(self, program: WorkerProgram, model_url: str | None, endpoint: S3Endpoint,
                 cpus: int, env: dict[str, str], limits: ArchiveLimits, instance_id: str,
                 scratch: str | None = None) -> None:
        self.program, self.model_url, self.cpus = program, model_url, cpus
        self.env, self.limits, self.instance_id = env, limits, instance_id
        self.endpoint = endpoint
        self.objects = RemoteObjects(endpoint)
        base = Path(scratch or tempfile.gettempdir()) / "opensage-instances"
        self.root = base / instance_id
        self._lines: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        # PDEATHSIG follows the thread that forked: fork from one that lives as the actor does
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")
        self.worker: Worker | None = None

    def node_address(self) -> str:
        """This node's address as the server reaches it (the interface that routes to the
        server's S3 endpoint)."""
        host = urlsplit(self.endpoint.url).hostname or "127.0.0.1"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((host, 9))
                return str(sock.getsockname()[0])
            except OSError:
                return "127.0.0.1"

    def start(self, startup_timeout: float) -> tuple[str, int]:
        """Fetch the model, start the worker and wait for its ``/ping``; the address and
        port it listens on. ``WorkerFailed`` says why it did not come up."""
        model_dir = self.root / "model"
        if self.model_url:
            try:
                fetch_model(self.objects, self.model_url, model_dir, self.limits)
            except Exception as err:  # noqa: BLE001 - ArtifactError, or the store's error
                raise WorkerFailed(f"Failed to download or extract the model data: "
                                   f"{err}") from None
        else:
            model_dir.mkdir(parents=True, exist_ok=True)
        worker = Worker(program=self.program, model_dir=model_dir, work_dir=self.root,
                        cpus=self.cpus, instance_id=self.instance_id, env=self.env,
                        host=self.node_address())
        worker.log_sink = self._keep
        self.worker = worker
        worker.start(self._spawner)
        worker.wait_ready(startup_timeout)
        return worker.host, worker.port

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
        if self.worker is not None:
            self.worker.stop(grace)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill()
        self._spawner.shutdown(wait=False)
        shutil.rmtree(self.root, ignore_errors=True)


def describe(err: Any) -> str:
    """The first line of an error's text (a Ray error's text is long)."""
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__
