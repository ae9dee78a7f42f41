"""Inputs that used to be answered 500 (or not at all): each now gets an AWS-style 4xx,
changes nothing, and leaves the kept-alive connection usable for the next request."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from opensage.server import RunningServer

SIGNED = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{}/aws4_request, "
          "SignedHeaders=host, Signature=00")
TARGETS = {"sagemaker": "SageMaker.", "logs": "Logs_20140328.",
           "application-autoscaling": "AnyScaleFrontendService."}
ROLE = "arn:aws:iam::123456789012:role/opensage"
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture
def conn(endpoint: str) -> Iterator[http.client.HTTPConnection]:
    """One kept-alive connection: every test checks it still answers afterwards."""
    url = urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    yield connection
    connection.request("GET", "/_opensage/health")
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read())["status"] == "ok"
    connection.close()


def send(conn: http.client.HTTPConnection, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body or None, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def rpc(conn: http.client.HTTPConnection, service: str, operation: str, body: bytes
        ) -> tuple[int, dict[str, Any]]:
    status, _, data = send(conn, "POST", "/", body, {
        "X-Amz-Target": TARGETS[service] + operation,
        "Content-Type": "application/x-amz-json-1.1", "Authorization": SIGNED.format(service)})
    return status, json.loads(data)


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("service, operation", [
    ("sagemaker", "CreateModel"), ("logs", "CreateLogGroup"),
    ("application-autoscaling", "RegisterScalableTarget")])
@pytest.mark.parametrize("body", [nested(1000), b"[" * 1000 + b"]" * 1000])
def test_json_nested_1000_levels_is_a_serialization_error(conn, client, service, operation,
                                                          body):
    status, answer = rpc(conn, service, operation, body)
    assert (status, answer["__type"]) == (400, "SerializationException")
    assert "nested too deeply" in answer["message"]
    assert client("logs").describe_log_groups()["logGroups"] == []


@pytest.mark.parametrize("value", [b"1e20", b"-1e20", b"NaN", b"Infinity", b'"1e308"'])
def test_timestamps_out_of_range_are_refused(conn, value):
    status, answer = rpc(conn, "sagemaker", "ListModels", b'{"CreationTimeAfter":' + value + b"}")
    assert (status, answer["__type"]) == (400, "SerializationException")


def search_nested(levels: int) -> dict[str, Any]:
    expression: dict[str, Any] = {"Filters": [
        {"Name": "TrainingJobName", "Operator": "Equals", "Value": "x"}]}
    for _ in range(levels):
        expression = {"SubExpressions": [expression]}
    return {"Resource": "TrainingJob", "SearchExpression": expression}


def test_search_nested_200_deep_is_a_validation_error(conn):
    status, answer = rpc(conn, "sagemaker", "Search", json.dumps(search_nested(200)).encode())
    assert (status, answer["__type"]) == (400, "ValidationException")
    assert answer["message"] == "Value at 'searchExpression' is nested more than 32 levels deep"
    status, answer = rpc(conn, "sagemaker", "Search", json.dumps(search_nested(5)).encode())
    assert (status, answer) == (200, {"Results": []})


def test_create_training_job_without_algorithm_specification(conn, sm):
    status, answer = rpc(conn, "sagemaker", "CreateTrainingJob", json.dumps({
        "TrainingJobName": "no-algorithm", "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://b/out/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 1}}).encode())
    assert (status, answer["__type"]) == (400, "ValidationException")
    assert "Value null at 'algorithmSpecification'" in answer["message"]
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []


@pytest.fixture
def obj(client: Callable[..., Any]) -> str:
    s3 = client("s3")
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="k", Body=b"x" * 1024)
    return "/bkt/k"


def test_if_modified_since_year_99999_is_ignored(conn, obj):
    status, _, body = send(conn, "GET", obj, headers={
        "If-Modified-Since": "Sat, 01 Jan 99999 00:00:00 GMT"})
    assert (status, body) == (200, b"x" * 1024)


@pytest.mark.parametrize("value", ["text%2Fplain%0D%0AX-Evil%3A%201", "a%0Ab", "a%00b"])
def test_response_override_with_control_characters_is_refused(conn, obj, value):
    status, headers, body = send(conn, "GET", f"{obj}?response-content-type={value}")
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body
    assert "x-evil" not in headers


def test_key_with_a_newline_is_an_object_like_any_other(conn, obj, client):
    status, _, body = send(conn, "GET", "/bkt/a%0Ab")
    assert status == 404 and b"<Code>NoSuchKey</Code>" in body
    status, _, _ = send(conn, "PUT", "/bkt/a%0Ab", b"line")
    assert status == 200
    status, _, body = send(conn, "GET", "/bkt/a%0Ab")
    assert (status, body) == (200, b"line")
    assert client("s3").get_object(Bucket="bkt", Key="a\nb")["Body"].read() == b"line"


def test_unhandled_error_answers_500_and_the_next_request_works(server: RunningServer, conn,
                                                                monkeypatch):
    async def broken(request: Any) -> Any:
        raise RuntimeError("a bug")

    app = server.server.config.loaded_app
    while not hasattr(app, "state"):  # uvicorn's wrappers around the Starlette app
        app = app.app
    monkeypatch.setitem(app.state.protocols, "s3", broken)
    status, headers, body = send(conn, "GET", "/bkt/k")
    assert status == 500 and json.loads(body)["__type"] == "InternalFailure"
    assert headers.get("connection") == "close"
    monkeypatch.undo()
    # the client reopens, as Connection: close told it to (without it: a reset)
    status, _, _ = send(conn, "GET", "/bkt/k")
    assert status == 404


@pytest.mark.parametrize("name, why", [
    ("a\0b.csv", "contains a NUL character"),
    ("x" * 256 + ".csv", "has a name of 260 bytes; file names are limited to 255 bytes")])
def test_channel_object_that_cannot_be_a_file_names_itself_in_failure_reason(sm, client, name,
                                                                            why):
    s3 = client("s3")
    s3.create_bucket(Bucket="chan")
    s3.put_object(Bucket="chan", Key="train/ok.csv", Body=b"1,2\n")
    s3.put_object(Bucket="chan", Key="train/" + name, Body=b"1,2\n")
    sm.create_training_job(
        TrainingJobName="bad-name", RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://chan/train/"}}}],
        OutputDataConfig={"S3OutputPath": "s3://chan/out/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1,
                        "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
        HyperParameters={"num_round": "2"})
    deadline = time.monotonic() + 60
    while (job := sm.describe_training_job(TrainingJobName="bad-name"))[
            "TrainingJobStatus"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert f"s3://chan/train/{name}" in reason and why in reason, reason
