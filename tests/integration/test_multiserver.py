"""Two `opensage server` processes on one PostgreSQL and one objects directory: requests go
to either; each job runs once (database leases); an endpoint created through one server
answers through the other; kill -9 of one server mid-job: the other takes the job (and the
endpoint) over once their leases expire, and the job completes, once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import sqlalchemy as sa
from botocore.config import Config
from botocore.exceptions import ClientError

from opensage.store.leases import server_owner
from opensage.testing import ROOT_KEYS, server_process, sigv4_args
from tests.integration.test_training_jobs import BUCKET, job_request, regression_csv
from tests.integration.test_training_recovery import job_processes

PG_URL = os.environ.get("OPENSAGE_TEST_DB_URL")
LEASE_TTL = "3"  # seconds: a dead server's work is taken over this long after it died
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of servers sharing one (clean) PostgreSQL and one objects directory."""
    if not PG_URL:
        pytest.skip("OPENSAGE_TEST_DB_URL not set: several servers need a PostgreSQL "
                    "(bash .ci/postgres.sh starts one and prints its URL)")
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    yield {"OPENSAGE_DB_URL": PG_URL, "OPENSAGE_OBJECT_STORE_URL": str(tmp_path / "objects"),
           "OPENSAGE_LEASE_TTL_SECONDS": LEASE_TTL,
           "OPENSAGE_SECRET_KEY_FILE": str(tmp_path / "secret.key")}


def clients(url: str, service: str, keys: tuple[str, str] = ("k", "s")) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=keys[0], aws_secret_access_key=keys[1],
                        config=Config(retries={"max_attempts": 1}))


def upload_data(url: str) -> None:
    upload_data_as(url, ("k", "s"))


def upload_data_as(url: str, keys: tuple[str, str]) -> None:
    s3 = clients(url, "s3", keys)
    s3.create_bucket(Bucket=BUCKET)
    for channel, seed in (("train", 1), ("validation", 2)):
        s3.put_object(Bucket=BUCKET, Key=f"data/{channel}/part.csv",
                      Body=regression_csv(2000, seed)[0])


def wait_ended(sm: Any, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] not in ("InProgress", "Stopping"):
            return dict(job)
        assert time.monotonic() < deadline, job["SecondaryStatus"]
        time.sleep(0.1)


def wait_status(sm: Any, name: str, secondary: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] != secondary:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def log_streams(url: str, job: str) -> list[str]:
    logs = clients(url, "logs")
    return [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/")["logStreams"]]


def deploy(sm: Any, job: dict[str, Any], name: str) -> None:
    sm.create_model(ModelName=name, ExecutionRoleArn=job["RoleArn"], PrimaryContainer={
        "Image": job["AlgorithmSpecification"]["TrainingImage"],
        "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.monotonic() + 60
    while (status := sm.describe_endpoint(EndpointName=name))["EndpointStatus"] == "Creating":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status["EndpointStatus"] == "InService", status.get("FailureReason")


def invoke(url: str, endpoint: str, keys: tuple[str, str] = ("k", "s")) -> tuple[str, str]:
    answer = clients(url, "sagemaker-runtime", keys).invoke_endpoint(
        EndpointName=endpoint, Body=b"1.0,2.0,0.5,0.0\n", ContentType="text/csv")
    return answer["Body"].read().decode(), answer["ResponseMetadata"]["HTTPHeaders"][
        "x-amzn-invoked-production-variant"]


def quick_job(name: str) -> dict[str, Any]:
    return job_request(name, HyperParameters={"objective": "reg:squarederror",
                                              "num_round": "10"})


def test_jobs_created_through_alternating_servers_each_run_once(tmp_path: Path,
                                                                shared: dict[str, str]):
    with ExitStack() as stack:
        urls = [stack.enter_context(server_process(tmp_path / name, env=shared))[0]
                for name in ("a", "b")]
        upload_data(urls[1])
        names = [f"alternating-{i}" for i in range(6)]
        for i, name in enumerate(names):  # requests alternate between the servers
            clients(urls[i % 2], "sagemaker").create_training_job(**quick_job(name))
        # a stop through b reaches the run on a (which polls its row)
        clients(urls[0], "sagemaker").create_training_job(**job_request(
            "stopped-through-b", HyperParameters={"objective": "reg:squarederror",
                                                  "num_round": "100000", "max_depth": "8"}))
        wait_status(clients(urls[0], "sagemaker"), "stopped-through-b", "Training")
        clients(urls[1], "sagemaker").stop_training_job(TrainingJobName="stopped-through-b")
        stopped = wait_ended(clients(urls[0], "sagemaker"), "stopped-through-b")
        assert stopped["TrainingJobStatus"] == "Stopped"
        deadline = time.monotonic() + 10
        while job_processes("stopped-through-b", under=tmp_path / "a"):  # the run ended
            assert time.monotonic() < deadline, "the stopped job still runs on a"
            time.sleep(0.05)
        for i, name in enumerate(names):
            job = wait_ended(clients(urls[(i + 1) % 2], "sagemaker"), name)
            assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
            statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
            assert "Restarting" not in statuses and len(statuses) == len(set(statuses))
            assert len(log_streams(urls[i % 2], name)) == 1  # one run, one host
            assert job["ModelArtifacts"]["S3ModelArtifacts"].startswith(f"s3://{BUCKET}/")
        # one status history each: ended once (status_transitions table)
        engine = sa.create_engine(shared["OPENSAGE_DB_URL"])
        with engine.connect() as conn:
            moves = conn.execute(sa.text(
                "SELECT name, to_status FROM status_transitions WHERE kind = 'training-job'"
            )).all()
        engine.dispose()
        for name in names:
            assert sorted(to for job, to in moves if job == name) == ["Completed"]


@pytest.mark.parametrize("auth", ["none", "sigv4"])
def test_an_endpoint_created_through_one_server_answers_through_the_other(
        tmp_path: Path, shared: dict[str, str], auth: str):
    """b forwards InvokeEndpoint to a, which serves the endpoint; under SigV4 a checks the
    client's own signature (b forwards the request as it came)."""
    flags, keys = (sigv4_args(), ROOT_KEYS) if auth == "sigv4" else ((), ("k", "s"))
    with ExitStack() as stack:
        a, b = (stack.enter_context(server_process(tmp_path / name, *flags, env=shared))[0]
                for name in ("a", "b"))
        upload_data_as(a, keys)
        sm_a, sm_b = clients(a, "sagemaker", keys), clients(b, "sagemaker", keys)
        sm_a.create_training_job(**quick_job("served"))
        job = wait_ended(sm_b, "served")
        deploy(sm_a, job, "served")
        through_a = [invoke(a, "served", keys) for _ in range(2)]
        through_b = [invoke(b, "served", keys) for _ in range(3)]
        assert through_a[0][1] == through_b[0][1] == "AllTraffic"
        assert {answer for answer, _ in through_a} == {answer for answer, _ in through_b}
        float(through_b[0][0].strip().split(",")[0])  # a prediction
        if auth == "sigv4":  # a wrong signature is refused by a, through b, as it would be
            with pytest.raises(ClientError):
                invoke(b, "served", (ROOT_KEYS[0], "not-the-secret"))
        # one fleet (on a): b forwarded, so the endpoint's metrics count every request once
        cw = clients(b, "cloudwatch", keys)
        deadline = time.monotonic() + 30
        while True:
            points = cw.get_metric_statistics(
                Namespace="AWS/SageMaker", MetricName="Invocations",
                Dimensions=[{"Name": "EndpointName", "Value": "served"},
                            {"Name": "VariantName", "Value": "AllTraffic"}],
                StartTime=time.time() - 600, EndTime=time.time() + 600, Period=60,
                Statistics=["Sum"])["Datapoints"]
            total = sum(p["Sum"] for p in points)
            if total >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert total == 5
        assert not (tmp_path / "b" / "endpoints").exists() or not any(
            (tmp_path / "b" / "endpoints").iterdir())
        if auth == "none":
            a_request_is_forwarded_at_most_once(tmp_path, shared, job, a, b)


def a_request_is_forwarded_at_most_once(tmp_path: Path, shared: dict[str, str],
                                        job: dict[str, Any], a: str, b: str) -> None:
    """A misconfigured server c advertises b's address (spelled 127.1): requests for the
    endpoint c serves go to b, which would forward them to itself for ever; a forwarded
    request is never forwarded again, so the caller gets an error naming the settings."""
    b_port = urlsplit(b).port
    with server_process(tmp_path / "c", "--advertise-url", f"http://127.1:{b_port}",
                        env=shared) as (c, _proc):
        deploy(clients(c, "sagemaker"), job, "misrouted")
        assert invoke(c, "misrouted")[1] == "AllTraffic"  # c serves it
        for through in (a, b):  # a -> b -> (stop); b -> b -> (stop)
            with pytest.raises(ClientError) as refused:
                invoke(through, "misrouted")
            assert "advertise-url" in str(refused.value)


def test_kill_9_of_one_server_mid_job_the_other_takes_over_once(tmp_path: Path,
                                                                 shared: dict[str, str]):
    with ExitStack() as stack:
        b = stack.enter_context(server_process(tmp_path / "b", env=shared))[0]
        with server_process(tmp_path / "a", env=shared) as (a, proc_a):
            upload_data(a)
            sm_a = clients(a, "sagemaker")
            sm_a.create_training_job(**quick_job("model"))
            deploy(sm_a, wait_ended(sm_a, "model"), "kept")
            assert invoke(b, "kept")[1] == "AllTraffic"  # forwarded to a
            sm_a.create_training_job(**job_request("survivor", HyperParameters={
                "objective": "reg:squarederror", "num_round": "400", "max_depth": "8",
                "eta": "0.05"}))
            wait_status(sm_a, "survivor", "Training")
            deadline = time.monotonic() + 30
            while not job_processes("survivor", under=tmp_path / "a"):  # started on a
                assert time.monotonic() < deadline
                time.sleep(0.02)
            proc_a.send_signal(signal.SIGKILL)
            proc_a.wait(10)
        deadline = time.monotonic() + 10
        while job_processes("survivor", under=tmp_path / "a"):  # died with a: never twice
            assert time.monotonic() < deadline, "the job outlived its server"
            time.sleep(0.05)
        sm_b = clients(b, "sagemaker")
        job = wait_ended(sm_b, "survivor")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
        assert statuses.count("Restarting") == 1 and statuses[-1] == "Completed"
        assert job["ModelArtifacts"]["S3ModelArtifacts"].startswith(f"s3://{BUCKET}/")
        engine = sa.create_engine(shared["OPENSAGE_DB_URL"])
        with engine.connect() as conn:  # ended once, and only b holds leases now
            ends = conn.execute(sa.text(
                "SELECT to_status FROM status_transitions WHERE kind = 'training-job' "
                "AND name = 'survivor'")).scalars().all()
            held = dict(conn.execute(sa.text("SELECT key, owner FROM leases")).all())
        engine.dispose()
        assert ends == ["Completed"]
        # the endpoint a served is served by b now (after its lease expired)
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = invoke(b, "kept")
                break
            except ClientError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert answer[1] == "AllTraffic"
        assert sm_b.describe_endpoint(EndpointName="kept")["EndpointStatus"] == "InService"
        assert held["endpoint:kept"] == server_owner(tmp_path / "b")  # b serves it now
