"""Deploy time: ``CreateEndpoint`` → ``InService`` for the built-in XGBoost image, one
``ml.m5.large`` instance, polled with DescribeEndpoint every 10 ms; median of ``--repeats``
endpoints created one after the other on one ``opensage server`` subprocess (each deleted
before the next). Also times the worker alone: ``python -m opensage.serving.worker`` start
until ``/ping`` answers, which is most of it.

Run: ``.venv/bin/python -m benchmarks.bench_deploy [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.bench_invoke import (
    clients,
    create_model,
    log,
    machine,
    opensage,
    train_booster,
    wait_in_service,
)

TARGET_SECONDS = 2.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    booster = train_booster()
    times: list[float] = []
    first_answer: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, opensage(Path(tmp)) as (url, _proc):
        c = clients(url)
        config = create_model(c, booster)
        sm, runtime = c["sagemaker"], c["sagemaker-runtime"]
        for i in range(args.repeats):
            name = f"deploy-{i}"
            started = time.perf_counter()
            sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
            wait_in_service(sm, name)
            ready = time.perf_counter()
            runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv",
                                    Body=",".join(["0.5"] * 10))
            answered = time.perf_counter()
            times.append(ready - started)
            first_answer.append(answered - started)
            log(f"{name}: InService after {ready - started:.3f} s")
            sm.delete_endpoint(EndpointName=name)
            time.sleep(0.5)  # let the deleted endpoint's worker exit
    median = statistics.median(times)
    print(json.dumps({
        "machine": machine(), "repeats": args.repeats,
        "create_to_in_service_s": [round(t, 3) for t in times],
        "median_s": round(median, 3), "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "median_create_to_first_prediction_s": round(statistics.median(first_answer), 3),
        "target_s": TARGET_SECONDS, "ratio_to_target": round(median / TARGET_SECONDS, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
