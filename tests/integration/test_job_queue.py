"""Twenty jobs submitted at once to a server with two job slots: none is lost, at most two
train at the same time, and every one completes."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
from botocore.config import Config

from opensage.server import start_in_thread
from opensage.settings import Settings
from tests.integration.test_training_jobs import BUCKET, job_request, regression_csv


def test_twenty_jobs_two_slots(tmp_path: Path):
    running = start_in_thread(Settings(data_dir=tmp_path, port=0, job_slots=2))
    try:
        kwargs = {"endpoint_url": running.url, "region_name": "us-east-1",
                  "aws_access_key_id": "k", "aws_secret_access_key": "s",
                  "config": Config(retries={"max_attempts": 1})}
        sm, s3 = boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs)
        s3.create_bucket(Bucket=BUCKET)
        for channel, seed in (("train", 1), ("validation", 2)):
            s3.put_object(Bucket=BUCKET, Key=f"data/{channel}/part.csv",
                          Body=regression_csv(200, seed)[0])
        names = [f"queued-{i:02d}" for i in range(20)]
        for name in names:
            sm.create_training_job(**job_request(name, HyperParameters={
                "objective": "reg:squarederror", "num_round": "5"}))
        deadline = time.monotonic() + 240
        while True:
            jobs = [sm.describe_training_job(TrainingJobName=n) for n in names]
            if all(j["TrainingJobStatus"] != "InProgress" for j in jobs):
                break
            assert time.monotonic() < deadline, [j["SecondaryStatus"] for j in jobs]
            time.sleep(0.2)
        assert [j["TrainingJobStatus"] for j in jobs] == ["Completed"] * 20

        # Busy intervals (Downloading .. end of Uploading) never overlap more than two deep.
        edges = []
        for job in jobs:
            transitions = job["SecondaryStatusTransitions"]
            start = next(t["StartTime"] for t in transitions if t["Status"] == "Downloading")
            end = transitions[-1]["StartTime"]
            edges += [(start.timestamp(), 1), (end.timestamp(), -1)]
        depth = peak = 0
        for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
            depth += step
            peak = max(peak, depth)
        assert 1 <= peak <= 2
    finally:
        running.stop()
