"""Processing job overhead: ``CreateProcessingJob`` -> ``Completed`` minus the time the
user's script spends running, measured inside the script (from its first line to its last),
with the framework environment already built (one warm-up job first).

Against one ``opensage server --port 0`` subprocess on a temporary data directory, with the
machine's shared frameworks directory (``OPENSAGE_FRAMEWORKS_DIR``, default the tests'
``~/.cache/opensage-test/frameworks``) so the scikit-learn 1.2-1 environment is built at most
once. The job is what ``SKLearnProcessor.run`` sends: the script (a ``code`` input) reads a
300-row CSV input with numpy, splits it and writes train/test CSVs to two outputs; its own
run time (after the interpreter has started) is printed as ``script_seconds=``. The job is
polled with DescribeProcessingJob every 20 ms. The overhead therefore holds: the API call,
staging both inputs at their LocalPath, the private mount namespace and the interpreter's
start, uploading both outputs, and recording the outcome. Target: < 1 s.

Run: ``.venv/bin/python -m benchmarks.bench_processing [--repeats 7]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import textwrap
import time
from typing import Any

from benchmarks._script_jobs import framework_server, overhead

ROLE = "arn:aws:iam::000000000000:role/opensage"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
BUCKET = "bench-processing"
SCRIPT = """
    import time
    started = time.perf_counter()
    import glob, os
    import numpy as np

    files = glob.glob("/opt/ml/processing/input/data/*.csv")
    data = np.vstack([np.loadtxt(f, delimiter=",") for f in files])
    cut = int(len(data) * 0.8)
    np.savetxt("/opt/ml/processing/train/train.csv", data[:cut], delimiter=",")
    np.savetxt("/opt/ml/processing/test/test.csv", data[cut:], delimiter=",")
    print(f"script_seconds={time.perf_counter() - started:.6f}", flush=True)
"""
GROUP = "/aws/sagemaker/ProcessingJobs"


def request(name: str) -> dict[str, Any]:
    def s3_input(input_name: str, uri: str, local: str) -> dict[str, Any]:
        return {"InputName": input_name, "AppManaged": False, "S3Input": {
            "S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}

    return {
        "ProcessingJobName": name, "RoleArn": ROLE,
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large",
                                                  "InstanceCount": 1, "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": [
            "python3", "/opt/ml/processing/input/code/preprocess.py"]},
        "ProcessingInputs": [
            s3_input("input-1", f"s3://{BUCKET}/raw", "/opt/ml/processing/input/data"),
            s3_input("code", f"s3://{BUCKET}/code/preprocess.py",
                     "/opt/ml/processing/input/code")],
        "ProcessingOutputConfig": {"Outputs": [
            {"OutputName": out, "AppManaged": False, "S3Output": {
                "S3Uri": f"s3://{BUCKET}/{name}/output/{out}",
                "LocalPath": f"/opt/ml/processing/{out}", "S3UploadMode": "EndOfJob"}}
            for out in ("train", "test")]}}


def run_job(sm: Any, logs: Any, name: str, timeout: float) -> dict[str, float]:
    started = time.perf_counter()
    sm.create_processing_job(**request(name))
    while True:
        job = sm.describe_processing_job(ProcessingJobName=name)
        if job["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{name} did not finish in {timeout} s")
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if job["ProcessingJobStatus"] != "Completed":
        raise RuntimeError(f"{name}: {job.get('FailureReason')}")
    return overhead(logs, GROUP, name, wall)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from tests.integration.test_training_jobs import regression_csv

    with framework_server() as client:
        sm, s3, logs = client("sagemaker"), client("s3"), client("logs")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="code/preprocess.py",
                      Body=textwrap.dedent(SCRIPT).encode())
        s3.put_object(Bucket=BUCKET, Key="raw/data.csv", Body=regression_csv(300, 1)[0])
        warm_up = run_job(sm, logs, "warm-up", 1800)  # builds the environment if needed
        runs = [run_job(sm, logs, f"processing-{i}", 300) for i in range(args.repeats)]
    overheads = [r["overhead_s"] for r in runs]
    print(json.dumps({
        "warm_up_wall_s": round(warm_up["wall_s"], 3),
        "repeats": args.repeats,
        "median_overhead_s": round(statistics.median(overheads), 3),
        "min_overhead_s": round(min(overheads), 3), "max_overhead_s": round(max(overheads), 3),
        "median_script_s": round(statistics.median(r["script_s"] for r in runs), 3),
        "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "cpus": os.cpu_count(),
    }, indent=1))


if __name__ == "__main__":
    main()
