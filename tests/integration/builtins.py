"""Helpers for the built-in algorithm tests: train through the API on S3 data, fetch the model,
deploy it and invoke it, as a SageMaker user does with boto3."""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.integration.test_training_jobs import BUCKET, ROLE, wait_for

ACCOUNT = {"kmeans": "382416733822", "linear-learner": "382416733822", "pca": "382416733822",
           "knn": "382416733822", "factorization-machines": "382416733822",
           "randomcutforest": "382416733822", "ipinsights": "382416733822",
           "ntm": "382416733822", "object2vec": "382416733822", "seq2seq": "811284229777",
           "lda": "766337827248", "blazingtext": "811284229777",
           "forecasting-deepar": "522234722520", "image-classification": "811284229777"}
RECORDIO = "application/x-recordio-protobuf"


def image(algorithm: str) -> str:
    return f"{ACCOUNT[algorithm]}.dkr.ecr.us-east-1.amazonaws.com/{algorithm}:1"


def put_objects(s3, objects: Mapping[str, bytes], bucket: str = BUCKET) -> None:
    """PutObject each of ``objects`` (key -> body), several at once: a channel of a
    thousand small files uploads in half the time it takes one by one."""
    with ThreadPoolExecutor(8) as pool:
        for done in [pool.submit(s3.put_object, Bucket=bucket, Key=key, Body=body)
                     for key, body in objects.items()]:
            done.result()


def train(sm, s3, algorithm: str, hyperparameters: dict[str, Any],
          channels: dict[str, tuple[bytes | dict[str, bytes], str | None]], *, timeout: float = 120,
          input_mode: str = "File", name: str | None = None, instance_count: int = 1,
          sharded: tuple[str, ...] = ()) -> dict[str, Any]:
    """Upload each channel's bytes, run a training job (on ``instance_count`` hosts, the
    ``sharded`` channels ShardedByS3Key), wait for it; the DescribeTrainingJob answer
    (whatever the final status)."""
    name = name or f"{algorithm}-{uuid.uuid4().hex[:10]}"
    config = []
    for channel, (body, content_type) in channels.items():
        key = f"{name}/{channel}/part-0"
        if isinstance(body, dict):  # several named files: the channel is their prefix
            key = f"{name}/{channel}/"
            put_objects(s3, {key + filename: content for filename, content in body.items()})
        else:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        entry: dict[str, Any] = {"ChannelName": channel, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{key}",
            "S3DataDistributionType": "ShardedByS3Key" if channel in sharded
            else "FullyReplicated"}}}
        if content_type:
            entry["ContentType"] = content_type
        config.append(entry)
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": image(algorithm),
                                "TrainingInputMode": input_mode},
        RoleArn=ROLE, InputDataConfig=config,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": instance_count,
                        "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        HyperParameters={k: str(v) for k, v in hyperparameters.items()})
    return wait_for(sm, name, timeout=timeout)


def metrics(job: dict[str, Any]) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}


def model_dir(s3, job: dict[str, Any], into: Path) -> Path:
    """The job's model.tar.gz, unpacked into ``into``."""
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        archive.extractall(into, filter="data")
    return into


def deploy(sm, algorithm: str, job: dict[str, Any], *, timeout: float = 60) -> str:
    """An endpoint serving the job's model; its name once InService."""
    name = job["TrainingJobName"]
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": image(algorithm), "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = sm.describe_endpoint(EndpointName=name)
        if status["EndpointStatus"] not in ("Creating", "Updating"):
            assert status["EndpointStatus"] == "InService", status.get("FailureReason")
            return name
        time.sleep(0.05)
    raise AssertionError(f"endpoint {name} did not come up")


def invoke(runtime, endpoint: str, body: bytes | str, content_type: str,
           accept: str | None = None) -> tuple[bytes, str]:
    kwargs: dict[str, Any] = {"EndpointName": endpoint, "Body": body,
                              "ContentType": content_type}
    if accept:
        kwargs["Accept"] = accept
    response = runtime.invoke_endpoint(**kwargs)
    return response["Body"].read(), response["ContentType"]
