"""Hostile requests generated from botocore's shapes (``tests/hostile_requests.py``) against a
real server process: no 5xx (but S3's 501 NotImplemented for what opensage does not serve),
every answer an AWS error of its protocol, nothing in the store changed, memory bounded.

The sample is derandomised (a fixed Hypothesis seed: a failure names the request and replays
the same) and bounded: ``HOSTILE_CASES`` drawn cases (default 700, each sent with
``VARIANTS`` derived requests: 2,800 requests, about a minute on 2 cores).
``benchmarks/fuzz_api.py`` sends 100,000. The bugs the generator found are kept below as
explicit examples.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from opensage.testing import server_process
from tests import hostile_requests as hostile

CASES = int(os.environ.get("HOSTILE_CASES", "700"))
SEED = int(os.environ.get("HOSTILE_SEED", "20260101"))
WARM_UP_CASES = 150
RSS_GROWTH_LIMIT_KIB = 64 * 1024  # after the warm-up; a leak per request would pass it
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


class Server:
    def __init__(self, url: str, pid: int, data_dir: Path) -> None:
        self.url, self.pid, self.data_dir = url, pid, data_dir
        self.port = int(url.rsplit(":", 1)[1])

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server process (its RSS is the server's alone) with a little of everything."""
    data_dir = tmp_path_factory.mktemp("hostile")
    with server_process(data_dir) as (url, proc):
        running = Server(url, proc.pid, data_dir)
        seed_state(running)
        yield running


def seed_state(server: Server) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket=hostile.EXISTING_BUCKET)
    s3.put_object(Bucket=hostile.EXISTING_BUCKET, Key="k", Body=b"kept")
    server.client("sagemaker").create_model(ModelName="kept",
                                            PrimaryContainer={"Image": IMAGE})
    logs = server.client("logs")
    logs.create_log_group(logGroupName="kept")
    logs.create_log_stream(logGroupName="kept", logStreamName="s")


def test_generated_hostile_requests_are_refused_and_change_nothing(server: Server) -> None:
    before = hostile.state_snapshot(server.data_dir)
    campaign = hostile.Campaign("127.0.0.1", server.port)
    rss: dict[str, int] = {"start": hostile.rss_kib(server.pid)}

    def measure(sent: int) -> None:
        if "warm" not in rss and sent >= WARM_UP_CASES * (hostile.VARIANTS + 1):
            rss["warm"] = hostile.rss_kib(server.pid)

    try:
        hostile.run(campaign, hostile.any_case(), CASES, SEED, every=measure)
    finally:
        campaign.close()
    rss["end"] = hostile.rss_kib(server.pid)
    summary = campaign.summary()
    print(json.dumps({**summary, "rss_kib": rss}, indent=1))  # the figures, with -s

    assert not campaign.findings, "\n".join(map(str, campaign.findings[:10]))
    assert summary["sent"] >= CASES * (hostile.VARIANTS + 1) * 0.9  # (a few http.client won't)
    assert set(summary["services"]) == set(hostile.SERVICES)
    assert hostile.state_unchanged(before, hostile.state_snapshot(server.data_dir))
    recorded = hostile.audit_since(server.data_dir, before["tables"].get(
        "audit_events.seq", (0, ""))[0])
    assert all(r.get("errorCode") for r in recorded), [
        r for r in recorded if not r.get("errorCode")][:3]  # the audit keeps refusals only
    assert rss["end"] - rss.get("warm", rss["start"]) < RSS_GROWTH_LIMIT_KIB, rss


# -- what the generator found: each was answered 2xx or 5xx (or changed the store) before --
SAGEMAKER = {"X-Amz-Target": "SageMaker.ListModels",
             "Content-Type": "application/x-amz-json-1.1"}
CBOR = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
CW = "/service/GraniteServiceVersion20100801/operation/"
LOGS = {"X-Amz-Target": "Logs_20140328.CreateLogGroup",
        "Content-Type": "application/x-amz-json-1.1"}


@pytest.mark.parametrize("method, path, headers, body, status, code", [
    # PUT of a subresource opensage did not list as unsupported was CreateBucket: the bucket
    # appeared (UpdateBucketMetadataAnnotationTableConfiguration on a missing bucket).
    ("PUT", "/nosuch-bucket-1?metadataAnnotationTable", {}, b"<x/>", 404, "NoSuchBucket"),
    ("PUT", f"/{hostile.EXISTING_BUCKET}?abac", {}, b"<x/>", 501, "NotImplemented"),
    # An unsupported subresource on a missing bucket: 404 first, as S3 (was 501).
    ("HEAD", "/xn--a/k?versionId=1", {}, b"", 404, None),
    ("HEAD", "/nosuch-bucket-2/k?partNumber=1", {}, b"", 404, None),  # (the handler's 501)
    # DELETE of a key no PUT could store answered 204.
    ("DELETE", f"/{hostile.EXISTING_BUCKET}/" + "%C3%A9" * 600, {}, b"", 400,
     "KeyTooLongError"),
    # Query protocol: int() read "\u0661\u0660\u0660\u0660" (Arabic-Indic 1000) as 1000.
    ("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"},
     b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=%D9%A1%D9%A0%D9%A0%D9%A0",
     400, None),
    # JSON: null, UTF-8-encoded surrogates, a lone surrogate escape in a member, 1e999.
    ("POST", "/", SAGEMAKER, b"null", 400, "SerializationException"),
    ("POST", "/", SAGEMAKER, b'{"\xed\xa0\x80":1}', 400, "SerializationException"),
    ("POST", "/", LOGS, b'{"logGroupName":"made","kmsKeyId":"\\ud800"}', 400,
     "SerializationException"),
    ("POST", "/", {**SAGEMAKER, "X-Amz-Target": "SageMaker.ListTrainingJobs"},
     b'{"CreationTimeAfter":1e999}', 400, "SerializationException"),
    # A timestamp of 2**70 was taken (200); AWS reads a long as 64 bits and refuses it.
    ("POST", "/", {"X-Amz-Target": "Logs_20140328.PutLogEvents",
                   "Content-Type": "application/x-amz-json-1.1"},
     json.dumps({"logGroupName": "kept", "logStreamName": "s",
                 "logEvents": [{"timestamp": 2**70, "message": "m"}]}).encode(),
     400, "SerializationException"),
    # CBOR: bytes after the item were ignored; a map as a member name was ignored.
    ("POST", CW + "ListDashboards", CBOR, b"\xa0\x00", 400, "SerializationException"),
    ("POST", CW + "ListDashboards", CBOR, b"\xa1\xa0\x00", 400, "SerializationException"),
    ("POST", CW + "ListDashboards", CBOR, b"\xf6", 400, "SerializationException"),
    # sagemaker-metrics: nested 100,000 deep (RecursionError: 500), and null.
    ("PUT", "/BatchPutMetrics", {"Content-Type": "application/json"},
     b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "SerializationException"),
    ("POST", "/BatchGetMetrics", {"Content-Type": "application/json"}, b"null", 400,
     "SerializationException"),
    # sagemaker-runtime: a missing endpoint is the caller's error before opensage's 501.
    ("POST", "/endpoints/nope/async-invocations", {}, b"", 400, "ValidationError"),
    ("POST", "/endpoints/nope/invocations-response-stream", {}, b"x", 400,
     "ValidationError"),
])
def test_found_by_the_generator(server: Server, method: str, path: str,
                                headers: dict[str, str], body: bytes, status: int,
                                code: str | None) -> None:
    signing = "monitoring" if path.startswith(CW) else "sts" if b"Action=" in body else (
        "logs" if "Logs" in headers.get("X-Amz-Target", "") else
        "s3" if method in ("PUT", "HEAD", "DELETE") and "Batch" not in path else "sagemaker")
    headers = {**headers, "Authorization": hostile.AUTH.format(signing, "0" * 64)}
    before = hostile.state_snapshot(server.data_dir)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        got = hostile.error_code(response.status, {k.lower(): v for k, v in
                                                   response.getheaders()}, answer, method)
    finally:
        conn.close()
    assert response.status == status, answer[:300]
    if code is not None:
        assert got == code, answer[:300]
    assert hostile.state_unchanged(before, hostile.state_snapshot(server.data_dir))
