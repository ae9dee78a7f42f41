"""Does slow SageMaker API work stall other clients? GetObject (1 KiB) and InvokeEndpoint p99,
idle and while 4 clients run ``Search`` over 10,000 training jobs.

Target (issue 12): the loaded p99 of each stays within 2x its idle p99. Before the fix every
sagemaker/logs/cloudwatch/application-autoscaling call ran on the event loop, so a Search
(seconds over 10,000 jobs) held every other request.

The jobs are inserted as rows, as ``bench_api`` seeds models (training them is not what is
measured), into one data directory that each server under test gets a copy of. Each server is
an ``opensage server`` subprocess; ``--compare TREE`` also runs the server of another checkout
(``TREE/.venv/bin/opensage``, e.g. a worktree of main) in the same run, one after the other.
The probe is one keep-alive client that alternates GetObject and InvokeEndpoint; the Search
clients are processes looping on their own connections.

Run: ``.venv/bin/python -m benchmarks.bench_event_loop [--compare ../main] [--seconds 8]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.bench_invoke import (
    AUTH,
    BUCKET,
    clients,
    create_model,
    train_booster,
    wait_in_service,
)
from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.schema import resources, tags

HERE = Path(__file__).resolve().parents[1]
PROBE_TIMEOUT = 60.0  # a probe request slower than this ends the probe (recorded as this)
ROW = "0.5,-1.2,0.3,0.8,-0.1,1.5,-0.7,0.2,0.9,-0.4"
SEARCH = json.dumps({
    "Resource": "TrainingJob", "MaxResults": 10,
    "SearchExpression": {"Filters": [
        {"Name": "Metrics.validation:rmse", "Operator": "LessThan", "Value": "0.5"}]},
    "SortBy": "Metrics.validation:rmse", "SortOrder": "Ascending"}).encode()
SEARCH_HEADERS = {"X-Amz-Target": "SageMaker.Search", "Authorization": AUTH,
                  "Content-Type": "application/x-amz-json-1.1"}


# Seeded at the schema before the search index (revision 0006), which the tree compared
# with may not know; this tree's server upgrades its copy first (filling the index).
BEFORE_SEARCH_INDEX = "0006-1"


def seed_training_jobs(data_dir: Path, count: int) -> None:
    """Completed training jobs as CreateTrainingJob and the runner leave them, in bulk."""
    settings = Settings(data_dir=data_dir)
    db = Database(settings.database_url)
    db.migrate(BEFORE_SEARCH_INDEX)
    now = time.time() - count
    rows, tag_rows = [], []
    for i in range(count):
        name = f"job-{i:06d}"
        arn = settings.arn("sagemaker", f"training-job/{name}")
        created = now + i
        rmse = (i * 7919 % 10_000) / 10_000
        rows.append({"kind": "training-job", "name": name, "arn": arn, "status": "Completed",
                     "creation_time": created, "last_modified_time": created + 60,
                     "body": {
                         "TrainingJobName": name, "TrainingJobArn": arn,
                         "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed",
                         "CreationTime": created, "LastModifiedTime": created + 60,
                         "TrainingStartTime": created + 1, "TrainingEndTime": created + 60,
                         "AlgorithmSpecification": {
                             "TrainingImage": "sagemaker-xgboost:1.7-1",
                             "TrainingInputMode": "File", "MetricDefinitions": []},
                         "RoleArn": "arn:aws:iam::000000000000:role/r",
                         "HyperParameters": {"eta": "0.3", "max_depth": str(3 + i % 5),
                                             "num_round": "50"},
                         "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                            "VolumeSizeInGB": 5},
                         "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                         "OutputDataConfig": {"S3OutputPath": "s3://b/out/", "KmsKeyId": ""},
                         "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/out/{name}/model"},
                         "FinalMetricDataList": [
                             {"MetricName": "validation:rmse", "Value": rmse,
                              "Timestamp": created + 60},
                             {"MetricName": "train:rmse", "Value": rmse / 2,
                              "Timestamp": created + 60}]}})
        tag_rows.append({"arn": arn, "key": "team", "value": f"team-{i % 10}"})
    with db.transaction() as conn:
        for start in range(0, count, 5_000):
            conn.execute(sa.insert(resources), rows[start:start + 5_000])
            conn.execute(sa.insert(tags), tag_rows[start:start + 5_000])
    db.dispose()


@contextmanager
def server(tree: Path, data_dir: Path) -> Iterator[str]:
    """``opensage server`` of the checkout ``tree`` on ``data_dir``; yields its URL."""
    cmd = [str(tree / ".venv" / "bin" / "opensage"), "server", "--port", "0", "--data-dir",
           str(data_dir), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:
            match = re.match(r"PORT=(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        if port is None:
            raise RuntimeError("server did not report its port")
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/_opensage/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _connect(port: int, timeout: float | None = PROBE_TIMEOUT) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.connect()
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _searcher(port: int, ready: Any, completed: Any) -> None:
    conn = _connect(port, timeout=None)
    ready.put(True)
    while True:
        conn.request("POST", "/", body=SEARCH, headers=SEARCH_HEADERS)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        response.read()
        with completed.get_lock():
            completed.value += 1


def probe(port: int, endpoint: str, seconds: float) -> dict[str, dict[str, float]]:
    """Alternate GetObject and InvokeEndpoint for ``seconds``; percentiles in ms."""
    conn = _connect(port)
    invoke_headers = {"Content-Type": "text/csv", "Authorization": AUTH}
    latencies: dict[str, list[float]] = {"get_object_1k": [], "invoke_endpoint": []}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for label, method, path, body, headers in (
                ("get_object_1k", "GET", f"/{BUCKET}/one-kib", None, {}),
                ("invoke_endpoint", "POST", f"/endpoints/{endpoint}/invocations", ROW.encode(),
                 invoke_headers)):
            start = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except TimeoutError:  # stuck behind the Searches: as slow as we were willing to wait
                latencies[label].append(PROBE_TIMEOUT)
                conn.close()
                return {label: {**_percentiles(values), "timed_out": True}
                        for label, values in latencies.items() if values}
            assert response.status == 200, (label, response.status)
            latencies[label].append(time.perf_counter() - start)
        time.sleep(0.002)  # a client, not a load
    conn.close()
    return {label: _percentiles(values) for label, values in latencies.items()}


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)

    def pick(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)

    return {"n": len(values), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
            "max_ms": round(values[-1] * 1000, 2)}


def measure(tree: Path, seeded: Path, seconds: float, searchers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        shutil.copytree(seeded, data_dir)
        if tree == HERE:
            db = Database(Settings(data_dir=data_dir).database_url)
            db.migrate()
            db.dispose()
        with server(tree, data_dir) as url:
            port = int(url.rsplit(":", 1)[1])
            c = clients(url)
            name = create_model(c, train_booster())
            c["s3"].put_object(Bucket=BUCKET, Key="one-kib", Body=os.urandom(1024))
            c["sagemaker"].create_endpoint(EndpointName=name, EndpointConfigName=name)
            wait_in_service(c["sagemaker"], name)
            probe(port, name, 1.0)  # warm up: connections, the worker's first predictions
            idle = probe(port, name, seconds)
            ctx = mp.get_context("spawn")
            ready, completed = ctx.Queue(), ctx.Value("i", 0)
            procs = [ctx.Process(target=_searcher, args=(port, ready, completed))
                     for _ in range(searchers)]
            for p in procs:
                p.start()
            for _ in procs:  # (spawned processes take seconds to import on a busy machine)
                ready.get(timeout=120)
            time.sleep(0.5)  # every searcher has a Search in flight
            started = time.perf_counter()
            loaded = probe(port, name, seconds)
            elapsed = time.perf_counter() - started
            searches = completed.value
            for p in procs:
                p.terminate()
                p.join()
    result: dict[str, Any] = {"idle": idle, "loaded": loaded,
                              "searches_completed": searches,
                              "searches_per_s": round(searches / (elapsed + 0.5), 2)}
    result["p99_ratio"] = {label: round(loaded[label]["p99_ms"] / idle[label]["p99_ms"], 1)
                           for label in loaded}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--searchers", type=int, default=4)
    parser.add_argument("--compare", type=Path, action="append", default=[],
                        help="another checkout (with its .venv) to measure first")
    args = parser.parse_args()
    results: dict[str, Any] = {"jobs": args.jobs, "searchers": args.searchers,
                               "python": sys.version.split()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seeded"
        seed_training_jobs(seeded, args.jobs)
        for tree in [*args.compare, HERE]:
            label = "this" if tree == HERE else str(tree)
            results[label] = measure(tree.resolve(), seeded, args.seconds, args.searchers)
            print(json.dumps({label: results[label]}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
