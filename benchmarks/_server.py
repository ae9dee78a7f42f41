"""Start ``opensage server`` as a subprocess on a free port, for benchmarks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


@contextmanager
def opensage_server(data_dir: Path, *extra: str) -> Iterator[str]:
    cmd = [str(VENV_BIN / "opensage"), "server", "--port", "0", "--data-dir", str(data_dir),
           "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        port = None
        for line in proc.stdout:
            match = re.match(r"PORT=(\d+)", line)
            if match:
                port = int(match.group(1))
                break
            if time.monotonic() > deadline:
                break
        if port is None:
            raise RuntimeError("server did not report its port")
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait_ready(url: str) -> None:
    import urllib.request

    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/_opensage/health").read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server not ready")
