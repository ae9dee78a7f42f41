"""Helpers for script-mode tests: a sourcedir.tar.gz as the SDK packs it, a job request as
the SDK's framework estimators send it, and the job's artifacts read back."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from typing import Any

from tests.integration.conftest import ROLE
from tests.integration.test_training_jobs import BUCKET

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310"
MXNET_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/mxnet-training:1.9.0-cpu-py38"
# An environment is built once per machine (then cached), which may take minutes.
FIRST_BUILD_TIMEOUT = 900


def sourcedir(files: dict[str, str]) -> bytes:
    """``files`` (name -> text, dedented) at the root of a tar.gz, as the SDK packs them."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def script_request(name: str, submit: str, *, program: str = "train.py",
                   image: str = SKLEARN_IMAGE, hyperparameters: dict[str, Any] | None = None,
                   channels: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """CreateTrainingJob as a framework estimator sends it: every hyperparameter
    JSON-encoded, ``sagemaker_*`` included."""
    hps = {"sagemaker_program": program, "sagemaker_submit_directory": submit,
           "sagemaker_container_log_level": 20, "sagemaker_job_name": name,
           "sagemaker_region": "us-east-1", **(hyperparameters or {})}
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": {k: json.dumps(v) for k, v in hps.items()},
        "InputDataConfig": [
            {"ChannelName": channel, "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated"}}}
            for channel, uri in (channels or {}).items()],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
    }
    if not request["InputDataConfig"]:
        del request["InputDataConfig"]
    request.update(overrides)
    return request


def upload_code(s3: Any, name: str, files: dict[str, str] | bytes) -> str:
    body = files if isinstance(files, bytes) else sourcedir(files)
    key = f"code/{name}/source/sourcedir.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def artifact(s3: Any, name: str, which: str = "model") -> dict[str, bytes]:
    """The files of ``<job>/output/<which>.tar.gz``."""
    blob = s3.get_object(Bucket=BUCKET, Key=f"output/{name}/output/{which}.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def log_lines(client: Any, name: str) -> dict[str, list[str]]:
    """Each of the job's log streams and its lines."""
    logs = client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                            logStreamNamePrefix=name + "/")["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return {}  # no job has logged yet
    return {s["logStreamName"]: [e["message"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"],
        startFromHead=True)["events"]] for s in streams}
