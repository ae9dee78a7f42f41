"""Script-mode training overhead: ``CreateTrainingJob`` -> ``Completed`` minus the time the
user's script spends running, measured inside the script (from its first line to its last),
with the framework environment already built (one warm-up job first).

Against one ``opensage server --port 0`` subprocess on a temporary data directory, with the
machine's shared frameworks directory (``OPENSAGE_FRAMEWORKS_DIR``, default the tests'
``~/.cache/opensage-test/frameworks``) so the scikit-learn 1.2-1 environment is built at most
once. The script imports scikit-learn, fits a Ridge on 300 rows read from its channel and
saves the model with joblib; its own run time is printed as ``script_seconds=``. The job is
polled with DescribeTrainingJob every 20 ms. The overhead therefore holds: the API call,
downloading the channel and ``sourcedir.tar.gz``, unpacking it, the interpreter's start,
packing and uploading ``model.tar.gz``, and recording the outcome. Target: < 1 s.

Run: ``.venv/bin/python -m benchmarks.bench_script_mode [--repeats 7]``; prints JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tarfile
import textwrap
import time
from typing import Any

from benchmarks._script_jobs import REGION, framework_server, overhead

ROLE = "arn:aws:iam::000000000000:role/opensage"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
BUCKET = "bench-script-mode"
SCRIPT = """
    import time
    started = time.perf_counter()
    import glob, os
    import joblib
    import numpy as np
    from sklearn.linear_model import Ridge

    files = glob.glob(os.environ["SM_CHANNEL_TRAIN"] + "/*.csv")
    data = np.vstack([np.loadtxt(f, delimiter=",") for f in files])
    model = Ridge(alpha=0.5).fit(data[:, 1:], data[:, 0])
    joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
    print(f"script_seconds={time.perf_counter() - started:.6f}", flush=True)
"""


def sourcedir() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = textwrap.dedent(SCRIPT).encode()
        info = tarfile.TarInfo("train.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def request(name: str) -> dict[str, Any]:
    hps = {"sagemaker_program": "train.py", "sagemaker_container_log_level": 20,
           "sagemaker_submit_directory": f"s3://{BUCKET}/code/sourcedir.tar.gz",
           "sagemaker_job_name": name, "sagemaker_region": REGION}
    return {
        "TrainingJobName": name, "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {k: json.dumps(v) for k, v in hps.items()},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/",
            "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}


def run_job(sm: Any, logs: Any, name: str, timeout: float) -> dict[str, float]:
    started = time.perf_counter()
    sm.create_training_job(**request(name))
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{name} did not finish in {timeout} s")
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"{name}: {job.get('FailureReason')}")
    return overhead(logs, "/aws/sagemaker/TrainingJobs", name, wall)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from tests.integration.test_training_jobs import regression_csv

    with framework_server() as client:
        sm, s3, logs = client("sagemaker"), client("s3"), client("logs")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=sourcedir())
        s3.put_object(Bucket=BUCKET, Key="train/data.csv", Body=regression_csv(300, 1)[0])
        warm_up = run_job(sm, logs, "warm-up", 1800)  # builds the environment if needed
        runs = [run_job(sm, logs, f"script-{i}", 300) for i in range(args.repeats)]
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
