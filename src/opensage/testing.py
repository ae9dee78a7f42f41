"""Helpers for test suites and benchmarks: ``opensage server`` as a real subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
# The test machine's wheelhouse: where its CPU torch wheel lies (the server itself has none
# unless OPENSAGE_WHEELHOUSE says so).
TEST_WHEELHOUSE = Path("/opt/wheels")


def frameworks_dir_for_tests() -> Path:
    """One frameworks directory for every test session on this machine: an environment is
    built once per machine, not per test (``OPENSAGE_TEST_FRAMEWORKS_DIR``)."""
    raw = os.environ.get("OPENSAGE_TEST_FRAMEWORKS_DIR")
    return Path(raw).expanduser() if raw else Path.home() / ".cache/opensage-test/frameworks"


def wheelhouse_for_tests() -> tuple[Path, ...]:
    """``OPENSAGE_WHEELHOUSE`` if set, else the test machine's ``/opt/wheels`` if it exists."""
    raw = os.environ.get("OPENSAGE_WHEELHOUSE")
    if raw is not None:
        return tuple(Path(p) for p in raw.split(os.pathsep) if p)
    return (TEST_WHEELHOUSE,) if TEST_WHEELHOUSE.is_dir() else ()


def environ_for_tests() -> dict[str, str]:
    """The variables that point a server subprocess at the shared test environments."""
    return {"OPENSAGE_FRAMEWORKS_DIR": str(frameworks_dir_for_tests()),
            "OPENSAGE_WHEELHOUSE": os.pathsep.join(map(str, wheelhouse_for_tests()))}


ROOT_KEYS = ("AKIAOPENSAGETESTROOT", "opensage-test-root-secret/0123456789abcdef")


def sigv4_args(root: tuple[str, str] = ROOT_KEYS) -> tuple[str, ...]:
    """The ``opensage server`` flags of a server that verifies signatures, with a known root
    key pair (sign requests with ``ROOT_KEYS``)."""
    return ("--auth", "sigv4", "--root-access-key-id", root[0],
            "--root-secret-access-key", root[1])


@contextmanager
def opensage_server(data_dir: Path, *extra: str, output: list[str] | None = None
                    ) -> Iterator[str]:
    """Run ``opensage server --port 0`` on ``data_dir``; yields its URL once it answers.
    ``extra``: more flags (``*sigv4_args()`` for a server that checks signatures);
    ``output``: a list that receives the server's output lines as they come."""
    with server_process(data_dir, *extra, output=output) as (url, _proc):
        yield url


@contextmanager
def server_process(data_dir: Path, *extra: str, output: list[str] | None = None,
                   env: dict[str, str] | None = None
                   ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Like ``opensage_server`` but also yields the process (to kill it, for instance)."""
    cmd = [str(VENV_BIN / "opensage"), "server", "--port", "0", "--data-dir", str(data_dir),
           "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**environ_for_tests(), **os.environ, "COLUMNS": "200",
                                 **(env or {})})
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        port = None
        for line in proc.stdout:
            if output is not None:
                output.append(line)
            match = re.match(r"PORT=(\d+)", line)
            if match:
                port = int(match.group(1))
                break
            if time.monotonic() > deadline:
                break
        if port is None:
            raise RuntimeError("server did not report its port")
        # Keep draining its output, or a chatty server would block on a full pipe.
        sink = output.append if output is not None else None
        threading.Thread(target=_drain, args=(proc.stdout, sink), daemon=True).start()
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)


def _drain(stream: Any, sink: Callable[[str], None] | None) -> None:
    for line in stream:
        if sink is not None:
            sink(line)


READY_TIMEOUT = 60.0  # a restarted server restores its endpoints first: slow on a busy host


def _wait_ready(url: str) -> None:
    import urllib.request

    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            urllib.request.urlopen(url + "/_opensage/health", timeout=5).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {READY_TIMEOUT:.0f} s") from None
            time.sleep(0.05)
