"""STS and IAM's GetRole over the query protocol."""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from tests.conftest import ACCOUNT

STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def post_form(endpoint: str, form: dict[str, str]) -> tuple[int, ET.Element]:
    request = urllib.request.Request(
        endpoint + "/", data=urllib.parse.urlencode(form).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, ET.fromstring(response.read())
    except urllib.error.HTTPError as err:
        return err.code, ET.fromstring(err.read())


def test_get_caller_identity_answers_the_configured_account(client: Callable[..., Any]) -> None:
    identity = client("sts").get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/opensage/opensage"
    assert identity["UserId"].startswith("AROA") and identity["UserId"].endswith(":opensage")
    key_info = client("sts").get_access_key_info(AccessKeyId="AKIAIOSFODNN7EXAMPLE")
    assert key_info["Account"] == ACCOUNT


def test_get_caller_identity_raw_xml(endpoint: str) -> None:
    status, root = post_form(endpoint, {"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    assert status == 200
    assert root.tag == f"{STS_NS}GetCallerIdentityResponse"
    assert root.findtext(f"{STS_NS}GetCallerIdentityResult/{STS_NS}Account") == ACCOUNT
    assert root.findtext(f"{STS_NS}ResponseMetadata/{STS_NS}RequestId")


def test_assume_role_and_session_token(client: Callable[..., Any]) -> None:
    sts = client("sts")
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/service-role/Trainer"
    answer = sts.assume_role(RoleArn=role_arn, RoleSessionName="nightly", DurationSeconds=900)
    assert answer["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/Trainer/nightly")
    assert answer["AssumedRoleUser"]["AssumedRoleId"].endswith(":nightly")
    credentials = answer["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA") and credentials["SessionToken"]
    lifetime = credentials["Expiration"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=800) < lifetime <= dt.timedelta(seconds=900)
    assert sts.get_session_token()["Credentials"]["SecretAccessKey"]


def test_iam_get_role_for_execution_role_lookups(client: Callable[..., Any]) -> None:
    role = client("iam").get_role(RoleName="opensage")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/opensage"
    assert role["Path"] == "/" and role["RoleName"] == "opensage"
    # botocore URL-decodes and parses the policy document, as with real IAM.
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"


def test_unknown_action_is_an_invalid_action_error(endpoint: str) -> None:
    status, root = post_form(endpoint, {"Action": "MakeMeAdmin", "Version": "2011-06-15"})
    assert status == 400
    assert root.tag == f"{STS_NS}ErrorResponse"
    assert root.findtext(f"{STS_NS}Error/{STS_NS}Type") == "Sender"
    assert root.findtext(f"{STS_NS}Error/{STS_NS}Code") == "InvalidAction"
    assert "MakeMeAdmin" in (root.findtext(f"{STS_NS}Error/{STS_NS}Message") or "")
    assert root.findtext(f"{STS_NS}RequestId")


def test_missing_action_and_missing_parameters(endpoint: str) -> None:
    status, root = post_form(endpoint, {"Version": "2011-06-15"})
    assert status == 400 and root.findtext(f"{STS_NS}Error/{STS_NS}Code") == "MissingAction"
    status, root = post_form(endpoint, {"Action": "AssumeRole", "Version": "2011-06-15",
                                        "RoleSessionName": "x1"})
    assert status == 400
    assert root.findtext(f"{STS_NS}Error/{STS_NS}Code") == "ValidationError"
    assert "roleArn" in (root.findtext(f"{STS_NS}Error/{STS_NS}Message") or "")
