"""CloudTrail: every call of every service on record (boto3 against a real ``--auth sigv4``
server), secrets never, LookupEvents' filters and pages, errors with their code and message,
and an answered call still on record after ``kill -9``."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from opensage.testing import ROOT_KEYS, server_process, sigv4_args

REGION = "us-east-1"
ACCOUNT = "123456789012"


def client(url: str, service: str, key: tuple[str, str] = ROOT_KEYS) -> Any:
    return boto3.client(service, endpoint_url=url, region_name=REGION,
                        aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        config=Config(retries={"max_attempts": 1}))


def lookup(url: str, key: str, value: str, **more: Any) -> list[dict[str, Any]]:
    trail = client(url, "cloudtrail")
    return list(trail.lookup_events(LookupAttributes=[{"AttributeKey": key,
                                                       "AttributeValue": value}],
                                    **more)["Events"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("audit-data")
    with server_process(data_dir, *sigv4_args(), "--account-id", ACCOUNT) as (url, _proc):
        yield url


def test_calls_of_several_services_are_recorded_without_secrets(server: str) -> None:
    iam, s3, sm = client(server, "iam"), client(server, "s3"), client(server, "sagemaker")
    iam.create_user(UserName="auditee")
    for policy in ("AmazonS3FullAccess", "AmazonSageMakerFullAccess"):
        iam.attach_user_policy(UserName="auditee", PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
    made = iam.create_access_key(UserName="auditee")["AccessKey"]
    key = (made["AccessKeyId"], made["SecretAccessKey"])
    s3.create_bucket(Bucket="audit-bucket")
    trail = client(server, "cloudtrail")
    trail.create_trail(Name="everything", S3BucketName="audit-bucket")
    trail.put_event_selectors(TrailName="everything", EventSelectors=[{
        "ReadWriteType": "All", "IncludeManagementEvents": True,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}])
    body = b"top-secret-object-body-" * 10
    client(server, "s3", key).put_object(Bucket="audit-bucket", Key="k/one", Body=body)
    with pytest.raises(ClientError):
        client(server, "sagemaker", key).describe_model(ModelName="no-such-model")
    sm.list_models()
    client(server, "logs").describe_log_groups()

    puts = lookup(server, "EventName", "PutObject")
    assert [e["Username"] for e in puts] == ["auditee"]
    put = puts[0]
    assert put["EventSource"] == "s3.amazonaws.com" and put["ReadOnly"] == "false"
    assert put["AccessKeyId"] == key[0]
    assert {"ResourceType": "AWS::S3::Object",
            "ResourceName": "arn:aws:s3:::audit-bucket/k/one"} in put["Resources"]
    record = json.loads(put["CloudTrailEvent"])
    assert record["userIdentity"]["type"] == "IAMUser"
    assert record["userIdentity"]["userName"] == "auditee"
    assert record["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT}:user/auditee"
    assert record["userIdentity"]["accountId"] == ACCOUNT
    assert record["sourceIPAddress"] == "127.0.0.1" and "Boto3" in record["userAgent"]
    assert record["requestParameters"]["bucketName"] == "audit-bucket"
    assert record["eventCategory"] == "Data" and record["requestID"]

    created = lookup(server, "EventName", "CreateAccessKey")
    assert created and created[0]["EventSource"] == "iam.amazonaws.com"
    assert created[0]["Username"] == "root"
    user = lookup(server, "EventName", "CreateUser")[0]
    assert json.loads(user["CloudTrailEvent"])["responseElements"]["arn"].endswith(
        ":user/auditee")

    errors = lookup(server, "EventName", "DescribeModel")
    assert len(errors) == 1
    failed = json.loads(errors[0]["CloudTrailEvent"])
    assert failed["errorCode"] == "ValidationException"
    assert "no-such-model" in failed["errorMessage"]
    assert failed["requestParameters"] == {"modelName": "no-such-model"}
    assert errors[0]["ReadOnly"] == "true"
    assert lookup(server, "EventSource", "logs.amazonaws.com")[0]["EventName"] == \
        "DescribeLogGroups"
    assert lookup(server, "EventName", "ListModels")[0]["EventSource"] == \
        "sagemaker.amazonaws.com"

    everything = json.dumps([e for e in paged(server)], default=str)
    assert key[1] not in everything and ROOT_KEYS[1] not in everything
    assert "top-secret-object-body" not in everything


def paged(url: str, **params: Any) -> list[dict[str, Any]]:
    trail = client(url, "cloudtrail")
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = trail.lookup_events(MaxResults=3, **params,
                                   **({"NextToken": token} if token else {}))
        assert len(page["Events"]) <= 3
        events.extend(page["Events"])
        token = page.get("NextToken")
        if not token:
            return events


def test_filters_and_paging(server: str) -> None:
    sm = client(server, "sagemaker")
    for _ in range(7):
        sm.list_endpoints()
    listed = paged(server, LookupAttributes=[{"AttributeKey": "EventName",
                                              "AttributeValue": "ListEndpoints"}])
    assert len(listed) == 7 and len({e["EventId"] for e in listed}) == 7
    times = [e["EventTime"] for e in listed]
    assert times == sorted(times, reverse=True)
    one = lookup(server, "EventId", listed[3]["EventId"])
    assert [e["EventId"] for e in one] == [listed[3]["EventId"]]
    window = paged(server, StartTime=times[-1], EndTime=times[0],
                   LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "true"}])
    assert {e["EventId"] for e in listed} <= {e["EventId"] for e in window}
    assert all(e["ReadOnly"] == "true" for e in window)
    trail = client(server, "cloudtrail")
    with pytest.raises(ClientError) as exc:
        trail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "ListEndpoints"},
            {"AttributeKey": "Username", "AttributeValue": "root"}])
    assert exc.value.response["Error"]["Code"] == "InvalidLookupAttributesException"
    with pytest.raises(ClientError) as exc:
        trail.lookup_events(MaxResults=3, NextToken="bm9wZQ")
    assert exc.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_an_answered_call_survives_kill_9(tmp_path: Path) -> None:
    with server_process(tmp_path, *sigv4_args()) as (url, proc):
        client(url, "sagemaker").list_training_jobs(NameContains="before-the-kill")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    with server_process(tmp_path, *sigv4_args()) as (url, _proc):
        events = lookup(url, "EventName", "ListTrainingJobs")
        assert len(events) == 1
        record = json.loads(events[0]["CloudTrailEvent"])
        assert record["requestParameters"]["nameContains"] == "before-the-kill"


def test_anonymous_under_auth_none_and_data_events_off_by_default(tmp_path: Path) -> None:
    with server_process(tmp_path) as (url, _proc):
        s3 = client(url, "s3")
        s3.create_bucket(Bucket="plain")
        s3.put_object(Bucket="plain", Key="x", Body=b"data")
        assert lookup(url, "EventName", "PutObject") == []  # a data event, not selected
        made = lookup(url, "EventName", "CreateBucket")
        assert [e["Username"] for e in made] == ["anonymous"]
        identity = json.loads(made[0]["CloudTrailEvent"])["userIdentity"]
        assert identity["type"] == "AnonymousPrincipal"
