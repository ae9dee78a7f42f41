"""Unchanged SageMaker SDK v2 code against opensage, with a guard that fails the test on any
network use beyond 127.0.0.1. Set-up is only environment variables plus the SDK config file
that ``write_sdk_config`` writes (``SAGEMAKER_USER_CONFIG_OVERRIDE``); no user code changes."""

from __future__ import annotations

import io
import socket
import time
from contextlib import redirect_stdout
from pathlib import Path

import boto3
import pytest

from tests.conftest import ACCOUNT, REGION

BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"
from tests.integration.conftest import ROLE, NetworkGuard, NetworkGuardError

# -- the guard itself -----------------------------------------------------------------------

def test_network_guard_catches_non_local_connections(network_guard: NetworkGuard) -> None:
    with pytest.raises(NetworkGuardError):  # resolves first: caught at getaddrinfo
        socket.create_connection(("10.255.255.1", 80), timeout=0.5)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkGuardError):
            sock.connect(("10.255.255.1", 80))
        with pytest.raises(NetworkGuardError):
            sock.connect_ex(("10.255.255.1", 443))
    finally:
        sock.close()
    with pytest.raises(NetworkGuardError):
        socket.getaddrinfo("sts.us-east-1.amazonaws.com", 443)
    assert network_guard.violations == [
        "getaddrinfo 10.255.255.1", "connect 10.255.255.1", "connect_ex 10.255.255.1",
        "getaddrinfo sts.us-east-1.amazonaws.com"]
    network_guard.violations.clear()  # the caught attempts were the point of this test


def test_network_guard_lets_local_traffic_through(sdk_env: NetworkGuard, endpoint: str) -> None:
    assert boto3.client("sts").get_caller_identity()["Account"] == ACCOUNT


# -- SDK flows ------------------------------------------------------------------------------

def test_session_defaults_come_from_the_config_file(sdk_env: NetworkGuard) -> None:
    import sagemaker
    from sagemaker.estimator import Estimator

    session = sagemaker.Session()
    assert session.boto_region_name == REGION
    assert session.sagemaker_config["SageMaker"]["PythonSDK"]["Modules"]["TelemetryOptOut"]
    estimator = Estimator(image_uri="123.dkr.ecr.us-east-1.amazonaws.com/algo:1",
                          instance_count=1, instance_type="ml.m5.large",
                          sagemaker_session=session)  # no role= : it comes from the config
    assert estimator.role == ROLE


def test_default_bucket_and_upload_data(sdk_env: NetworkGuard, tmp_path: Path) -> None:
    import sagemaker

    session = sagemaker.Session()
    assert session.default_bucket() == BUCKET  # created on first use, via AWS_ENDPOINT_URL
    assert BUCKET in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    data = tmp_path / "train.csv"
    data.write_text("1,2,3\n4,5,6\n")
    uri = session.upload_data(path=str(data), key_prefix="data/train")
    assert uri == f"s3://{BUCKET}/data/train/train.csv"
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key="data/train/train.csv")["Body"]
    assert body.read() == b"1,2,3\n4,5,6\n"
    # A second Session finds the bucket instead of creating it.
    assert sagemaker.Session().default_bucket() == BUCKET


def test_telemetry_is_not_sent(sdk_env: NetworkGuard) -> None:
    import sagemaker
    from sagemaker.telemetry.constants import Feature
    from sagemaker.telemetry.telemetry_logging import _telemetry_emitter

    class Job:  # decorated exactly as Estimator.fit is
        def __init__(self) -> None:
            self.sagemaker_session = sagemaker.Session()

        @_telemetry_emitter(feature=Feature.ESTIMATOR_V2, func_name="estimator.fit")
        def fit(self) -> str:
            return "done"

    assert Job().fit() == "done"
    assert sdk_env.violations == []

    # Control: without the opt-out the same call goes for the AWS telemetry host.
    job = Job()
    job.sagemaker_session.sagemaker_config["SageMaker"]["PythonSDK"]["Modules"][
        "TelemetryOptOut"] = False
    assert job.fit() == "done"
    assert any("amazonaws.com" in v for v in sdk_env.violations)
    sdk_env.violations.clear()


def test_sdk_log_tailer_reads_streams_in_order(sdk_env: NetworkGuard) -> None:
    """The SDK's own training-log flush (``sagemaker.session._flush_log_streams``), as
    ``logs_for_job`` runs it every poll: stream discovery, then GetLogEvents per stream."""
    import sagemaker
    from sagemaker.session import _flush_log_streams, _logs_init

    group, job = "/aws/sagemaker/TrainingJobs", "job-1"
    session = sagemaker.Session()
    description = {"ResourceConfig": {"InstanceCount": 2}}
    count, _, positions, client, log_group, dot, color = _logs_init(
        session.boto_session, description, job="Training")
    assert (count, log_group) == (2, group)

    def flush(instance_count: int = count) -> list[str]:
        out = io.StringIO()
        with redirect_stdout(out):
            _flush_log_streams([], instance_count, client, log_group, job, positions, dot,
                               color)
        return out.getvalue().splitlines()

    assert flush() == ["."]  # no log group yet: the SDK prints a dot and carries on

    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=group)
    start = int(time.time() * 1000) - 10_000
    for host, offset in (("algo-1", 0), ("algo-2", 5)):
        stream = f"{job}/{host}-1700000000"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": start + offset + 10 * i, "message": f"{host} line {i}"}
            for i in range(2)])
    logs.create_log_stream(logGroupName=group, logStreamName="job-10/algo-1-1")  # not ours

    assert flush() == ["algo-1 line 0", "algo-2 line 0", "algo-1 line 1", "algo-2 line 1"]
    assert flush() == []  # every stream read to its end: nothing is repeated

    logs.put_log_events(logGroupName=group, logStreamName=f"{job}/algo-1-1700000000",
                        logEvents=[{"timestamp": start + 10, "message": "same ms, new"},
                                   {"timestamp": start + 100, "message": "later"}])
    assert flush() == ["same ms, new", "later"]
    # Fewer instances than streams: the SDK's discovery loop must still end.
    assert flush(instance_count=1) == []
