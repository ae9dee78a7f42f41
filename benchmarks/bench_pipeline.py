"""Pipeline engine overhead: ``StartPipelineExecution`` -> ``Succeeded`` of a chain of N
trivial processing steps, minus the steps' own job time.

Against one ``opensage server --port 0`` subprocess on a temporary data directory, with the
machine's shared frameworks directory (the scikit-learn 1.2-1 environment built at most
once; a warm-up processing job first). The pipeline is N Processing steps in a chain (each
``DependsOn`` the previous, each one ``python3`` script that prints a line), so nothing runs
in parallel. Each step's job time is its child's ``CreationTime`` -> ``ProcessingEndTime``
(DescribeProcessingJob): what the processing service itself takes, measured by
``bench_processing.py``. What is left of the execution's wall time (polled every 20 ms)
is the pipeline's own cost: the API call, the engine noticing a child ended, evaluating the
next step's arguments and creating its job, and recording the end. Reported per step, with
the start latency of each step after its dependency's job ended (child i's CreationTime
minus child i-1's ProcessingEndTime), and the same chain of N Condition steps (no jobs).
Target (issue 15): < 0.5 s per step.

Run: ``.venv/bin/python -m benchmarks.bench_pipeline [--steps 5] [--repeats 3]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/opensage"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
BUCKET = "bench-pipeline"


def processing_arguments() -> dict[str, Any]:
    return {
        "RoleArn": ROLE,
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large",
                                                  "InstanceCount": 1, "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": [
            "python3", "/opt/ml/processing/input/code/step.py"]},
        "ProcessingInputs": [{"InputName": "code", "AppManaged": False, "S3Input": {
            "S3Uri": f"s3://{BUCKET}/code/step.py", "LocalPath": "/opt/ml/processing/input/code",
            "S3DataType": "S3Prefix", "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}]}


def chain(n: int, kind: str) -> str:
    steps = []
    for i in range(n):
        if kind == "Processing":
            step: dict[str, Any] = {"Name": f"S{i}", "Type": "Processing",
                                    "Arguments": processing_arguments()}
        else:
            step = {"Name": f"S{i}", "Type": "Condition", "Arguments": {
                "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 1}],
                "IfSteps": [], "ElseSteps": []}}
        if i:
            step["DependsOn"] = [f"S{i - 1}"]
        steps.append(step)
    return json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": steps})


def run(sm: Any, pipeline: str, timeout: float) -> tuple[float, str]:
    started = time.perf_counter()
    arn = sm.start_pipeline_execution(PipelineName=pipeline)["PipelineExecutionArn"]
    while True:
        status = sm.describe_pipeline_execution(
            PipelineExecutionArn=arn)["PipelineExecutionStatus"]
        if status in ("Succeeded", "Failed", "Stopped"):
            break
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{pipeline} did not finish in {timeout} s")
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if status != "Succeeded":
        raise RuntimeError(f"{pipeline}: {status}")
    return wall, arn


def measure_jobs(sm: Any, arn: str, n: int, wall: float) -> dict[str, float]:
    steps = {s["StepName"]: s for s in sm.list_pipeline_execution_steps(
        PipelineExecutionArn=arn, MaxResults=100)["PipelineExecutionSteps"]}
    jobs = [sm.describe_processing_job(ProcessingJobName=steps[f"S{i}"]["Metadata"][
        "ProcessingJob"]["Arn"].split("/")[-1]) for i in range(n)]
    job_time = sum(j["ProcessingEndTime"].timestamp() - j["CreationTime"].timestamp()
                   for j in jobs)
    gaps = [jobs[i]["CreationTime"].timestamp() - jobs[i - 1]["ProcessingEndTime"].timestamp()
            for i in range(1, n)]
    return {"wall_s": wall, "jobs_s": job_time, "overhead_per_step_s": (wall - job_time) / n,
            "median_start_latency_s": statistics.median(gaps) if gaps else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import boto3
    from botocore.config import Config

    from opensage.testing import opensage_server

    frameworks = os.environ.get("OPENSAGE_FRAMEWORKS_DIR") or os.environ.get(
        "OPENSAGE_TEST_FRAMEWORKS_DIR") or str(Path.home() / ".cache/opensage-test/frameworks")
    os.environ["OPENSAGE_FRAMEWORKS_DIR"] = os.environ["OPENSAGE_TEST_FRAMEWORKS_DIR"] = (
        frameworks)
    n = args.steps
    with tempfile.TemporaryDirectory() as data_dir, opensage_server(Path(data_dir)) as url:
        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=url, region_name=REGION,
                                aws_access_key_id="test", aws_secret_access_key="test",
                                config=Config(retries={"max_attempts": 1}))

        sm, s3 = client("sagemaker"), client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="code/step.py", Body=b"print('step')\n")
        sm.create_pipeline(PipelineName="warm", RoleArn=ROLE,
                           PipelineDefinition=chain(1, "Processing"))
        run(sm, "warm", 1800)  # builds the environment if needed
        sm.create_pipeline(PipelineName="jobs", RoleArn=ROLE,
                           PipelineDefinition=chain(n, "Processing"))
        sm.create_pipeline(PipelineName="conditions", RoleArn=ROLE,
                           PipelineDefinition=chain(n, "Condition"))
        job_runs = []
        for _ in range(args.repeats):
            wall, arn = run(sm, "jobs", 600)
            job_runs.append(measure_jobs(sm, arn, n, wall))
        condition_walls = [run(sm, "conditions", 60)[0] for _ in range(args.repeats)]
    per_step = [r["overhead_per_step_s"] for r in job_runs]
    print(json.dumps({
        "steps": n, "repeats": args.repeats,
        "median_overhead_per_step_s": round(statistics.median(per_step), 3),
        "max_overhead_per_step_s": round(max(per_step), 3),
        "median_start_latency_s": round(statistics.median(
            r["median_start_latency_s"] for r in job_runs), 3),
        "median_wall_s": round(statistics.median(r["wall_s"] for r in job_runs), 3),
        "median_jobs_s": round(statistics.median(r["jobs_s"] for r in job_runs), 3),
        "condition_chain_median_wall_s": round(statistics.median(condition_walls), 3),
        "condition_per_step_s": round(statistics.median(condition_walls) / n, 3),
        "cpus": os.cpu_count(),
    }, indent=1))


if __name__ == "__main__":
    main()
