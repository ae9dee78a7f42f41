"""A warm process that has already imported the built-in algorithms and forks each job.

Importing numpy, pyarrow and xgboost costs a job more than a second; forking a process that
did it once costs milliseconds (measured: a 10,000-row XGBoost job's overhead 1.5 s -> 0.3 s).
The fork server never runs algorithm code itself (OpenMP is not fork-safe once used), is a
child of the opensage server and dies with it (PR_SET_PDEATHSIG); its jobs die with it in
turn. Messages are length-prefixed JSON over a UNIX socket pair; a job's stdout pipe travels
with its request as SCM_RIGHTS.

Run as ``python -m opensage.runner.forkserver <module>...`` by ``ForkServer`` only.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import IO, Any

from opensage.runner.cpus import pin

FD_ENV = "OPENSAGE_FORKSERVER_FD"
PR_SET_PDEATHSIG = 1
_HEADER = struct.Struct("!I")
# Read by libgomp/OpenBLAS when they load, i.e. in the fork server, for every forked job.
_LIBRARY_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    payload = json.dumps(message).encode()
    data = _HEADER.pack(len(payload)) + payload
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.sendall(data)


def _recv_exactly(sock: socket.socket, size: int, data: bytes = b"") -> bytes | None:
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _recv(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors sent with it; (None, []) at end of stream."""
    data, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, 4)
    header = _recv_exactly(sock, _HEADER.size, data) if data else None
    if header is None:
        return None, list(fds)
    payload = _recv_exactly(sock, _HEADER.unpack(header)[0])
    return (json.loads(payload) if payload is not None else None), list(fds)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


# -- the opensage server's side ----------------------------------------------------------------
class ForkedProcess:
    """The part of ``subprocess.Popen`` the executor uses, for a job the fork server started."""

    def __init__(self, pid: int, stdout: IO[bytes], exited: Future[int]) -> None:
        self.pid = pid
        self.stdout = stdout
        self._exited = exited
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self._exited.done():
            self.returncode = self._exited.result()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        try:
            self.returncode = self._exited.result(timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0) from None
        return self.returncode


class ForkServer:
    def __init__(self, modules: list[str]) -> None:
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**os.environ, FD_ENV: str(theirs.fileno()), **_LIBRARY_ENV}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "opensage.runner.forkserver", *modules],
            pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.modules = set(modules)
        self._lock = threading.Lock()
        self._next_id = 0
        self._spawned: dict[int, Future[int]] = {}
        self._exits: dict[int, Future[int]] = {}
        self._closed = False
        threading.Thread(target=self._read, daemon=True, name="opensage-forkserver").start()

    def spawn(self, module: str, argv: list[str], cwd: str, env: dict[str, str],
              cpus: int | list[int]) -> ForkedProcess:
        """``module`` run as ``__main__`` with ``argv`` in a forked child pinned to ``cpus``
        (a count: the first ones; a list: those CPU ids)."""
        read_end, write_end = os.pipe()
        spawned: Future[int] = Future()
        with self._lock:
            if self._closed:
                os.close(read_end)
                os.close(write_end)
                raise RuntimeError("the fork server stopped")
            self._next_id += 1
            self._spawned[self._next_id] = spawned
            try:
                _send(self._sock, {"id": self._next_id, "module": module, "argv": argv,
                                   "cwd": cwd, "env": env, "cpus": cpus}, [write_end])
            finally:
                os.close(write_end)
        try:
            pid = spawned.result(60)  # the fork server may still be importing
        except BaseException:
            os.close(read_end)
            raise
        with self._lock:
            exited = self._exits.setdefault(pid, Future())
        return ForkedProcess(pid, os.fdopen(read_end, "rb"), exited)

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def _read(self) -> None:
        while True:
            try:
                message, _ = _recv(self._sock)
            except OSError:
                message = None
            if message is None:
                break
            with self._lock:
                if "id" in message:
                    future = self._spawned.pop(message["id"])
                    if "error" in message:
                        future.set_exception(RuntimeError(message["error"]))
                    else:
                        future.set_result(message["pid"])
                elif "exited" in message:
                    self._exits.setdefault(message["exited"], Future()).set_result(
                        message["code"])
        with self._lock:  # the fork server is gone, and its jobs with it
            self._closed = True
            for future in self._spawned.values():
                future.set_exception(RuntimeError("the fork server stopped"))
            for exit_future in self._exits.values():
                if not exit_future.done():
                    exit_future.set_result(-signal.SIGKILL)


# -- the fork server process -------------------------------------------------------------------
def _serve(sock: socket.socket) -> None:
    children: set[int] = set()
    while True:
        readable, _, _ = select.select([sock], [], [], 0.05)
        _reap(sock, children)
        if not readable:
            continue
        message, fds = _recv(sock)
        if message is None:  # the opensage server closed us: take the jobs down too
            for pid in children:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            return
        try:
            pid = os.fork()
        except OSError as err:
            _send(sock, {"id": message["id"], "error": str(err)})
            pid = -1
        if pid == 0:
            _become_job(sock, message, fds[0])
        for fd in fds:
            os.close(fd)
        if pid > 0:
            children.add(pid)
            _send(sock, {"id": message["id"], "pid": pid})


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _become_job(sock: socket.socket, message: dict[str, Any], stdout_fd: int) -> None:
    """In the forked child: become the job process, run its module, never return."""
    code = 1
    try:
        sock.close()
        os.setsid()
        _die_with_parent()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        pin(message["cpus"])  # a count, or the CPU ids the job was given
        os.chdir(message["cwd"])
        os.dup2(stdout_fd, 1)
        os.dup2(stdout_fd, 2)
        os.close(stdout_fd)
        os.environ.clear()
        os.environ.update(message["env"])
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.argv = [message["module"], *message["argv"]]
        import runpy

        runpy.run_module(message["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - the job's crash, reported as Python would
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main(modules: list[str]) -> None:
    _die_with_parent()
    sock = socket.socket(fileno=int(os.environ.pop(FD_ENV)))
    for module in modules:  # the point of this process: pay the imports once
        __import__(module)
    _serve(sock)


if __name__ == "__main__":
    main(sys.argv[1:])
