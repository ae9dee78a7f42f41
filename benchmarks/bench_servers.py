"""Several servers on one store (issue 18): the request rate of two ``opensage server``
processes on one PostgreSQL against one server on the same database, side by side in one run
(rounds alternate). The load is DescribeModel over keep-alive connections from client
processes (as ``bench_auth.py``), split evenly over the servers as a load balancer would.

PostgreSQL: ``OPENSAGE_TEST_DB_URL``, else a throwaway one from ``.ci/postgres.sh``.
Run: ``.venv/bin/python -m benchmarks.bench_servers [--seconds 5] [--clients 4] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path

import boto3
import sqlalchemy as sa

from benchmarks.bench_auth import rate_over
from opensage.testing import server_process

HEADERS = {"X-Amz-Target": "SageMaker.DescribeModel",
           "Content-Type": "application/x-amz-json-1.1"}


def database_url() -> str:
    if os.environ.get("OPENSAGE_TEST_DB_URL"):
        return os.environ["OPENSAGE_TEST_DB_URL"]
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(["bash", str(root / ".ci" / "postgres.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = database_url()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    rates: dict[str, list[float]] = {"one_server": [], "two_servers": []}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        env = {"OPENSAGE_DB_URL": url, "OPENSAGE_OBJECT_STORE_URL": f"{tmp}/objects",
               "OPENSAGE_SECRET_KEY_FILE": f"{tmp}/secret.key"}
        urls = [stack.enter_context(server_process(Path(tmp) / name, env=env))[0]
                for name in ("a", "b")]
        boto3.client("sagemaker", endpoint_url=urls[0], region_name="us-east-1",
                     aws_access_key_id="k", aws_secret_access_key="s").create_model(
            ModelName="bench-model", ExecutionRoleArn="arn:aws:iam::000000000000:role/x",
            PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                       "sagemaker-xgboost:1.7-1"})
        ports = [int(u.rsplit(":", 1)[1]) for u in urls]
        rate_over(ports, HEADERS, 1, args.clients)  # warm both
        for r in range(args.rounds):
            order = ("one_server", "two_servers") if r % 2 == 0 else ("two_servers",
                                                                      "one_server")
            for label in order:
                used = ports[:1] if label == "one_server" else ports
                rates[label].append(rate_over(used, HEADERS, args.seconds, args.clients))
    one, two = statistics.median(rates["one_server"]), statistics.median(rates["two_servers"])
    print(json.dumps({"cpus": os.cpu_count(), "clients": args.clients,
                      **{k: [round(v) for v in vs] for k, vs in rates.items()},
                      "two_over_one": round(two / one, 2)}, indent=2))


if __name__ == "__main__":
    main()
