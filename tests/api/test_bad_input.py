"""Bad SageMaker requests, sent raw (boto3 would refuse to send most of them): each answers
the AWS error code with a message naming the problem and changes nothing in the store."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

SIGNED = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sagemaker/aws4_request, "
          "SignedHeaders=host, Signature=00")


def call(endpoint: str, operation: str, body: Any, *, auth: str | None = SIGNED,
         raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"X-Amz-Target": f"SageMaker.{operation}",
               "Content-Type": "application/x-amz-json-1.1"}
    if auth is not None:
        headers["Authorization"] = auth
    request = urllib.request.Request(endpoint + "/", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def model_count(endpoint: str) -> int:
    status, body = call(endpoint, "ListModels", {"MaxResults": 100})
    assert status == 200
    return len(body["Models"])


GOOD_MODEL = {"ModelName": "good", "PrimaryContainer": {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"}}


@pytest.mark.parametrize("operation, body, raw, status, code, fragment", [
    ("CreateModel", None, b"{not json", 400, "SerializationException", "not valid JSON"),
    ("CreateModel", {"PrimaryContainer": {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"}}, None, 400, "ValidationException",
     "Value null at 'modelName' failed to satisfy constraint: Member must not be null"),
    ("CreateModel", {"ModelName": 5, "PrimaryContainer": {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"}}, None, 400,
     "SerializationException", "'ModelName'".lower()),
    ("CreateModel", {"ModelName": "bad_name", "PrimaryContainer": {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"}}, None, 400,
     "ValidationException", ("at 'modelName' failed to satisfy constraint: Member must satisfy "
     "regular expression pattern")),
    ("CreateModel", {"ModelName": "x" * 64, "PrimaryContainer": {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"}}, None, 400,
     "ValidationException", "Member must have length less than or equal to 63"),
    ("CreateModel", {"ModelName": "m", "PrimaryContainer": {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "Mode": "Sideways"}},
     None, 400, "ValidationException",
     ("at 'primaryContainer.mode' failed to satisfy constraint: Member must satisfy enum value "
     "set: [SingleModel, MultiModel]")),
    ("CreateModel", {"ModelName": "m", "PrimaryContainer": {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"},
                     "Tags": [{"Key": "k", "Value": "v" * 300}]}, None, 400,
     "ValidationException", "at 'tags.1.member.value'"),
    ("ListModels", {"SortBy": "Size"}, None, 400, "ValidationException", "enum value set"),
    ("ListModels", {"MaxResults": 0}, None, 400, "ValidationException",
     "Member must have value greater than or equal to 1"),
    ("ListModels", {"CreationTimeAfter": "yesterday-ish"}, None, 400, "SerializationException",
     "creationTimeAfter"),
    ("FlyToTheMoon", {}, None, 400, "UnknownOperationException", "FlyToTheMoon"),
    ("DescribeDomain", {"DomainId": "d-123"}, None, 501, "NotImplementedException",
     "DescribeDomain"),
])
def test_bad_request_answers_aws_error_and_changes_nothing(endpoint, operation, body, raw, status,
                                                           code, fragment):
    call(endpoint, "CreateModel", GOOD_MODEL)
    status_got, answer = call(endpoint, operation, body, raw=raw)
    assert (status_got, answer["__type"]) == (status, code)
    assert fragment.lower() in answer["message"].lower()
    assert model_count(endpoint) == 1


def test_all_problems_reported_at_once(endpoint):
    status, answer = call(endpoint, "CreateModel", {"ModelName": "a_b", "ExecutionRoleArn": "x"})
    assert status == 400 and answer["__type"] == "ValidationException"
    assert answer["message"].startswith("3 validation errors detected: ")
    assert "Member must have length greater than or equal to 20" in answer["message"]
    assert "'modelName'" in answer["message"] and "'executionRoleArn'" in answer["message"]


def test_oversize_body_is_refused(endpoint):
    huge = json.dumps({"ModelName": "m", "PrimaryContainer": {"Image": "i" * (9 * 2**20)}})
    status, answer = call(endpoint, "CreateModel", None, raw=huge.encode())
    assert status == 413 and answer["__type"] == "RequestEntityTooLargeException"
    assert model_count(endpoint) == 0


@pytest.mark.parametrize("auth", [None, "", "garbage", "AWS4-HMAC-SHA256 Credential=//",
                                  "AWS4-HMAC-SHA256 Credential=a/b/c/sagemaker/aws4_request"])
def test_missing_or_malformed_authorization_is_accepted(endpoint, auth):
    status, answer = call(endpoint, "CreateModel", GOOD_MODEL, auth=auth)
    assert status == 200 and answer["ModelArn"].endswith(":model/good")


# -- the other services ---------------------------------------------------------------------
def raw(endpoint: str, method: str, path: str, body: bytes = b"",
        headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(endpoint + path, data=body or None, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_s3_malformed_requests_change_nothing(endpoint, client):
    s3 = client("s3")
    s3.create_bucket(Bucket="keep")
    s3.put_object(Bucket="keep", Key="a", Body=b"original")
    broken = b"<Delete><Object><Key>a</Ke"
    status, body = raw(endpoint, "POST", "/keep?delete", broken, {
        "Content-MD5": base64.b64encode(hashlib.md5(broken).digest()).decode()})
    assert status == 400 and b"<Code>MalformedXML</Code>" in body
    status, body = raw(endpoint, "PUT", "/keep/a", b"replacement",
                       {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})  # md5 of b"", not the body
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    status, body = raw(endpoint, "PUT", "/Bad_Bucket!")
    assert status == 400 and b"<Code>InvalidBucketName</Code>" in body
    status, body = raw(endpoint, "GET", "/no-such-bucket/x")
    assert status == 404 and b"<Code>NoSuchBucket</Code>" in body
    assert s3.get_object(Bucket="keep", Key="a")["Body"].read() == b"original"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["keep"]


def test_logs_and_sts_malformed_requests(endpoint, client):
    status, body = raw(endpoint, "POST", "/", b"{oops", {
        "X-Amz-Target": "Logs_20140328.CreateLogGroup",
        "Content-Type": "application/x-amz-json-1.1"})
    assert status == 400 and json.loads(body)["__type"] == "SerializationException"
    status, body = raw(endpoint, "POST", "/", b"{}", {
        "X-Amz-Target": "Logs_20140328.CreateLogGroup",
        "Content-Type": "application/x-amz-json-1.1"})
    assert status == 400 and "logGroupName" in json.loads(body)["message"]
    assert client("logs").describe_log_groups()["logGroups"] == []
    status, body = raw(endpoint, "POST", "/", b"Action=Fly&Version=2011-06-15",
                       {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"InvalidAction" in body
