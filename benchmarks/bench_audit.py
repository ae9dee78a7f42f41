"""CloudTrail figures: LookupEvents p50 over N seeded events (default 1,000,000, seeded
through ``AuditStore.append_many`` in bulk before the server starts), and the DescribeModel
rate with auditing on vs off (two servers on copies of the same seeded database, same run,
alternating rounds, ``--auth none``).

    .venv/bin/python -m benchmarks.bench_audit [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import boto3

from benchmarks.bench_auth import rate
from opensage.settings import Settings
from opensage.store.audit import AuditStore
from opensage.store.db import Database
from opensage.testing import server_process

NAMES = ["DescribeModel", "ListModels", "CreateModel", "PutObject", "GetObject",
         "DescribeEndpoint", "CreateTrainingJob", "ListTrainingJobs"]
USERS = [f"user{i}" for i in range(20)]
HEADERS = {"X-Amz-Target": "SageMaker.DescribeModel",
           "Content-Type": "application/x-amz-json-1.1"}


def seed(data_dir: Path, events: int) -> None:
    db = Database(Settings(data_dir=data_dir).database_url)
    db.prepare()
    store = AuditStore(db)
    start = time.time() - events  # one event a second, up to now
    batch: list[dict[str, object]] = []
    for i in range(events):
        name, user = NAMES[i % len(NAMES)], USERS[i % len(USERS)]
        record = json.dumps({"eventVersion": "1.09", "eventName": name,
                             "eventSource": "sagemaker.amazonaws.com",
                             "userIdentity": {"type": "IAMUser", "userName": user}})
        batch.append({"event_id": str(uuid.UUID(int=i)), "event_time": start + i,
                      "event_name": name, "event_source": "sagemaker.amazonaws.com",
                      "username": user, "resource_type": "AWS::SageMaker::Model",
                      "resource_name": f"model-{i % 5000}", "read_only": i % 2 == 0,
                      "access_key_id": f"AKIA{i % 50:016d}", "resources": [],
                      "record": record})
        if len(batch) == 20_000:
            store.append_many(batch)
            batch.clear()
    if batch:
        store.append_many(batch)
    db.dispose()


def lookup_p50(url: str, rounds: int) -> dict[str, float]:
    trail = boto3.client("cloudtrail", endpoint_url=url, region_name="us-east-1",
                         aws_access_key_id="x", aws_secret_access_key="x")
    cases = {"none": {}, "EventName": {"LookupAttributes": [
        {"AttributeKey": "EventName", "AttributeValue": "CreateModel"}]},
        "Username": {"LookupAttributes": [{"AttributeKey": "Username",
                                           "AttributeValue": "user7"}]},
        "ResourceName": {"LookupAttributes": [{"AttributeKey": "ResourceName",
                                               "AttributeValue": "model-42"}]},
        "EventName+page2": {"LookupAttributes": [
            {"AttributeKey": "EventName", "AttributeValue": "GetObject"}], "page": True}}
    out: dict[str, float] = {}
    for label, params in cases.items():
        params = dict(params)
        page = params.pop("page", False)
        times = []
        for _ in range(rounds):
            args = dict(params, MaxResults=50)
            if page:
                args["NextToken"] = trail.lookup_events(**args)["NextToken"]
            began = time.perf_counter()
            answer = trail.lookup_events(**args)
            times.append((time.perf_counter() - began) * 1000)
            assert len(answer["Events"]) == 50 or label == "ResourceName"
        out[label] = round(statistics.median(times), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        on_dir, off_dir = Path(tmp) / "on", Path(tmp) / "off"
        began = time.perf_counter()
        seed(on_dir, args.events)
        seeded = time.perf_counter() - began
        shutil.copytree(on_dir, off_dir)  # both servers on the same 1 M-row table
        with server_process(on_dir) as (on, _p1), \
                server_process(off_dir, env={"OPENSAGE_AUDIT": "false"}) as (off, _p2):
            lookups = lookup_p50(on, 30)
            for url in (on, off):
                boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1",
                             aws_access_key_id="x", aws_secret_access_key="x").create_model(
                    ModelName="bench-model",
                    ExecutionRoleArn="arn:aws:iam::000000000000:role/x",
                    PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                               "sagemaker-xgboost:1.7-1"})
            rates: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(args.rounds):
                rates["on"].append(rate(on, HEADERS, args.seconds, 2))
                rates["off"].append(rate(off, HEADERS, args.seconds, 2))
    on_rate, off_rate = statistics.median(rates["on"]), statistics.median(rates["off"])
    print(json.dumps({"events": args.events, "seed_seconds": round(seeded, 1),
                      "lookup_p50_ms": lookups,
                      "describe_model_rate": {"audit_on": round(on_rate),
                                              "audit_off": round(off_rate),
                                              "ratio": round(on_rate / off_rate, 3),
                                              "rounds": rates}}, indent=1))


if __name__ == "__main__":
    main()
