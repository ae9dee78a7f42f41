"""Which AWS service a request is for: SigV4 credential scope, then X-Amz-Target, then path."""

from __future__ import annotations

import re
from collections.abc import Mapping

_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/[^/,\s]*/([^/,\s]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"^[^/]*/\d{8}/[^/]*/([^/]+)/aws4_request$")

# The signing name in the credential scope -> our service key.
_SIGNING_NAMES = {
    "s3": "s3",
    "sts": "sts",
    "iam": "iam",
    "logs": "logs",
    "monitoring": "cloudwatch",
    "application-autoscaling": "application-autoscaling",
    "cloudtrail": "cloudtrail",
    "sagemaker": "sagemaker",  # shared by sagemaker and sagemaker-runtime: split by target/path
}

_TARGET_PREFIXES = {
    "SageMaker.": "sagemaker",
    "Logs_20140328.": "logs",
    "GraniteServiceVersion20100801.": "cloudwatch-json",  # older clients: awsJson 1.0
    "AnyScaleFrontendService.": "application-autoscaling",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.": "cloudtrail",
}

# sagemaker-metrics (REST-JSON, signed as "sagemaker"): one path per operation
METRICS_PATHS = frozenset({"/BatchPutMetrics", "/BatchGetMetrics"})
RUNTIME_PATH = re.compile(r"^/endpoints/[^/]+/(invocations|async-invocations|"
                          r"invocations-response-stream)$")


def signing_service(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The service name of the SigV4 credential scope, or None if absent or malformed."""
    auth = headers.get("authorization", "")
    match = _SCOPE.search(auth)
    if match:
        return match.group(1)
    credential = query.get("X-Amz-Credential", "")
    match = _QUERY_SCOPE.match(credential)
    return match.group(1) if match else None


def identify_service(method: str, path: str, headers: Mapping[str, str],
                     query: Mapping[str, str]) -> str:
    target = headers.get("x-amz-target", "")
    by_target = next((svc for prefix, svc in _TARGET_PREFIXES.items()
                      if target.startswith(prefix)), None)
    signed = _SIGNING_NAMES.get(signing_service(headers, query) or "")
    if path.startswith("/service/GraniteServiceVersion20100801/"):
        return "cloudwatch"  # Smithy RPC v2 CBOR, what current botocore speaks
    if by_target == "cloudwatch-json":
        return by_target
    if signed == "sagemaker":
        if by_target == "sagemaker":
            return "sagemaker"
        if RUNTIME_PATH.match(path):
            return "sagemaker-runtime"
        if path in METRICS_PATHS:
            return "sagemaker-metrics"
        return "sagemaker"
    if signed:
        return signed
    if by_target:
        return by_target
    if RUNTIME_PATH.match(path) and method == "POST":
        return "sagemaker-runtime"
    if path in METRICS_PATHS and method in ("PUT", "POST"):
        return "sagemaker-metrics"
    content_type = headers.get("content-type", "")
    if method == "POST" and path == "/" and content_type.startswith(
            "application/x-www-form-urlencoded"):
        return "sts"  # the query protocol; IAM is told apart by its signing name
    return "s3"
