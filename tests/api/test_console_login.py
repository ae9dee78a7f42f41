"""The console under ``--auth sigv4``: a browser login (an access key pair, then a session
cookie), per-action authorisation of its pages with the API's policies and words, and the
``ConsoleLogin`` record, against real servers (two sharing one database for the cookie)."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from opensage.api import auth
from opensage.console.session import COOKIE, PRINCIPAL, Sessions
from opensage.server import RunningServer, start_in_thread
from opensage.settings import Settings
from opensage.store.secrets import KEY_FILE, SecretBox
from opensage.testing import ROOT_KEYS
from tests.conftest import ACCOUNT, REGION
from tests.integration.test_training_jobs import BUCKET, job_request, regression_csv, wait_for

READ_ONLY = "arn:aws:iam::aws:policy/AmazonSageMakerReadOnly"


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, port=0, account_id=ACCOUNT, region=REGION,
                    auth="sigv4", root_access_key_id=ROOT_KEYS[0],
                    root_secret_access_key=ROOT_KEYS[1], container_engine="none")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, ...]]:
    """Two servers on one data directory (one database, one secret key file)."""
    data_dir = tmp_path_factory.mktemp("console-login")
    first = start_in_thread(_settings(data_dir))
    second = start_in_thread(_settings(data_dir))
    yield first, second
    second.stop()
    first.stop()


@pytest.fixture(scope="module")
def url(servers: tuple[RunningServer, ...]) -> str:
    return servers[0].url


def aws(url: str, service: str, key: tuple[str, str] = ROOT_KEYS) -> Any:
    return boto3.client(service, endpoint_url=url, region_name=REGION,
                        aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        config=Config(retries={"max_attempts": 1}))


def request(url: str, method: str, path: str, *, cookie: str | None = None,
            form: dict[str, str] | None = None, headers: dict[str, str] | None = None,
            data: str | None = None) -> tuple[int, dict[str, str], str]:
    """One request, redirects not followed: (status, headers lower-cased, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    sent = dict(headers or {})
    body = data
    if cookie is not None:
        sent["Cookie"] = f"{COOKIE}={cookie}"
    if form is not None:
        body = urlencode(form)
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=sent)
    answer = conn.getresponse()
    got = {k.lower(): v for k, v in answer.getheaders()}
    text = answer.read().decode()
    conn.close()
    return answer.status, got, text


def login(url: str, key: tuple[str, str]) -> str:
    status, headers, _ = request(url, "POST", "/_console/login", form={
        "access_key_id": key[0], "secret_access_key": key[1]})
    assert status == 303, status
    value = headers["set-cookie"].split(";", 1)[0]
    assert value.startswith(COOKIE + "=")
    return value.split("=", 1)[1]


def user(url: str, name: str, *policies: str) -> tuple[str, str]:
    iam = aws(url, "iam")
    iam.create_user(UserName=name)
    for arn in policies:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def console_logins(url: str) -> list[dict[str, Any]]:
    events = aws(url, "cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}])["Events"]
    return [json.loads(e["CloudTrailEvent"]) for e in events]


def test_without_a_session_pages_go_to_the_login_and_json_answers_401(url: str) -> None:
    status, headers, _ = request(url, "GET", "/_console/training-jobs?status=Failed")
    assert status == 303
    assert headers["location"] == ("/_console/login?next=%2F_console%2Ftraining-jobs%3F"
                                   "status%3DFailed")
    status, _, body = request(url, "GET", "/_console/api/logs/training-jobs/x")
    assert status == 401 and json.loads(body)["error"] == "NotAuthenticated"
    status, _, _ = request(url, "POST", "/_console/api/training-jobs/x/stop",
                           headers={"X-Opensage-Console": "1"})
    assert status == 401
    # the login page and what it loads are open
    status, _, page = request(url, "GET", "/_console/login")
    assert status == 200 and 'for="secret-access-key"' in page
    assert request(url, "GET", "/_console/static/console.css")[0] == 200


def test_login_sets_a_strict_http_only_cookie_and_is_recorded(url: str) -> None:
    key = user(url, "alice", READ_ONLY)
    status, headers, _ = request(url, "POST", "/_console/login", form={
        "access_key_id": key[0], "secret_access_key": key[1],
        "next": "/_console/training-jobs"})
    assert status == 303 and headers["location"] == "/_console/training-jobs"
    attributes = [a.strip().lower() for a in headers["set-cookie"].split(";")]
    assert "httponly" in attributes and "samesite=strict" in attributes
    assert "path=/_console" in attributes and "max-age=43200" in attributes
    cookie = headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    assert key[1] not in cookie
    status, _, page = request(url, "GET", "/_console/training-jobs", cookie=cookie)
    assert status == 200 and "Signed in as" in page and "alice" in page
    success = [e for e in console_logins(url) if e["userIdentity"].get("userName") == "alice"]
    assert success and success[0]["eventSource"] == "signin.amazonaws.com"
    assert success[0]["responseElements"] == {"ConsoleLogin": "Success"}
    assert success[0]["eventType"] == "AwsConsoleSignIn"
    assert key[1] not in json.dumps(success)


def test_a_wrong_secret_answers_the_form_again_and_is_recorded(url: str) -> None:
    key = user(url, "bob", READ_ONLY)
    status, headers, page = request(url, "POST", "/_console/login", form={
        "access_key_id": key[0], "secret_access_key": key[1] + "x"})
    assert status == 401 and "set-cookie" not in headers
    assert "Your authentication information is incorrect" in page
    assert f'value="{key[0]}"' in page  # the key id is kept, the secret is not
    status, _, _ = request(url, "POST", "/_console/login", form={
        "access_key_id": "AKIANOSUCHKEY0000000", "secret_access_key": "whatever"})
    assert status == 401
    events = console_logins(url)
    failed = [e for e in events if e["responseElements"] == {"ConsoleLogin": "Failure"}]
    assert {e["userIdentity"]["userName"] for e in failed} >= {
        "bob", "HIDDEN_DUE_TO_SECURITY_REASONS"}
    assert all(e["errorMessage"] == "Failed authentication" for e in failed)
    assert "whatever" not in json.dumps(events) and key[1] not in json.dumps(events)


def test_a_forged_or_expired_cookie_is_refused(url: str,
                                              servers: tuple[RunningServer, ...]) -> None:
    cookie = login(url, ROOT_KEYS)
    assert request(url, "GET", "/_console/", cookie=cookie)[0] == 200
    key_id, expires, mac = cookie.split(".")
    for forged in (f"{key_id}.{int(expires) + 1}.{mac}",  # a longer life
                   f"AKIAOTHERKEY00000000.{expires}.{mac}",  # another key
                   f"{key_id}.{expires}.{mac[:-2]}AA", "garbage", ""):
        status, headers, _ = request(url, "GET", "/_console/", cookie=forged)
        assert status == 303 and headers["location"].startswith("/_console/login"), forged
    # made with the server's own key, but expired: refused (and cleared)
    data_dir = servers[0].settings.data_dir
    sessions = Sessions.__new__(Sessions)
    sessions._key = SecretBox(data_dir / KEY_FILE).derive("opensage console session v1")
    stale = f"{ROOT_KEYS[0]}.{int(time.time()) - 1}"
    fresh = f"{ROOT_KEYS[0]}.{int(time.time()) + 60}"
    status, headers, _ = request(url, "GET", "/_console/",
                                 cookie=f"{stale}.{sessions._mac(stale)}")
    assert status == 303 and f"{COOKIE}=" in headers["set-cookie"]
    assert request(url, "GET", "/_console/", cookie=f"{fresh}.{sessions._mac(fresh)}")[0] \
        == 200


def test_a_cookie_made_by_one_server_works_on_another(servers: tuple[RunningServer, ...]
                                                     ) -> None:
    cookie = login(servers[0].url, ROOT_KEYS)
    assert request(servers[1].url, "GET", "/_console/models", cookie=cookie)[0] == 200


def test_an_inactive_or_deleted_key_ends_its_session(url: str) -> None:
    key = user(url, "carol", READ_ONLY)
    cookie = login(url, key)
    iam = aws(url, "iam")
    assert request(url, "GET", "/_console/models", cookie=cookie)[0] == 200
    iam.update_access_key(UserName="carol", AccessKeyId=key[0], Status="Inactive")
    status, headers, _ = request(url, "GET", "/_console/models", cookie=cookie)
    assert status == 303 and headers["location"].startswith("/_console/login")
    status, _, _ = request(url, "POST", "/_console/login", form={
        "access_key_id": key[0], "secret_access_key": key[1]})
    assert status == 401  # an inactive key cannot sign in either
    iam.update_access_key(UserName="carol", AccessKeyId=key[0], Status="Active")
    assert request(url, "GET", "/_console/models", cookie=cookie)[0] == 200
    iam.delete_access_key(UserName="carol", AccessKeyId=key[0])
    iam.detach_user_policy(UserName="carol", PolicyArn=READ_ONLY)
    iam.delete_user(UserName="carol")
    assert request(url, "GET", "/_console/models", cookie=cookie)[0] == 303
    assert request(url, "GET", "/_console/api/logs/training-jobs/x", cookie=cookie)[0] == 401


def test_pages_and_actions_are_authorised_with_the_apis_words(url: str) -> None:
    key = user(url, "reader", READ_ONLY)
    cookie = login(url, key)
    arn = f"arn:aws:iam::{ACCOUNT}:user/reader"
    assert request(url, "GET", "/_console/training-jobs", cookie=cookie)[0] == 200
    status, _, page = request(url, "GET", "/_console/training-jobs/missing", cookie=cookie)
    assert status == 404 and "Requested resource not found" in page  # Describe is allowed
    status, _, body = request(url, "POST", "/_console/api/training-jobs/Some-Job/stop",
                              cookie=cookie, headers={"X-Opensage-Console": "1"})
    refusal = (f"User: {arn} is not authorized to perform: sagemaker:StopTrainingJob on "
               f"resource: arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/some-job because "
               "no identity-based policy allows the sagemaker:StopTrainingJob action")
    assert status == 403
    assert json.loads(body) == {"error": "AccessDeniedException", "message": refusal}
    status, _, page = request(url, "GET", "/_console/objects", cookie=cookie)
    assert status == 403 and "<title>Access denied" in page
    assert "not authorized to perform: s3:ListAllMyBuckets" in page
    status, _, body = request(url, "POST", "/_console/api/endpoints/e/invocations",
                              cookie=cookie, headers={"X-Opensage-Console": "1"})
    assert status == 403 and "sagemaker:InvokeEndpoint" in json.loads(body)["message"]
    # the same user's API call is refused in the same words
    with pytest.raises(ClientError) as err:
        aws(url, "sagemaker", key).stop_training_job(TrainingJobName="Some-Job")
    assert err.value.response["Error"]["Message"] == refusal


def test_logout_clears_the_cookie(url: str) -> None:
    cookie = login(url, ROOT_KEYS)
    status, headers, _ = request(url, "POST", "/_console/logout", cookie=cookie)
    assert status == 303 and headers["location"] == "/_console/login"
    cleared = [a.strip().lower() for a in headers["set-cookie"].split(";")]
    assert cleared[0] == f'{COOKIE}=""' and "max-age=0" in cleared


def test_login_is_no_aws_route_and_signed_requests_stay_aws_calls(url: str) -> None:
    s3 = aws(url, "s3")
    with pytest.raises(ClientError) as err:  # a signed request under the prefix: S3's answer
        s3.get_object(Bucket="_console", Key="login")
    assert err.value.response["Error"]["Code"] in ("InvalidBucketName", "NoSuchBucket")
    # an unsigned S3 call elsewhere is still refused as AWS refuses it
    status, _, body = request(url, "GET", "/some-bucket/login")
    assert status == 403 and "<Code>AccessDenied</Code>" in body
    assert PRINCIPAL == auth.PRINCIPAL  # the console reads the key the API's gate sets


def test_temporary_credentials_sign_in_with_their_session_token(url: str) -> None:
    key = user(url, "dave", READ_ONLY)
    aws(url, "iam").put_user_policy(UserName="dave", PolicyName="sessions", PolicyDocument=(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Action": "sts:GetSessionToken", "Resource": "*"}]}'))
    token = aws(url, "sts", key).get_session_token()["Credentials"]
    form = {"access_key_id": token["AccessKeyId"], "secret_access_key":
            token["SecretAccessKey"]}
    status, _, page = request(url, "POST", "/_console/login", form=form)
    assert status == 401 and "session token" in page  # the token is part of the pair
    status, headers, _ = request(url, "POST", "/_console/login", form={
        **form, "session_token": token["SessionToken"]})
    assert status == 303
    cookie = headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    max_age = int(headers["set-cookie"].lower().split("max-age=")[1].split(";")[0])
    assert 0 < max_age <= token["Expiration"].timestamp() - time.time() + 5
    assert request(url, "GET", "/_console/training-jobs", cookie=cookie)[0] == 200


def test_downloads_go_through_the_console_and_need_s3_get_object(url: str) -> None:
    s3 = aws(url, "s3")
    s3.create_bucket(Bucket="shared-data")
    s3.put_object(Bucket="shared-data", Key="dir/a b.csv", Body=b"1,2\n3,4\n")
    root = login(url, ROOT_KEYS)
    status, _, page = request(url, "GET", "/_console/objects/shared-data?prefix=dir%2F",
                              cookie=root)
    link = "/_console/objects/shared-data/download?key=dir%2Fa%20b.csv"
    assert status == 200 and f'href="{link}"' in page
    status, headers, body = request(url, "GET", link, cookie=root)
    assert status == 200 and body == "1,2\n3,4\n"
    assert headers["content-disposition"] == 'attachment; filename="a b.csv"'
    reader = login(url, user(url, "erin", READ_ONLY))
    status, _, page = request(url, "GET", link, cookie=reader)
    assert status == 403 and "not authorized to perform: s3:GetObject on resource: " \
        "arn:aws:s3:::shared-data/dir/a b.csv" in page


def test_try_it_invokes_an_endpoint_for_a_session_allowed_to(url: str) -> None:
    sm, s3 = aws(url, "sagemaker"), aws(url, "s3")
    s3.create_bucket(Bucket=BUCKET)
    train, _, _ = regression_csv(200, seed=1)
    for channel in ("train", "validation"):
        s3.put_object(Bucket=BUCKET, Key=f"data/{channel}/part-0.csv", Body=train)
    sm.create_training_job(**job_request("served", HyperParameters={
        "objective": "reg:squarederror", "num_round": "3"}))
    job = wait_for(sm, "served", timeout=120)
    assert job["TrainingJobStatus"] == "Completed", job
    sm.create_model(ModelName="served", ExecutionRoleArn=job["RoleArn"], PrimaryContainer={
        "Image": job["AlgorithmSpecification"]["TrainingImage"],
        "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName="served", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "served", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="served", EndpointConfigName="served")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="served",
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    invoker = user(url, "invoker", READ_ONLY)
    aws(url, "iam").put_user_policy(UserName="invoker", PolicyName="invoke", PolicyDocument=(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": '
        '"sagemaker:InvokeEndpoint", "Resource": "arn:aws:sagemaker:*:*:endpoint/served"}]}'))
    cookie = login(url, invoker)
    status, _, page = request(url, "GET", "/_console/endpoints/served", cookie=cookie)
    assert status == 200
    assert 'data-invoke="/_console/api/endpoints/served/invocations"' in page
    status, headers, body = request(url, "POST", "/_console/api/endpoints/served/invocations",
                                    cookie=cookie, headers={"X-Opensage-Console": "1",
                                                            "Content-Type": "text/csv"},
                                    form=None, data="0.5,1.0,-0.3,0.2")
    assert status == 200 and headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    float(body.strip().split(",")[0].split("\n")[0])  # a prediction
    reader = login(url, user(url, "no-invoke", READ_ONLY))
    status, _, page = request(url, "GET", "/_console/endpoints/served", cookie=reader)
    assert status == 200 and "Try it" not in page  # the box is offered only when allowed
