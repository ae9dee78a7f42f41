"""``opensage server --auth sigv4``: real keys, boto3, the AWS CLI and the SageMaker SDK against
a real server process; every forged, stale or tampered request gets the AWS error of its
protocol and changes nothing."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import os
import sqlite3
import stat
import subprocess
import sys
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from opensage.sdk import write_sdk_config
from opensage.testing import ROOT_KEYS, server_process, sigv4_args
from tests.integration.test_training_jobs import job_request, regression_csv, wait_for

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "training-bucket"
# Authorisation applies to these tests' users: they are administrators (AWS's
# AdministratorAccess); tests/integration/test_authz.py covers narrower policies.
ADMIN = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'


class Server:
    def __init__(self, url: str, data_dir: Path, output: list[str]) -> None:
        self.url, self.data_dir, self.output = url, data_dir, output
        self.secrets: list[str] = [ROOT_KEYS[1]]  # every secret the tests saw

    def client(self, service: str, key: tuple[str, str] | None = ROOT_KEYS,
               token: str | None = None, **config: Any) -> Any:
        key = key or ("AKIANOBODYNOBODY0000", "nope")
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key[0], aws_secret_access_key=key[1],
                            aws_session_token=token,
                            config=Config(retries={"max_attempts": 1}, **config))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("auth-data")
    output: list[str] = []
    with server_process(data_dir, *sigv4_args(), "--account-id", ACCOUNT,
                        "--log-level", "info", output=output) as (url, _proc):
        yield Server(url, data_dir, output)


@pytest.fixture(scope="module")
def user(server: Server) -> tuple[str, str]:
    iam = server.client("iam")
    iam.create_user(UserName="alice")
    iam.put_user_policy(UserName="alice", PolicyName="admin", PolicyDocument=ADMIN)
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    server.secrets.append(key["SecretAccessKey"])
    return key["AccessKeyId"], key["SecretAccessKey"]


def error(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as exc:
        call()
    response = exc.value.response
    return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"].get("Message", ""))


def tamper(client: Any, old: bytes, new: bytes) -> None:
    """Change the body after it was signed (as a man in the middle would)."""
    def before_send(request: Any, **kwargs: Any) -> None:
        body = request.body.read() if hasattr(request.body, "read") else request.body
        if body and old in body:
            request.body = body.replace(old, new)
    client.meta.events.register("before-send", before_send)


# -- good requests ---------------------------------------------------------------------------

def test_root_and_user_keys_sign_for_every_protocol(server: Server,
                                                    user: tuple[str, str]) -> None:
    root = server.client("sts").get_caller_identity()
    assert root["Arn"] == f"arn:aws:iam::{ACCOUNT}:root" and root["UserId"] == ACCOUNT
    alice = server.client("sts", user).get_caller_identity()
    assert alice["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert alice["UserId"].startswith("AIDA")
    assert server.client("iam", user).get_user()["User"]["UserName"] == "alice"
    assert server.client("sagemaker", user).list_models()["Models"] == []
    assert "logGroups" in server.client("logs", user).describe_log_groups()
    assert "Metrics" in server.client("cloudwatch", user).list_metrics()
    assert "ScalableTargets" in server.client("application-autoscaling", user
                                              ).describe_scalable_targets(
        ServiceNamespace="sagemaker")
    listing = server.client("iam").list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listing] == [user[0]]
    assert "SecretAccessKey" not in listing[0]
    assert [u["UserName"] for u in server.client("iam").list_users()["Users"]] == ["alice"]


def test_s3_put_get_and_presigned_urls(server: Server, user: tuple[str, str]) -> None:
    s3 = server.client("s3", user)
    s3.create_bucket(Bucket="presign-bucket")
    key = "dir/a b+c?.txt"
    s3.put_object(Bucket="presign-bucket", Key=key, Body=b"hello")
    assert s3.get_object(Bucket="presign-bucket", Key=key)["Body"].read() == b"hello"
    for client in (s3, server.client("s3", user, signature_version="s3v4")):  # v2 and v4 URLs
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": "presign-bucket", "Key": key}, ExpiresIn=300)
        assert urllib.request.urlopen(url).read() == b"hello"
        tampered = url.replace("presign-bucket/dir", "presign-bucket/DIR")
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(tampered)
        assert exc.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in exc.value.read()


def test_expired_presigned_url_is_refused(server: Server) -> None:
    s3 = server.client("s3", signature_version="s3v4")
    s3.create_bucket(Bucket="expiry-bucket")
    s3.put_object(Bucket="expiry-bucket", Key="k", Body=b"x")
    an_hour_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    with mock.patch("botocore.auth.get_current_datetime", return_value=an_hour_ago):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "expiry-bucket",
                                                              "Key": "k"}, ExpiresIn=60)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url)
    body = exc.value.read()
    assert exc.value.code == 403
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in body


def test_create_training_job_of_a_built_in_with_a_users_keys(server: Server,
                                                              user: tuple[str, str]) -> None:
    s3, sm = server.client("s3", user), server.client("sagemaker", user)
    s3.create_bucket(Bucket=BUCKET)
    train, _, _ = regression_csv()
    for channel in ("train", "validation"):
        s3.put_object(Bucket=BUCKET, Key=f"data/{channel}/part.csv", Body=train)
    sm.create_training_job(**job_request("signed-xgb", RoleArn=f"arn:aws:iam::{ACCOUNT}:role/x"))
    job = wait_for(sm, "signed-xgb", timeout=120)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix(f"s3://{BUCKET}/")
    assert s3.head_object(Bucket=BUCKET, Key=model)["ContentLength"] > 0


def test_invoke_endpoint_fast_path_verifies(server: Server, user: tuple[str, str]) -> None:
    good = server.client("sagemaker-runtime", user)
    code = error(lambda: good.invoke_endpoint(
        EndpointName="nowhere", Body=b"1,2", ContentType="text/csv"))[0]
    assert code == "ValidationError"  # through the gate: the endpoint does not exist
    bad = server.client("sagemaker-runtime", (user[0], "wrong"))
    code, _status, _message = error(lambda: bad.invoke_endpoint(
        EndpointName="nowhere", Body=b"1,2", ContentType="text/csv"))
    assert code == "InvalidSignatureException"
    unknown = server.client("sagemaker-runtime", None)
    assert error(lambda: unknown.invoke_endpoint(
        EndpointName="nowhere", Body=b"1,2", ContentType="text/csv"))[0] == (
        "UnrecognizedClientException")


# -- refusals, each in its protocol's words --------------------------------------------------

CALLS: dict[str, Callable[[Any], Any]] = {
    "sagemaker": lambda c: c.create_model(ModelName="forged", ExecutionRoleArn=(
        f"arn:aws:iam::{ACCOUNT}:role/x"), PrimaryContainer={"Image": "x"}),
    "sts": lambda c: c.get_caller_identity(),
    "iam": lambda c: c.create_user(UserName="forged"),
    "s3": lambda c: c.create_bucket(Bucket="forged-bucket"),
    "logs": lambda c: c.create_log_group(logGroupName="forged"),
    "cloudwatch": lambda c: c.put_metric_data(Namespace="forged", MetricData=[
        {"MetricName": "m", "Value": 1.0}]),
}
UNKNOWN = {"sagemaker": ("UnrecognizedClientException", 400), "sts": ("InvalidClientTokenId", 403),
           "iam": ("InvalidClientTokenId", 403), "s3": ("InvalidAccessKeyId", 403),
           "logs": ("UnrecognizedClientException", 400),
           "cloudwatch": ("InvalidClientTokenId", 403)}
WRONG = {"sagemaker": ("InvalidSignatureException", 400), "sts": ("SignatureDoesNotMatch", 403),
         "iam": ("SignatureDoesNotMatch", 403), "s3": ("SignatureDoesNotMatch", 403),
         "logs": ("InvalidSignatureException", 400),
         "cloudwatch": ("SignatureDoesNotMatch", 403)}


def assert_nothing_forged(server: Server) -> None:
    assert server.client("sagemaker").list_models(NameContains="forged")["Models"] == []
    assert "forged" not in [u["UserName"] for u in server.client("iam").list_users()["Users"]]
    assert "forged-bucket" not in [b["Name"] for b in server.client("s3").list_buckets()[
        "Buckets"]]
    assert server.client("logs").describe_log_groups(logGroupNamePrefix="forged")[
        "logGroups"] == []
    assert server.client("cloudwatch").list_metrics(Namespace="forged")["Metrics"] == []


@pytest.mark.parametrize("service", sorted(CALLS))
def test_unknown_key_and_wrong_secret(server: Server, user: tuple[str, str],
                                      service: str) -> None:
    code, status, _ = error(lambda: CALLS[service](server.client(service, None)))
    assert (code, status) == UNKNOWN[service]
    code, status, message = error(lambda: CALLS[service](server.client(service,
                                                                       (user[0], "wrong"))))
    assert (code, status) == WRONG[service]
    assert message.startswith("The request signature we calculated does not match")
    assert_nothing_forged(server)


def test_unsigned_requests_are_refused(server: Server) -> None:
    request = urllib.request.Request(server.url + "/", data=b"{}", method="POST", headers={
        "X-Amz-Target": "SageMaker.ListModels", "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request)
    assert exc.value.code == 403
    assert exc.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(server.url + "/")  # S3 ListBuckets, anonymous
    assert exc.value.code == 403 and b"<Code>AccessDenied</Code>" in exc.value.read()
    reset = urllib.request.Request(server.url + "/_opensage/reset", method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:  # the server's own routes too
        urllib.request.urlopen(reset)
    assert exc.value.code == 403
    assert urllib.request.urlopen(server.url + "/_opensage/health").status == 200


def test_tampered_bodies_are_refused(server: Server) -> None:
    sm = server.client("sagemaker")
    tamper(sm, b"forged-1", b"forged-2")
    code, _, _ = error(lambda: sm.create_model(
        ModelName="forged-1", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x",
        PrimaryContainer={"Image": "x"}))
    assert code == "InvalidSignatureException"
    s3 = server.client("s3")
    s3.create_bucket(Bucket="tamper-bucket")
    tamper(s3, b"hello", b"jello")
    code, status, _message = error(lambda: s3.put_object(Bucket="tamper-bucket", Key="k",
                                                        Body=b"hello"))
    assert (code, status) == ("XAmzContentSHA256Mismatch", 400)
    assert error(lambda: server.client("s3").head_object(Bucket="tamper-bucket",
                                                         Key="k"))[1] == 404
    assert_nothing_forged(server)


@pytest.mark.parametrize("service,expected", [
    ("sagemaker", ("InvalidSignatureException", 400)), ("sts", ("SignatureDoesNotMatch", 403)),
    ("s3", ("RequestTimeTooSkewed", 403)), ("logs", ("InvalidSignatureException", 400)),
])
def test_skewed_clock(server: Server, service: str, expected: tuple[str, int]) -> None:
    client = server.client(service)
    twenty_minutes_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=twenty_minutes_ago):
        code, status, message = error(lambda: CALLS[service](client))
    assert (code, status) == expected
    if service != "s3":
        assert message.startswith("Signature expired: ")
        assert message.endswith(" - 15 min.)")
    assert_nothing_forged(server)


def test_inactive_and_deleted_keys(server: Server) -> None:
    iam = server.client("iam")
    iam.create_user(UserName="bob")
    key = iam.create_access_key(UserName="bob")["AccessKey"]
    server.secrets.append(key["SecretAccessKey"])
    bob = (key["AccessKeyId"], key["SecretAccessKey"])
    assert server.client("sts", bob).get_caller_identity()["Arn"].endswith(":user/bob")
    iam.update_access_key(UserName="bob", AccessKeyId=bob[0], Status="Inactive")
    assert error(lambda: server.client("sts", bob).get_caller_identity())[0] == (
        "InvalidClientTokenId")
    assert error(lambda: server.client("sagemaker", bob).list_models())[0] == (
        "UnrecognizedClientException")
    assert error(lambda: server.client("s3", bob).list_buckets())[0] == "InvalidAccessKeyId"
    listed = iam.list_access_keys(UserName="bob")["AccessKeyMetadata"]
    assert [k["Status"] for k in listed] == ["Inactive"]
    iam.update_access_key(UserName="bob", AccessKeyId=bob[0], Status="Active")
    assert server.client("sts", bob).get_caller_identity()["Arn"].endswith(":user/bob")
    assert error(lambda: iam.delete_user(UserName="bob"))[0] == "DeleteConflict"
    iam.delete_access_key(UserName="bob", AccessKeyId=bob[0])
    assert error(lambda: server.client("sts", bob).get_caller_identity())[0] == (
        "InvalidClientTokenId")
    iam.delete_user(UserName="bob")
    assert error(lambda: iam.get_user(UserName="bob"))[:2] == ("NoSuchEntity", 404)


def test_assume_role_session_credentials(server: Server) -> None:
    iam = server.client("iam")
    trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":' \
            '"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
    role = iam.create_role(RoleName="runner", AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName="runner", PolicyName="admin", PolicyDocument=ADMIN)
    assert iam.get_role(RoleName="runner")["Role"]["AssumeRolePolicyDocument"] == (
        __import__("json").loads(trust))
    assert "runner" in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    creds = server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="s1")[
        "Credentials"]
    server.secrets += [creds["SecretAccessKey"], creds["SessionToken"]]
    assert creds["AccessKeyId"].startswith("ASIA")
    session = (creds["AccessKeyId"], creds["SecretAccessKey"])
    me = server.client("sts", session, creds["SessionToken"]).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/runner/s1"
    assert me["UserId"] == f"{role['RoleId']}:s1"
    assert server.client("sagemaker", session, creds["SessionToken"]).list_models()
    assert error(lambda: server.client("sts", session).get_caller_identity())[0] == (
        "InvalidClientTokenId")  # a session key without its token
    assert error(lambda: server.client("s3", session, "bad-token").list_buckets())[0] == (
        "InvalidToken")
    # a session that has expired (set in the store before the server ever saw the key)
    late = server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="s2")[
        "Credentials"]
    server.secrets += [late["SecretAccessKey"], late["SessionToken"]]
    with sqlite3.connect(server.data_dir / "opensage.db") as db:
        db.execute("UPDATE iam_access_keys SET expiration = 1 WHERE access_key_id = ?",
                   (late["AccessKeyId"],))
    expired = (late["AccessKeyId"], late["SecretAccessKey"])
    assert error(lambda: server.client("sagemaker", expired, late["SessionToken"]
                                       ).list_models())[:2] == ("ExpiredTokenException", 400)
    assert error(lambda: server.client("sts", expired, late["SessionToken"]
                                       ).get_caller_identity())[:2] == ("ExpiredToken", 403)
    assert error(lambda: server.client("s3", expired, late["SessionToken"]
                                       ).list_buckets())[:2] == ("ExpiredToken", 400)
    iam.delete_role(RoleName="runner")
    assert "runner" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]


# -- aws-chunked uploads with chunk signatures -----------------------------------------------

EMPTY = hashlib.sha256(b"").hexdigest()


def chunked_put(server: Server, bucket: str, key: str, data: bytes, *, mode: str,
                chunk: int = 64 * 1024, corrupt: int | None = None) -> tuple[int, bytes]:
    """PUT ``data`` as aws-chunked, signing each chunk (mode ``signed``/``signed-trailer``)
    or not (``unsigned-trailer``); ``corrupt``: the chunk whose signature is wrong."""
    sha = {"signed": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
           "signed-trailer": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
           "unsigned-trailer": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}[mode]
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    trailer = mode.endswith("trailer")

    def body(signatures: list[str], trailer_signature: str) -> bytes:
        out = b""
        for piece, signature in zip(pieces, signatures, strict=True):
            ext = f";chunk-signature={signature}" if mode != "unsigned-trailer" else ""
            out += f"{len(piece):x}{ext}\r\n".encode() + piece
            out += b"\r\n" if piece else b""
        if trailer:
            out += f"x-amz-checksum-crc32:{crc}\r\n".encode()
            if mode == "signed-trailer":
                out += f"x-amz-trailer-signature:{trailer_signature}\r\n".encode()
        return out + b"\r\n"

    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Content-SHA256": sha,
               "X-Amz-Decoded-Content-Length": str(len(data)),
               "Content-Length": str(len(body(["0" * 64] * len(pieces), "0" * 64)))}
    if trailer:
        headers["X-Amz-Trailer"] = "x-amz-checksum-crc32"
    port = int(server.url.rsplit(":", 1)[1])
    request = AWSRequest("PUT", f"{server.url}/{bucket}/{key}", headers=headers)
    SigV4Auth(Credentials(*ROOT_KEYS), "s3", REGION).add_auth(request)
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    stamp = request.headers["X-Amz-Date"]
    scope = f"{stamp[:8]}/{REGION}/s3/aws4_request"
    signing = ("AWS4" + ROOT_KEYS[1]).encode()
    for part in (stamp[:8], REGION, "s3", "aws4_request"):
        signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
    signatures, previous = [], seed
    for n, piece in enumerate(pieces):
        to_sign = (f"AWS4-HMAC-SHA256-PAYLOAD\n{stamp}\n{scope}\n{previous}\n{EMPTY}\n"
                   f"{hashlib.sha256(piece).hexdigest()}")
        previous = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        signatures.append(previous if n != corrupt else "f" * 64)
    trailer_text = f"x-amz-checksum-crc32:{crc}\n"
    to_sign = (f"AWS4-HMAC-SHA256-TRAILER\n{stamp}\n{scope}\n{previous}\n"
               f"{hashlib.sha256(trailer_text.encode()).hexdigest()}")
    trailer_signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("PUT", f"/{bucket}/{key}", body=body(signatures, trailer_signature),
                 headers=dict(request.headers))
    response = conn.getresponse()
    answer = response.status, response.read()
    conn.close()
    return answer


@pytest.mark.parametrize("mode", ["signed", "signed-trailer", "unsigned-trailer"])
def test_chunked_uploads_verify_each_chunk(server: Server, mode: str) -> None:
    s3 = server.client("s3")
    bucket = f"chunks-{mode}"
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(200_000)
    status, body = chunked_put(server, bucket, "good", data, mode=mode)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == data
    if mode == "unsigned-trailer":
        return
    for corrupt in (0, 2, 3):  # a data chunk, the last data chunk, the final empty chunk
        status, body = chunked_put(server, bucket, f"bad-{corrupt}", data, mode=mode,
                                   corrupt=corrupt)
        assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
        assert error(lambda k=f"bad-{corrupt}": s3.head_object(Bucket=bucket, Key=k))[1] == 404


# -- the AWS CLI and the SageMaker SDK, unchanged --------------------------------------------

def test_aws_cli_with_real_keys(server: Server, user: tuple[str, str], tmp_path: Path) -> None:
    env = dict(os.environ, AWS_ENDPOINT_URL=server.url, AWS_ACCESS_KEY_ID=user[0],
               AWS_SECRET_ACCESS_KEY=user[1], AWS_DEFAULT_REGION=REGION,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    aws = str(Path(sys.executable).parent / "aws")

    def cli(*args: str, key: tuple[str, str] = user) -> subprocess.CompletedProcess[str]:
        return subprocess.run([aws, *args], check=False, capture_output=True, text=True,
                              timeout=60, env=dict(env, AWS_ACCESS_KEY_ID=key[0],
                                                   AWS_SECRET_ACCESS_KEY=key[1]))

    out = cli("sts", "get-caller-identity")
    assert out.returncode == 0 and ":user/alice" in out.stdout, out.stderr
    (tmp_path / "f.txt").write_text("from the cli")
    cli("s3", "mb", "s3://cli-bucket")
    out = cli("s3", "cp", str(tmp_path / "f.txt"), "s3://cli-bucket/f.txt")
    assert out.returncode == 0, out.stderr
    out = cli("s3", "presign", "s3://cli-bucket/f.txt")
    assert urllib.request.urlopen(out.stdout.strip()).read() == b"from the cli"
    out = cli("sagemaker", "list-training-jobs")
    assert out.returncode == 0, out.stderr
    out = cli("sagemaker", "list-training-jobs", key=(user[0], "wrong"))
    assert out.returncode != 0 and "InvalidSignatureException" in out.stderr
    out = cli("s3", "ls", "s3://cli-bucket", key=("AKIANOBODYNOBODY0000", "x"))
    assert out.returncode != 0 and "InvalidAccessKeyId" in out.stderr


def test_sagemaker_sdk_estimator_with_real_keys(server: Server, user: tuple[str, str],
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """The unchanged SDK, configured as a user would (``opensage sdk-config``, the endpoint
    and a user's keys in the environment). Needs the data the built-in training test
    uploaded."""
    config = write_sdk_config(server.url, ACCOUNT, REGION, path=tmp_path / "config.yaml")
    for name, value in (("AWS_ENDPOINT_URL", server.url), ("AWS_ACCESS_KEY_ID", user[0]),
                        ("AWS_SECRET_ACCESS_KEY", user[1]), ("AWS_DEFAULT_REGION", REGION),
                        ("AWS_CONFIG_FILE", "/dev/null"), ("SAGEMAKER_SUPPRESS_V2_WARNING", "1"),
                        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
                        ("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))):
        monkeypatch.setenv(name, value)
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput

    session = sagemaker.Session(boto_session=boto3.Session(region_name=REGION),
                                default_bucket=BUCKET)
    assert session.boto_session.client("sts").get_caller_identity()["Arn"].endswith(
        ":user/alice")
    estimator = Estimator(
        image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        role=f"arn:aws:iam::{ACCOUNT}:role/x", instance_count=1, instance_type="ml.m5.large",
        output_path=f"s3://{BUCKET}/sdk-output/", sagemaker_session=session,
        hyperparameters={"objective": "reg:squarederror", "num_round": "5"})
    estimator.fit({"train": TrainingInput(f"s3://{BUCKET}/data/train", content_type="text/csv")},
                  wait=True, logs=False)
    job = server.client("sagemaker").describe_training_job(
        TrainingJobName=estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")


# -- starting, and what the server writes ----------------------------------------------------

def test_auth_none_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    opensage = str(Path(sys.executable).parent / "opensage")
    proc = subprocess.run([opensage, "server", "--host", "0.0.0.0", "--auth", "none",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2
    assert "refusing to start" in proc.stderr and "not a loopback address" in proc.stderr
    proc = subprocess.run([opensage, "server", "--auth", "sigv5", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "auth must be one of none, sigv4" in proc.stderr


def test_root_credentials_made_at_first_start(tmp_path: Path) -> None:
    output: list[str] = []
    with server_process(tmp_path, "--auth", "sigv4", output=output) as (url, _proc):
        path = tmp_path / "root-credentials"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
        lines = dict(line.split(" = ") for line in path.read_text().splitlines()[1:])
        key = (lines["aws_access_key_id"], lines["aws_secret_access_key"])
        sts = boto3.client("sts", endpoint_url=url, region_name=REGION,
                           aws_access_key_id=key[0], aws_secret_access_key=key[1])
        assert sts.get_caller_identity()["Arn"].endswith(":root")
    text = "".join(output)
    assert key[0] in text and key[1] not in text  # not a terminal: the secret stays in the file
    with sqlite3.connect(tmp_path / "opensage.db") as db:
        stored = [row[0] for row in db.execute("SELECT secret FROM iam_access_keys")]
    assert stored and all(key[1] not in s for s in stored)  # encrypted at rest


def test_secrets_never_reach_the_log(server: Server) -> None:
    """Last in the module: every secret the tests above made is looked for."""
    text = "".join(server.output)
    assert "refused" in text  # the log did record the refusals
    assert len(server.secrets) >= 3
    for secret in server.secrets:
        assert secret not in text
