"""``Search`` and ``ListTrainingJobs`` latency over many stored training jobs (issue 12).

Targets: ``Search`` over 10,000 training jobs, filtered on a metric and sorted by it,
p50 < 50 ms; ``ListTrainingJobs`` with 100,000 training jobs stored, p50 < 20 ms. Rows are
seeded directly through the store (the create path is measured elsewhere); a fifth of the
jobs carry tags. Run: ``.venv/bin/python -m benchmarks.bench_search [--search-jobs N]
[--list-jobs N]``. The server is a subprocess; calls are made one at a time.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from benchmarks._load import summarize
from benchmarks.bench_api import post
from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.schema import resources, tags
from opensage.testing import opensage_server


def training_body(name: str, arn: str, created: float, rmse: float) -> dict:
    """A Describe document shaped like a completed built-in job's."""
    return {
        "TrainingJobName": name, "TrainingJobArn": arn, "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed", "CreationTime": created, "LastModifiedTime": created,
        "TrainingStartTime": created + 1, "TrainingEndTime": created + 30,
        "TrainingTimeInSeconds": 29, "BillableTimeInSeconds": 29,
        "HyperParameters": {"num_round": "100", "max_depth": str(3 + int(rmse * 10) % 6),
                            "eta": "0.1", "objective": "reg:squarederror"},
        "AlgorithmSpecification": {"TrainingImage": "xgboost:1.7-1", "TrainingInputMode": "File",
                                   "MetricDefinitions": []},
        "RoleArn": "arn:aws:iam::000000000000:role/r",
        "InputDataConfig": [{"ChannelName": c, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://bucket/data/{c}/",
            "S3DataDistributionType": "FullyReplicated"}}, "ContentType": "text/csv"}
            for c in ("train", "validation")],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/output/{name}/model.tar.gz"},
        "FinalMetricDataList": [
            {"MetricName": "validation:rmse", "Value": rmse, "Timestamp": created + 30},
            {"MetricName": "train:rmse", "Value": rmse * 0.8, "Timestamp": created + 30}],
        "SecondaryStatusTransitions": [
            {"Status": s, "StartTime": created + i, "EndTime": created + i + 1,
             "StatusMessage": s} for i, s in enumerate(
                ("Starting", "Downloading", "Training", "Uploading", "Completed"))],
        "EnableNetworkIsolation": False, "EnableManagedSpotTraining": False,
    }


# Rows are inserted at the schema before the search index, then upgraded: revision 0006
# fills the index from them as it would an existing data directory (timed).
BEFORE_SEARCH_INDEX = "0006-1"


def seed_training_jobs(data_dir: Path, count: int) -> float:
    """Seed, then upgrade to the head; the seconds the upgrade took."""
    settings = Settings(data_dir=data_dir)
    db = Database(settings.database_url)
    db.migrate(BEFORE_SEARCH_INDEX)
    rng = random.Random(7)
    now = time.time() - count
    rows, tag_rows = [], []
    for i in range(count):
        name = f"job-{i:06d}"
        arn = settings.arn("sagemaker", f"training-job/{name}")
        created = now + i
        rows.append({"kind": "training-job", "name": name, "arn": arn, "status": "Completed",
                     "creation_time": created, "last_modified_time": created,
                     "body": training_body(name, arn, created, rng.uniform(0.1, 2.0))})
        if i % 5 == 0:
            tag_rows += [{"arn": arn, "key": "team", "value": f"t{i % 3}"},
                         {"arn": arn, "key": "project", "value": "bench"}]
    with db.transaction() as conn:
        for start in range(0, count, 10_000):
            conn.execute(sa.insert(resources), rows[start:start + 10_000])
        for start in range(0, len(tag_rows), 10_000):
            conn.execute(sa.insert(tags), tag_rows[start:start + 10_000])
    started = time.perf_counter()
    db.migrate()
    db.dispose()
    return time.perf_counter() - started


def time_calls(url: str, operation: str, body: dict, n: int) -> dict[str, float]:
    post(url, operation, body)  # warm: the first call after a start pays for imports
    latencies = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        post(url, operation, body)
        latencies.append(time.perf_counter() - t0)
    return summarize(latencies, 0, time.perf_counter() - started)


SEARCH = {"Resource": "TrainingJob", "SortBy": "Metrics.validation:rmse",
          "SortOrder": "Ascending", "MaxResults": 20,
          "SearchExpression": {"Filters": [{"Name": "Metrics.validation:rmse",
                                            "Operator": "LessThan", "Value": "0.5"}]}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--search-jobs", type=int, default=10_000)
    parser.add_argument("--list-jobs", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "search"
        upgrade = seed_training_jobs(data_dir, args.search_jobs)
        results[f"upgrade_{args.search_jobs}_jobs_s"] = round(upgrade, 2)
        with opensage_server(data_dir) as url:
            found = post(url, "Search", SEARCH)["Results"]
            assert found and all("Tags" in r["TrainingJob"] for r in found)
            results[f"search_{args.search_jobs}_metric_filter_sort"] = time_calls(
                url, "Search", SEARCH, args.calls)
            by_tag = {**SEARCH, "SearchExpression": {"Filters": [
                {"Name": "Tags.team", "Operator": "Equals", "Value": "t1"}]}}
            results[f"search_{args.search_jobs}_tag_filter_metric_sort"] = time_calls(
                url, "Search", by_tag, args.calls)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "list"
        seed_training_jobs(data_dir, args.list_jobs)
        with opensage_server(data_dir) as url:
            results[f"list_training_jobs_{args.list_jobs}_default"] = time_calls(
                url, "ListTrainingJobs", {}, 200)
            results[f"list_training_jobs_{args.list_jobs}_100_completed"] = time_calls(
                url, "ListTrainingJobs", {"MaxResults": 100, "StatusEquals": "Completed"}, 100)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
