"""SageMaker API speed: DescribeModel request rate and ListModels latency with 100,000 models.

Targets (issue 3): >= 2,000 DescribeModel req/s with one server worker; ListModels p50 < 20 ms
with 100,000 models stored. Run: ``.venv/bin/python -m benchmarks.bench_api [--models N]``.
The server is a subprocess with one uvicorn worker; the load comes from client processes on
the same machine (so both share its cores).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from benchmarks._load import run_load, summarize
from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.schema import resources
from opensage.testing import opensage_server

TARGET = {"Content-Type": "application/x-amz-json-1.1",
          "Authorization": "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/sagemaker/"
                           "aws4_request, SignedHeaders=host, Signature=0"}


def seed_models(data_dir: Path, count: int) -> None:
    """Insert rows as CreateModel would, in bulk (the API path is measured separately)."""
    settings = Settings(data_dir=data_dir)
    db = Database(settings.database_url)
    db.migrate()
    now = time.time() - count
    rows = []
    for i in range(count):
        name = f"model-{i:06d}"
        arn = settings.arn("sagemaker", f"model/{name}")
        created = now + i
        rows.append({"kind": "model", "name": name, "arn": arn, "status": None,
                     "creation_time": created, "last_modified_time": created,
                     "body": {"ModelName": name, "ModelArn": arn, "CreationTime": created,
                              "PrimaryContainer": {"Image": "img", "Environment": {}},
                              "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r",
                              "EnableNetworkIsolation": False}})
    with db.transaction() as conn:
        for start in range(0, count, 10_000):
            conn.execute(sa.insert(resources), rows[start:start + 10_000])
    db.dispose()


def post(url: str, operation: str, body: dict) -> dict:
    import urllib.request

    request = urllib.request.Request(url + "/", data=json.dumps(body).encode(), method="POST",
                                     headers={**TARGET, "X-Amz-Target": f"SageMaker.{operation}"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def time_calls(url: str, operation: str, body: dict, n: int) -> dict[str, float]:
    latencies = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        post(url, operation, body)
        latencies.append(time.perf_counter() - t0)
    return summarize(latencies, 0, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        t0 = time.perf_counter()
        seed_models(data_dir, args.models)
        seeded = time.perf_counter() - t0
        with opensage_server(data_dir) as url:
            body = json.dumps({"ModelName": f"model-{args.models // 2:06d}"}).encode()
            describe = run_load(url, "POST", "/", body=body, seconds=args.seconds,
                                clients=args.clients,
                                headers={**TARGET, "X-Amz-Target": "SageMaker.DescribeModel"})
            results = {
                "models_stored": args.models,
                "seed_seconds": round(seeded, 1),
                "describe_model": describe,
                "list_models_default": time_calls(url, "ListModels", {}, 200),
                "list_models_100_by_name": time_calls(
                    url, "ListModels", {"SortBy": "Name", "MaxResults": 100}, 200),
                "list_models_name_contains": time_calls(
                    url, "ListModels", {"NameContains": "0421", "MaxResults": 100}, 50),
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
