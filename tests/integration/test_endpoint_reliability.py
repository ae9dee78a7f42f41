"""Endpoints that keep serving: a crashed instance is replaced, the model's and the transform
job's ``Environment`` reach the workers, ``UpdateEndpoint`` under load drops nothing, and a
kill -9 of the server leaves endpoints and transform jobs recoverable."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlparse

import numpy as np
from botocore.exceptions import ClientError

from tests.integration.test_endpoints import FAST, _services, csv_rows, deploy, make_model
from tests.integration.test_training_jobs import BUCKET, ROLE, XGB_IMAGE


def predict(booster: Any, rows: np.ndarray) -> np.ndarray:
    import xgboost

    return booster.predict(xgboost.DMatrix(rows))


def as_floats(body: bytes) -> np.ndarray:
    return np.array(body.decode().replace("\n", ",").split(","), dtype=np.float32)


def invoke(runtime: Any, name: str, rows: np.ndarray) -> np.ndarray:
    answer = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv",
                                     Body=csv_rows(rows))
    return as_floats(answer["Body"].read())


def kill_worker(worker: Any) -> None:
    os.kill(worker.proc.pid, signal.SIGKILL)  # launch exec()s the worker: same pid


def test_a_crashed_instance_is_replaced_and_the_endpoint_keeps_serving(sm, s3, client, server):
    artifact, booster, rows = make_model(seed=1)
    deploy(sm, s3, "crash", artifact)
    sm.create_endpoint(EndpointName="crash", EndpointConfigName="crash")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="crash", WaiterConfig=FAST)
    runtime = client("sagemaker-runtime")
    expected = predict(booster, rows)
    np.testing.assert_array_equal(invoke(runtime, "crash", rows), expected)

    live = _services(server).endpoints._live["crash"]
    [dead] = live.workers
    kill_worker(dead)
    killed = time.monotonic()
    # The next request waits for the replacement (or fails with a 5xx): it never hangs, and
    # answers come back within a few seconds.
    recovered = None
    while time.monotonic() - killed < 15:
        started = time.monotonic()
        try:
            got = invoke(runtime, "crash", rows)
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] >= 500, e.response
            assert time.monotonic() - started < 12
            continue
        np.testing.assert_array_equal(got, expected)
        recovered = time.monotonic() - killed
        break
    assert recovered is not None and recovered < 10, recovered
    [fresh] = live.workers
    assert fresh is not dead and fresh.proc.pid != dead.proc.pid
    described = sm.describe_endpoint(EndpointName="crash")
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    for _ in range(5):
        np.testing.assert_array_equal(invoke(runtime, "crash", rows), expected)
    events = client("logs").filter_log_events(logGroupName="/aws/sagemaker/Endpoints/crash",
                                              filterPattern="unexpectedly")["events"]
    assert any(dead.instance_id in e["logStreamName"] for e in events)

    # Two instances: when one dies, requests go to the other; none fails.
    sm.update_endpoint_weights_and_capacities(EndpointName="crash", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="crash", WaiterConfig=FAST)
    live = _services(server).endpoints._live["crash"]
    assert len(live.workers) == 2
    kill_worker(live.workers[0])
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        np.testing.assert_array_equal(invoke(runtime, "crash", rows), expected)
    sm.delete_endpoint(EndpointName="crash")


def test_model_and_transform_environment_reach_the_workers(sm, s3, client):
    artifact, booster, rows = make_model(seed=2)
    s3.put_object(Bucket=BUCKET, Key="models/env/model.tar.gz", Body=artifact)
    sm.create_model(ModelName="env", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/env/model.tar.gz",
        "Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"}})
    sm.create_endpoint_config(EndpointConfigName="env", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "env", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="env", EndpointConfigName="env")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="env", WaiterConfig=FAST)
    answer = client("sagemaker-runtime").invoke_endpoint(
        EndpointName="env", ContentType="text/csv", Body=csv_rows(rows))
    assert answer["ContentType"] == "application/json"
    import json

    scores = [p["score"] for p in json.loads(answer["Body"].read())["predictions"]]
    np.testing.assert_array_equal(np.array(scores, dtype=np.float32), predict(booster, rows))
    sm.delete_endpoint(EndpointName="env")

    # A transform job's Environment wins over the model's.
    s3.put_object(Bucket=BUCKET, Key="env-in/x.csv", Body=csv_rows(rows))
    common = {"ModelName": "env", "TransformInput": {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                        "S3Uri": f"s3://{BUCKET}/env-in"}},
        "ContentType": "text/csv", "SplitType": "None"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"}}
    sm.create_transform_job(TransformJobName="env-model", TransformOutput={
        "S3OutputPath": f"s3://{BUCKET}/env-out/model"}, **common)
    sm.create_transform_job(TransformJobName="env-job", TransformOutput={
        "S3OutputPath": f"s3://{BUCKET}/env-out/job"},
        Environment={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/jsonlines"}, **common)
    for name, key, starts in (("env-model", "env-out/model/x.csv.out", b'{"predictions"'),
                              ("env-job", "env-out/job/x.csv.out", b'{"score"')):
        deadline = time.monotonic() + 60
        while (status := sm.describe_transform_job(TransformJobName=name)[
                "TransformJobStatus"]) == "InProgress":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert status == "Completed", sm.describe_transform_job(TransformJobName=name)
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body.startswith(starts), body[:80]


class Load:
    """Threads invoking an endpoint continuously over keep-alive connections."""

    def __init__(self, url: str, name: str, body: bytes, threads: int = 4) -> None:
        self.url = urlparse(url)
        self.path = f"/endpoints/{name}/invocations"
        self.body = body
        self.stop = threading.Event()
        self.answers: list[bytes] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Self:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _run(self) -> None:
        conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=30)
        while not self.stop.is_set():
            try:
                conn.request("POST", self.path, self.body, {"Content-Type": "text/csv"})
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=30)
                continue
            if response.status != 200:
                self.failures.append(f"{response.status}: {body[:300]!r}")
            else:
                self.answers.append(body)
        conn.close()


def test_update_endpoint_under_load_drops_no_request(sm, s3, endpoint):
    artifact, booster, rows = make_model(seed=3)
    deploy(sm, s3, "load-a", artifact)
    artifact2, booster2, _ = make_model(seed=4)
    deploy(sm, s3, "load-b", artifact2)
    sm.create_endpoint(EndpointName="load", EndpointConfigName="load-a")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="load", WaiterConfig=FAST)
    old, new = predict(booster, rows), predict(booster2, rows)
    with Load(endpoint, "load", csv_rows(rows).encode()) as load:
        time.sleep(0.5)
        sm.update_endpoint(EndpointName="load", EndpointConfigName="load-b")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="load", WaiterConfig=FAST)
        switched = len(load.answers)
        time.sleep(1.0)  # the old instances drain meanwhile
    assert load.failures == []
    assert len(load.answers) > switched > 10
    seen = [as_floats(a) for a in load.answers]
    assert any(np.array_equal(s, old) for s in seen)
    assert all(np.array_equal(s, old) or np.array_equal(s, new) for s in seen)
    assert np.array_equal(seen[-1], new)
    described = sm.describe_endpoint(EndpointName="load")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService",
                                                                               "load-b")
    assert "FailureReason" not in described
    sm.delete_endpoint(EndpointName="load")


def test_kill_9_of_the_server_leaves_endpoints_and_transform_jobs_recoverable(tmp_path: Path):
    import boto3
    from botocore.config import Config

    from opensage.testing import server_process

    def clients(url: str) -> tuple[Any, Any, Any]:
        kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "k",
                  "aws_secret_access_key": "s", "config": Config(retries={"max_attempts": 1})}
        return (boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs),
                boto3.client("sagemaker-runtime", **kwargs))

    artifact, booster, rows = make_model(seed=6)
    many = np.random.default_rng(7).normal(size=(3_000, 4)).astype(np.float32)
    with server_process(tmp_path) as (url, proc):
        sm, s3, runtime = clients(url)
        s3.create_bucket(Bucket=BUCKET)
        deploy(sm, s3, "survivor", artifact)
        sm.create_endpoint(EndpointName="survivor", EndpointConfigName="survivor")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="survivor", WaiterConfig=FAST)
        np.testing.assert_array_equal(invoke(runtime, "survivor", rows), predict(booster, rows))
        s3.put_object(Bucket=BUCKET, Key="big/x.csv", Body=csv_rows(many))
        sm.create_transform_job(  # one record per request: takes a while
            TransformJobName="interrupted", ModelName="survivor",
            TransformInput={"DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/big"}},
                "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": f"s3://{BUCKET}/big-out", "AssembleWith": "Line"},
            TransformResources={"InstanceCount": 1, "InstanceType": "ml.m5.large"},
            BatchStrategy="SingleRecord")
        deadline = time.monotonic() + 30
        while not _transform_started(tmp_path):  # its worker is up and working
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.5)
        assert sm.describe_transform_job(TransformJobName="interrupted")[
            "TransformJobStatus"] == "InProgress"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    with server_process(tmp_path) as (url, _proc):
        sm, s3, runtime = clients(url)
        described = sm.describe_endpoint(EndpointName="survivor")
        assert described["EndpointStatus"] == "InService"
        np.testing.assert_array_equal(invoke(runtime, "survivor", rows), predict(booster, rows))
        deadline = time.monotonic() + 120
        while (job := sm.describe_transform_job(TransformJobName="interrupted"))[
                "TransformJobStatus"] == "InProgress":
            assert time.monotonic() < deadline, "the transform job stayed InProgress"
            time.sleep(0.1)
        assert job["TransformJobStatus"] in ("Completed", "Failed"), job
        if job["TransformJobStatus"] == "Failed":
            assert job["FailureReason"]
        else:
            out = s3.get_object(Bucket=BUCKET, Key="big-out/x.csv.out")["Body"].read()
            np.testing.assert_array_equal(as_floats(out.strip()), predict(booster, many))
        sm.delete_endpoint(EndpointName="survivor")


def _transform_started(data_dir: Path) -> bool:
    return any((data_dir / "transform").glob("*/model/xgboost-model"))
