"""First-time build of script mode's framework environments (issue 13).

For each framework, the time ``Environments.python()`` takes to build its environment into an
empty frameworks directory: once with an empty uv cache (every wheel downloaded; torch comes
from the wheelhouse file) and once more into another empty directory with the cache now
filled (a second server, or an environment deleted and rebuilt). Nothing is kept.

    .venv/bin/python -m benchmarks.bench_environments [--wheelhouse /opt/wheels]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FRAMEWORKS = [("sklearn", "1.2-1"), ("xgboost", "1.7-1"), ("pytorch", "2.1"),
              ("tensorflow", "2.16")]

CHILD = """
import sys, time
from pathlib import Path
from opensage.runner.environments import Environments, resolve
envs = Environments(Path(sys.argv[1]), wheelhouse=[Path(p) for p in sys.argv[4:]])
started = time.monotonic()
envs.python(resolve(sys.argv[2], sys.argv[3]))
print(f"{time.monotonic() - started:.1f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheelhouse", default=os.environ.get("OPENSAGE_WHEELHOUSE",
                                                               "/opt/wheels"))
    args = parser.parse_args()
    wheelhouse = [p for p in args.wheelhouse.split(os.pathsep) if p]
    scratch = Path(tempfile.mkdtemp(prefix="bench-envs-"))
    env = {**os.environ, "UV_CACHE_DIR": str(scratch / "uv-cache")}
    try:
        print("| framework | version | environment | empty uv cache | warm uv cache | size |")
        print("|---|---|---|---|---|---|")
        for name, version in FRAMEWORKS:
            times = []
            for attempt in ("cold", "warm"):
                root = scratch / attempt
                out = subprocess.run([sys.executable, "-c", CHILD, str(root), name, version,
                                      *wheelhouse], env=env, capture_output=True, text=True,
                                     check=False)
                if out.returncode != 0:
                    times.append("failed: " + out.stderr.strip().splitlines()[-1])
                    continue
                times.append(f"{out.stdout.strip()} s")
            key = next(p.name for p in (scratch / "warm").iterdir()
                       if p.is_dir() and not p.name.startswith("."))
            size = subprocess.run(["du", "-sm", str(scratch / "warm" / key)],
                                  capture_output=True, text=True, check=True).stdout.split()[0]
            print(f"| {name} | {version} | `{key}` | {times[0]} | {times[1]} | {size} MiB |",
                  flush=True)
            for attempt in ("cold", "warm"):
                shutil.rmtree(scratch / attempt, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
