"""What ``EnableNetworkIsolation`` costs a model: the built-in XGBoost image, one
``ml.m5.large`` instance, on one ``opensage server`` subprocess. For a model without and one
with isolation: ``CreateEndpoint`` → ``InService`` (median of ``--repeats`` endpoints, each
deleted before the next; an isolated worker is launched into a namespace of its own instead
of forked from the warm fork server) and the InvokeEndpoint round trip through boto3 (p50 and
p99 of ``--calls`` sequential calls of one CSV row: the isolated worker serves on the
socket the server bound, so no difference is expected).

Run: ``.venv/bin/python -m benchmarks.bench_isolation [--repeats 5] [--calls 500]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_invoke import (
    BUCKET,
    ROLE,
    XGB_IMAGE,
    clients,
    log,
    machine,
    model_tar_gz,
    opensage,
    train_booster,
    wait_in_service,
)


def models(c: dict[str, Any], booster: Any) -> None:
    c["s3"].create_bucket(Bucket=BUCKET)
    c["s3"].put_object(Bucket=BUCKET, Key="iso/model.tar.gz", Body=model_tar_gz(booster))
    for name, isolated in (("open", False), ("isolated", True)):
        c["sagemaker"].create_model(
            ModelName=name, ExecutionRoleArn=ROLE, EnableNetworkIsolation=isolated,
            PrimaryContainer={"Image": XGB_IMAGE,
                              "ModelDataUrl": f"s3://{BUCKET}/iso/model.tar.gz"})
        c["sagemaker"].create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])


def measure(c: dict[str, Any], config: str, repeats: int, calls: int) -> dict[str, Any]:
    sm, runtime = c["sagemaker"], c["sagemaker-runtime"]
    deploys: list[float] = []
    latencies: list[float] = []
    row = ",".join(["0.5"] * 10)
    for i in range(repeats):
        name = f"{config}-{i}"
        started = time.perf_counter()
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        wait_in_service(sm, name)
        deploys.append(time.perf_counter() - started)
        log(f"{name}: InService after {deploys[-1]:.3f} s")
        if i == repeats - 1:
            for _ in range(calls):
                t = time.perf_counter()
                runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=row)
                latencies.append(time.perf_counter() - t)
        sm.delete_endpoint(EndpointName=name)
        time.sleep(0.5)  # let the deleted endpoint's worker exit
    latencies.sort()
    return {"create_to_in_service_s": [round(t, 3) for t in deploys],
            "median_in_service_s": round(statistics.median(deploys), 3),
            "invoke_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "invoke_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    booster = train_booster()
    with tempfile.TemporaryDirectory() as tmp, opensage(Path(tmp)) as (url, _proc):
        c = clients(url)
        models(c, booster)
        # the fork server warms up with the first endpoint: measure the open model first
        results = {config: measure(c, config, args.repeats, args.calls)
                   for config in ("open", "isolated")}
    print(json.dumps({"machine": machine(), "repeats": args.repeats, "calls": args.calls,
                      **results}, indent=2))


if __name__ == "__main__":
    main()
