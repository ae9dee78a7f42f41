"""The console against the MLflow UI showing the same runs (issue 16), side by side in one run.

Both hold the same rows: N training jobs (``job-000000`` ... newest last, each with ``eta``,
``max_depth`` and a ``validation:rmse``) and a tuning job of C children (an MLflow experiment of
C runs with the same hyperparameters and objective). Measured in Debian's Chromium, driven by
Playwright, with warm static caches as for any returning user: the time from starting the
navigation until the newest row's name is visible on the page (opensage renders rows on the
server; the MLflow UI is a single-page app that fetches runs after its scripts load, so
DOMContentLoaded would flatter it). Loads alternate between the two, page by page.

MLflow is never a dependency of opensage: it runs from a throwaway virtual environment
(``--mlflow-python``, or one made with uv in ``/tmp/mlflow-venv``) with its own SQLite store,
seeded by bulk inserts after ``SqlAlchemyStore`` made the schema (logging 100,000 runs through
its client would take an hour); the server is ``mlflow server --workers 1`` on 127.0.0.1.
Run: ``.venv/bin/python -m benchmarks.bench_console_mlflow [--jobs N] [--children N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.bench_console import ARGS, CHROMIUM, seed_tuning_job
from benchmarks.bench_invoke import free_port
from benchmarks.bench_search import seed_training_jobs
from opensage.testing import opensage_server

MLFLOW_VENV = Path("/tmp/mlflow-venv")

# Run by MLflow's interpreter: the schema through its store, then the rows in bulk. Rows mirror
# benchmarks' opensage seeds: names, creation order, hyperparameters, one objective per run.
SEED_MLFLOW = r"""
import json, random, sqlite3, sys, uuid
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
db, art, jobs, children = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = SqlAlchemyStore("sqlite:///" + db, art)
ids = {name: store.create_experiment(name) for name in ("training-jobs", "tune-500")}
conn = sqlite3.connect(db)
rng = random.Random(7)
base = 1_700_000_000_000
def add(experiment, names):
    runs, tags, params, metrics = [], [], [], []
    for i, name in enumerate(names):
        run = uuid.uuid4().hex
        start = base + i * 1000
        runs.append((run, name, "UNKNOWN", "", "", "bench", "FINISHED", start, start + 500,
                     "", "active", f"{art}/{experiment}/{run}/artifacts", experiment, None))
        tags.append(("mlflow.runName", name, run))
        params += [("eta", f"{rng.uniform(0.01, 0.5):.4f}", run),
                   ("max_depth", str(rng.randint(1, 10)), run)]
        metrics.append(("validation:rmse", rng.uniform(0.1, 2.0), start + 400, 0, 0, run))
    conn.executemany("insert into runs values (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
    conn.executemany("insert into tags values (?,?,?)", tags)
    conn.executemany("insert into params values (?,?,?)", params)
    conn.executemany("insert into metrics (key, value, timestamp, step, is_nan, run_uuid)"
                     " values (?,?,?,?,?,?)", metrics)
    conn.executemany("insert into latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
                     " values (?,?,?,?,?,?)", metrics)
    conn.commit()
add(ids["training-jobs"], [f"job-{i:06d}" for i in range(jobs)])
add(ids["tune-500"], [f"tune-500-{i + 1:03d}" for i in range(children)])
print(json.dumps(ids))
"""


def mlflow_python(given: str | None) -> Path:
    if given:
        return Path(given)
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", "import mlflow"],
                                             check=False).returncode:
        uv = shutil.which("uv") or "uv"
        subprocess.run([uv, "venv", "--python", f"{sys.version_info[0]}.{sys.version_info[1]}",
                        str(MLFLOW_VENV)], check=True)
        subprocess.run([uv, "pip", "install", "--python", str(python), "mlflow"], check=True)
    return python


@contextmanager
def mlflow_ui(python: Path, work: Path, jobs: int, children: int) -> Iterator[
        tuple[str, dict[str, str]]]:
    db, art = work / "mlflow.db", work / "mlartifacts"
    seeded = subprocess.run([str(python), "-c", SEED_MLFLOW, str(db), str(art), str(jobs),
                             str(children)], check=True, capture_output=True, text=True)
    experiments = json.loads(seeded.stdout.strip().splitlines()[-1])
    port = free_port()
    log = open(work / "mlflow-server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(python.parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{db}",
         "--default-artifact-root", str(art), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mlflow server did not start: "
                                       + (work / "mlflow-server.log").read_text()[-2000:])
                time.sleep(0.5)
        yield url, experiments
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()
        log.close()


def time_to_row(page: Any, url: str, row_name: str) -> float:
    """Milliseconds from starting the navigation until ``row_name`` is visible."""
    page.goto("about:blank")
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    try:
        page.get_by_text(row_name, exact=True).first.wait_for(state="visible", timeout=180_000)
    except Exception:
        page.screenshot(path="/tmp/bench-console-mlflow-timeout.png")
        raise
    return (time.perf_counter() - started) * 1000


def summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--children", type=int, default=500)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--mlflow-python")
    args = parser.parse_args()
    python = mlflow_python(args.mlflow_python)
    version = subprocess.run([str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                             check=True, capture_output=True, text=True).stdout.strip()
    results: dict[str, Any] = {"mlflow": version, "jobs": args.jobs, "children": args.children}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seed_training_jobs(work / "console", args.jobs)
        seed_tuning_job(work / "console", "tune-500", args.children)
        newest_job = f"job-{args.jobs - 1:06d}"
        with opensage_server(work / "console") as opensage, \
                mlflow_ui(python, work, args.jobs, args.children) as (mlflow, experiments), \
                sync_playwright() as p:
            # The tuning page's first row is the best child; MLflow lists the newest run
            # first: wait for a row each shows at the top, read from the rendered page.
            pages = {
                "training_list": (opensage + "/_console/training-jobs", newest_job,
                                  f"{mlflow}/#/experiments/{experiments['training-jobs']}/runs",
                                  newest_job),
                "tuning_children": (opensage + "/_console/tuning-jobs/tune-500", None,
                                    f"{mlflow}/#/experiments/{experiments['tune-500']}/runs",
                                    f"tune-500-{args.children:03d}"),
            }
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for label, (ours, our_row, theirs, their_row) in pages.items():
                if our_row is None:
                    page.goto(ours)
                    our_row = page.locator("table.leaderboard tbody tr td a").first.inner_text()
                for url, row in ((ours, our_row), (theirs, their_row)):  # warm caches
                    time_to_row(page, url, row)
                page.screenshot(path=str(work / f"{label}-mlflow.png"))
                mine, other = [], []
                for _ in range(args.loads):
                    mine.append(time_to_row(page, ours, our_row))
                    other.append(time_to_row(page, theirs, their_row))
                results[label] = {"opensage": summary(mine), "mlflow_ui": summary(other),
                                  "mlflow_over_opensage": round(
                                      statistics.median(other) / statistics.median(mine), 2)}
            browser.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
