"""What hiding the server's files costs an isolated job or model worker at start: the
launcher (``python -m opensage.runner.launch``) running ``/bin/true`` plain, with ``--netns``
(EnableNetworkIsolation's network namespace) and with ``--netns`` plus the private view of the
files (``--hide`` a data directory and a socket, ``--rw`` one job directory, ``--ro`` a
frameworks directory); median of ``--repeats`` launches each, interleaved.

Run: ``.venv/bin/python -m benchmarks.bench_private_mounts [--repeats 30]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_UNIX) as engine:
        data = Path(tmp) / "data"
        for path in ("jobs/a", "jobs/b", "frameworks/env"):
            (data / path).mkdir(parents=True)
        (data / "secret.key").write_text("k")
        engine.bind(f"{tmp}/engine.sock")
        variants = {"plain": [], "netns": ["--netns"], "netns + hidden files": [
            "--netns", "--hide", str(data), "--hide", f"{tmp}/engine.sock",
            "--rw", str(data / "jobs" / "a"), "--ro", str(data / "frameworks")]}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, flags in variants.items():
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "opensage.runner.launch", "1",
                                str(os.getpid()), *flags, "--", "/bin/true"], check=True)
                times[name].append(time.perf_counter() - start)
    print(json.dumps({name: round(statistics.median(t) * 1000, 1)
                      for name, t in times.items()}, indent=1))
    print(f"load average: {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
