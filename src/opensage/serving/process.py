"""A worker process per variant instance, started like a training job: through
``opensage.runner.launch`` (PDEATHSIG: it dies with the server; CPU affinity of its instance).

The parent binds the worker's 127.0.0.1 socket itself and passes the descriptor down, so
the port is known before the child starts and no other process can take it in between.
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
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

HOST = "127.0.0.1"
log = logging.getLogger(__name__)
LogSink = Callable[[list[tuple[int, str]]], None]


class WorkerFailed(Exception):
    """The worker exited or never passed ``/ping``; the message is a FailureReason."""


class Worker:
    def __init__(self, *, module: str, model_dir: Path, work_dir: Path, cpus: int,
                 instance_id: str | None = None, log_sink: LogSink | None = None) -> None:
        self.module = module
        self.model_dir = model_dir
        self.work_dir = work_dir
        self.cpus = cpus
        self.instance_id = instance_id or f"i-{uuid.uuid4().hex[:17]}"
        self.key = uuid.uuid4().hex  # unique per process, unlike a port
        self.log_sink = log_sink
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped = False
        self._tail: deque[str] = deque(maxlen=8)

    @property
    def failure_file(self) -> Path:
        return self.work_dir / f"{self.instance_id}.failure"

    def start(self, spawner: Executor | None = None) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.failure_file.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.bind((HOST, 0))
            sock.listen(1024)
            self.port = sock.getsockname()[1]
            fd = sock.fileno()
            command = [sys.executable, "-m", "opensage.runner.launch", str(self.cpus),
                       str(os.getpid()), "--", sys.executable, "-m", "opensage.serving.worker",
                       "--module", self.module, "--model-dir", str(self.model_dir),
                       "--fd", str(fd), "--failure-file", str(self.failure_file)]
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
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

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self.stopped

    def ping(self, timeout: float = 1.0) -> bool:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
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
            if self.ping(timeout=min(1.0, max(0.05, deadline - time.monotonic()))):
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


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
