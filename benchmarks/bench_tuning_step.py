"""One tuning reconcile step when one child of many has ended: its time, and the bytes it
writes to the database (SQLite, in-process; the children exist only as rows).

Runs against whichever opensage is importable, so the same script measures main (trials in
the tuning job's row) and this branch (trials in ``tuning_trials``):

    PYTHONPATH=/path/to/main/src .venv/bin/python -m benchmarks.bench_tuning_step
    .venv/bin/python -m benchmarks.bench_tuning_step
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from opensage.services.tuning.jobs import TuningService
from opensage.services.wiring import build_services
from opensage.settings import Settings

KIND = "hyper-parameter-tuning-job"
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def tuning_request(name: str, *, max_jobs: int, parallel: int) -> dict[str, Any]:
    channels = [{"ChannelName": channel, "ContentType": "text/csv", "DataSource": {
        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://bench/data/{channel}",
                         "S3DataDistributionType": "FullyReplicated"}}}
        for channel in ("train", "validation")]
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random", "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs,
                                                     "MaxParallelTrainingJobs": parallel},
            "HyperParameterTuningJobObjective": {"Type": "Minimize",
                                                 "MetricName": "validation:rmse"},
            "ParameterRanges": {"ContinuousParameterRanges": [
                {"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5"}]}},
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"objective": "reg:squarederror", "num_round": "8"},
            "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
            "RoleArn": "arn:aws:iam::123456789012:role/bench", "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": "s3://bench/tuning/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                               "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}}}


class Children:
    def create(self, params: dict[str, Any]) -> str:
        return str(params["TrainingJobName"])

    def stop(self, name: str) -> None:
        pass


def seed(services: Any, tuning: TuningService, trials: int) -> list[str]:
    """A tuning job with ``trials`` launched, running children (rows InProgress)."""
    ctx = services.context
    tuning.create(tuning_request("bench", max_jobs=trials, parallel=10))
    names = [f"bench-{n:03d}-00000000" for n in range(1, trials + 1)]
    documents = [{"TrainingJobName": name, "TrainingJobArn": f"arn:{name}",
                  "TunedHyperParameters": {"eta": "0.1", "max_depth": "3"},
                  "TrainingJobStatus": "InProgress", "ObjectiveStatus": "Pending",
                  "Launched": True, "CreationTime": 1.0} for name in names]
    try:
        from opensage.store.trials import TuningTrial  # this branch
        tuning.trials.write(added=[TuningTrial(
            "bench", n, name, f"arn:{name}", 1.0, {"eta": "0.1", "max_depth": "3"},
            launched=True) for n, name in enumerate(names, 1)])
    except ImportError:  # main: the trials are a list in the row
        row = ctx.resources.get(KIND, "bench")
        body = dict(row.body)
        body["OpensageTuning"] = {**body["OpensageTuning"], "Trials": documents}
        ctx.resources.update(KIND, "bench", body, now=ctx.now(), status=row.status)
    for name in names:
        ctx.resources.create("training-job", name, f"arn:{name}", {
            "TrainingJobName": name, "TrainingJobStatus": "InProgress"}, now=1.0,
            status="InProgress")
    return names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=Path(tmp), port=0,
                                           preload_algorithms=False))
        tuning = TuningService(services.context, Children())  # type: ignore[arg-type]
        names = seed(services, tuning, args.trials)
        written: list[int] = []

        @event.listens_for(services.context.db.engine, "before_cursor_execute")
        def count(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith(("UPDATE", "INSERT")):
                written.append(sum(len(str(p)) for p in (
                    parameters if isinstance(parameters, (list, tuple)) else [parameters])))

        tuning._step("bench")  # warm: observes nothing new
        times, sizes = [], []
        for name in names[:args.steps]:
            services.context.resources.update("training-job", name, {
                "TrainingJobName": name, "TrainingJobStatus": "Completed",
                "TrainingEndTime": 2.0,
                "FinalMetricDataList": [{"MetricName": "validation:rmse", "Value": 0.5}]},
                now=2.0, status="Completed")
            written.clear()
            start = time.perf_counter()
            tuning._step("bench")
            times.append(time.perf_counter() - start)
            sizes.append(sum(written))
        services.context.db.dispose()
    print(f"trials={args.trials} steps={args.steps}: step p50 "
          f"{statistics.median(times) * 1000:.1f} ms, p90 "
          f"{statistics.quantiles(times, n=10)[-1] * 1000:.1f} ms; written per step "
          f"{statistics.median(sizes) / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
