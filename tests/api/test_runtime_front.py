"""InvokeEndpoint is answered before Starlette (a bare ASGI path): it must still answer as
the runtime does, and leave every request the runtime would not get to the other services."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions
import pytest


def _post(endpoint: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
    url = urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("POST", path, body, headers)
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_unknown_endpoint_is_an_aws_error_with_request_id(endpoint: str) -> None:
    status, headers, body = _post(endpoint, "/endpoints/nowhere/invocations", b"1,2",
                                  {"Content-Type": "text/csv"})
    assert status == 400
    assert headers["x-amzn-errortype"] == "ValidationError"
    assert headers["x-amzn-requestid"]
    assert int(headers["content-length"]) == len(body)
    assert "Endpoint nowhere" in json.loads(body)["message"]


def test_boto3_sees_the_runtime_error(client: Any) -> None:
    runtime = client("sagemaker-runtime")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="nowhere", ContentType="text/csv", Body=b"1")
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_too_large_body_is_refused(endpoint: str) -> None:
    status, headers, _ = _post(endpoint, "/endpoints/nowhere/invocations",
                               b"x" * (6 * 1024 * 1024 + 1), {"Content-Type": "text/csv"})
    assert status == 400
    assert headers["x-amzn-errortype"] == "ValidationError"


def test_s3_post_on_a_look_alike_key_goes_to_s3(client: Any) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket="endpoints")
    upload = s3.create_multipart_upload(Bucket="endpoints", Key="x/invocations")
    part = s3.upload_part(Bucket="endpoints", Key="x/invocations", PartNumber=1,
                          UploadId=upload["UploadId"], Body=b"data")
    s3.complete_multipart_upload(
        Bucket="endpoints", Key="x/invocations", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket="endpoints", Key="x/invocations")["Body"].read() == b"data"
