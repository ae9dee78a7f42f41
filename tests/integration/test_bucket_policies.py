"""S3 bucket policies under ``--auth sigv4`` (boto3 with real keys against a real server):
Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus as botocore's model shapes them, S3's
``MalformedPolicy`` and ``NoSuchBucketPolicy``, and the decision AWS makes for a principal of
the bucket's own account: an explicit Deny in the identity policies or the bucket policy wins,
else either may allow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from opensage.testing import server_process, sigv4_args
from tests.integration.test_authz import ACCOUNT, Server, denied, doc

S3_FULL = "arn:aws:iam::aws:policy/AmazonS3FullAccess"
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("bucket-policy-data")
    with server_process(data_dir, *sigv4_args(), "--account-id", ACCOUNT) as (url, _proc):
        yield Server(url)


def bucket(server: Server, name: str, *keys: str) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket=name)
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=key.encode())


def put_policy(server: Server, name: str, *statements: dict[str, Any]) -> str:
    text = json.dumps(doc(*statements))
    server.client("s3").put_bucket_policy(Bucket=name, Policy=text)
    return text


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def message(who: str, action: str, resource: str, why: str) -> str:
    return f"User: {who} is not authorized to perform: {action} on resource: {resource} {why}"


def test_put_get_delete_and_status(server: Server) -> None:
    s3 = server.client("s3")
    bucket(server, "bp-crud")
    err = denied(s3.get_bucket_policy, Bucket="bp-crud")
    assert err == ("NoSuchBucketPolicy", "The bucket policy does not exist")
    assert denied(s3.get_bucket_policy_status, Bucket="bp-crud")[0] == "NoSuchBucketPolicy"
    private = put_policy(server, "bp-crud", {
        "Sid": "OnlyRoot", "Effect": "Allow", "Principal": {"AWS": ACCOUNT},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bp-crud/*"})
    assert s3.get_bucket_policy(Bucket="bp-crud")["Policy"] == private
    assert s3.get_bucket_policy_status(Bucket="bp-crud")["PolicyStatus"] == {"IsPublic": False}
    public = put_policy(server, "bp-crud", {
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::bp-crud/public/*"})
    assert s3.get_bucket_policy(Bucket="bp-crud")["Policy"] == public
    assert s3.get_bucket_policy_status(Bucket="bp-crud")["PolicyStatus"] == {"IsPublic": True}
    response = s3.delete_bucket_policy(Bucket="bp-crud")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert denied(s3.get_bucket_policy, Bucket="bp-crud")[0] == "NoSuchBucketPolicy"
    s3.delete_bucket_policy(Bucket="bp-crud")  # none: 204 again, as S3
    # the policy goes with its bucket
    put_policy(server, "bp-crud", {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                   "Resource": "arn:aws:s3:::bp-crud/*"})
    s3.delete_bucket(Bucket="bp-crud")
    s3.create_bucket(Bucket="bp-crud")
    assert denied(s3.get_bucket_policy, Bucket="bp-crud")[0] == "NoSuchBucketPolicy"
    assert denied(s3.put_bucket_policy, Bucket="bp-missing", Policy=public)[0] == (
        "NoSuchBucket")
    assert denied(s3.get_bucket_policy, Bucket="bp-missing")[0] == "NoSuchBucket"
    # CloudTrail names the operations
    trail = server.client("cloudtrail")
    for name in ("PutBucketPolicy", "GetBucketPolicy", "DeleteBucketPolicy",
                 "GetBucketPolicyStatus"):
        events = trail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": name}])["Events"]
        assert events and all(e["EventSource"] == "s3.amazonaws.com" for e in events), name


def _statement(**changes: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::bp-bad/*"}
    statement.update(changes)
    return {k: v for k, v in statement.items() if v is not None}


@pytest.mark.parametrize(("policy", "why"), [
    ("not json", "Policies must be valid JSON and the first byte must be '{'"),
    ("[1, 2]", "Policies must be valid JSON and the first byte must be '{'"),
    (json.dumps({"Statement": [_statement()]}), "Missing required field Version"),
    (json.dumps({"Version": "2012-10-17"}), "Missing required field Statement"),
    (json.dumps(doc(_statement(Effect="Maybe"))), "Invalid effect: Maybe"),
    (json.dumps(doc(_statement(Principal=None))), "Missing required field Principal"),
    (json.dumps(doc(_statement(Principal={"Federated": "cognito-identity.amazonaws.com"}))),
     "Invalid principal in policy"),
    (json.dumps(doc(_statement(Principal={"AWS": "alice"}))), "Invalid principal in policy"),
    (json.dumps(doc(_statement(Principal={"AWS": user_arn("nobody")}))),
     "Invalid principal in policy"),
    (json.dumps(doc(_statement(Resource="arn:aws:s3:::another-bucket/*"))),
     "Policy has invalid resource"),
    (json.dumps(doc(_statement(Resource=None))), "Missing required field Resource"),
    (json.dumps(doc(_statement(Action="sagemaker:CreateModel"))),
     "Policy has invalid action"),
    (json.dumps(doc(_statement(Condition={"StringSorta": {"s3:prefix": "a"}}))),
     "Invalid Condition type : StringSorta."),
])
def test_malformed_policies_are_refused_and_nothing_is_stored(server: Server, policy: str,
                                                               why: str) -> None:
    s3 = server.client("s3")
    try:
        s3.create_bucket(Bucket="bp-bad")
    except ClientError:
        pass  # made by an earlier case
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_policy(Bucket="bp-bad", Policy=policy)
    error = exc.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("MalformedPolicy", why)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert denied(s3.get_bucket_policy, Bucket="bp-bad")[0] == "NoSuchBucketPolicy"


def test_a_bucket_deny_beats_an_identity_allow(server: Server) -> None:
    bucket(server, "bp-deny", "open/a.txt", "secret/b.txt")
    s3 = server.client("s3", server.user("fully", attach=(S3_FULL,)))
    assert s3.get_object(Bucket="bp-deny", Key="secret/b.txt")["Body"].read() == b"secret/b.txt"
    put_policy(server, "bp-deny", {
        "Effect": "Deny", "Principal": {"AWS": user_arn("fully")}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::bp-deny/secret/*"})
    code, text = denied(s3.get_object, Bucket="bp-deny", Key="secret/b.txt")
    assert code == "AccessDenied"
    assert text == message(user_arn("fully"), "s3:GetObject", "arn:aws:s3:::bp-deny/secret/b.txt",
                           "with an explicit deny in a resource-based policy")
    assert s3.get_object(Bucket="bp-deny", Key="open/a.txt")["Body"].read() == b"open/a.txt"
    # a copy reads its source as GetObject: the source bucket's policy applies
    bucket(server, "bp-deny-copy")
    code, text = denied(s3.copy_object, Bucket="bp-deny-copy", Key="b.txt",
                        CopySource={"Bucket": "bp-deny", "Key": "secret/b.txt"})
    assert (code, text) == ("AccessDenied", message(
        user_arn("fully"), "s3:GetObject", "arn:aws:s3:::bp-deny/secret/b.txt",
        "with an explicit deny in a resource-based policy"))
    s3.copy_object(Bucket="bp-deny-copy", Key="a.txt",
                   CopySource={"Bucket": "bp-deny", "Key": "open/a.txt"})
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bp-deny-copy")["Contents"]] == [
        "a.txt"]
    # root is not bound by a bucket policy here (see docs/threat-model.md)
    root = server.client("s3")
    assert root.get_object(Bucket="bp-deny", Key="secret/b.txt")["Body"].read() == (
        b"secret/b.txt")
    # the Deny goes with the policy, at once on this server
    root.delete_bucket_policy(Bucket="bp-deny")
    assert s3.get_object(Bucket="bp-deny", Key="secret/b.txt")["Body"].read() == (
        b"secret/b.txt")


def test_a_bucket_allow_grants_a_user_without_identity_policies(server: Server) -> None:
    bucket(server, "bp-grant", "data/x.csv")
    s3 = server.client("s3", server.user("plain"))
    code, text = denied(s3.get_object, Bucket="bp-grant", Key="data/x.csv")
    assert (code, text) == ("AccessDenied", message(
        user_arn("plain"), "s3:GetObject", "arn:aws:s3:::bp-grant/data/x.csv",
        "because no identity-based policy allows the s3:GetObject action"))
    put_policy(server, "bp-grant", {
        "Effect": "Allow", "Principal": {"AWS": [user_arn("plain")]},
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": ["arn:aws:s3:::bp-grant", "arn:aws:s3:::bp-grant/data/*"]})
    assert s3.get_object(Bucket="bp-grant", Key="data/x.csv")["Body"].read() == b"data/x.csv"
    listed = s3.list_objects_v2(Bucket="bp-grant")
    assert [o["Key"] for o in listed["Contents"]] == ["data/x.csv"]
    code, text = denied(s3.put_object, Bucket="bp-grant", Key="data/y.csv", Body=b"y")
    assert text.endswith("because no identity-based policy allows the s3:PutObject action")
    # the policy itself is S3's to guard: this user may not read or change it
    assert denied(s3.get_bucket_policy, Bucket="bp-grant")[0] == "AccessDenied"
    assert denied(s3.delete_bucket_policy, Bucket="bp-grant")[0] == "AccessDenied"


def test_a_bucket_policy_grants_a_role_and_its_sessions(server: Server) -> None:
    bucket(server, "bp-role", "in/r.txt")
    server.client("iam").create_role(RoleName="bp-reader", Path="/team/",
                                     AssumeRolePolicyDocument=json.dumps(TRUST))
    put_policy(server, "bp-role", {
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/bp-reader"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bp-role/*"})
    creds = server.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/team/bp-reader",
        RoleSessionName="s1")["Credentials"]
    s3 = server.client("s3", (creds["AccessKeyId"], creds["SecretAccessKey"],
                              creds["SessionToken"]))
    assert s3.get_object(Bucket="bp-role", Key="in/r.txt")["Body"].read() == b"in/r.txt"
    assert denied(s3.put_object, Bucket="bp-role", Key="in/w.txt", Body=b"w")[0] == (
        "AccessDenied")


def test_principal_star_with_a_source_ip_condition(server: Server) -> None:
    bucket(server, "bp-ip", "k")
    s3 = server.client("s3", server.user("anywhere"))

    def allow_from(cidr: str) -> None:
        put_policy(server, "bp-ip", {
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::bp-ip/*",
            "Condition": {"IpAddress": {"aws:SourceIp": cidr}}})

    allow_from("127.0.0.0/8")  # the test's own address
    assert s3.get_object(Bucket="bp-ip", Key="k")["Body"].read() == b"k"
    assert server.client("s3").get_bucket_policy_status(Bucket="bp-ip")["PolicyStatus"] == {
        "IsPublic": False}
    allow_from("10.0.0.0/8")
    assert denied(s3.get_object, Bucket="bp-ip", Key="k")[0] == "AccessDenied"


def test_the_account_principal_does_not_grant_by_itself(server: Server) -> None:
    bucket(server, "bp-account", "k")
    for name, principal in (("acct-id", ACCOUNT), ("acct-root", f"arn:aws:iam::{ACCOUNT}:root")):
        put_policy(server, "bp-account", {
            "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::bp-account/*"})
        s3 = server.client("s3", server.user(name))
        code, text = denied(s3.get_object, Bucket="bp-account", Key="k")
        assert code == "AccessDenied" and "no identity-based policy allows" in text
    # in a Deny the account names every principal of it: identity Allow or not
    put_policy(server, "bp-account", {
        "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bp-account/*"})
    s3 = server.client("s3", server.user("acct-full", attach=(S3_FULL,)))
    code, text = denied(s3.get_object, Bucket="bp-account", Key="k")
    assert code == "AccessDenied"
    assert text.endswith("with an explicit deny in a resource-based policy")
    listed = s3.list_objects_v2(Bucket="bp-account")  # other actions: the identity policy
    assert [o["Key"] for o in listed["Contents"]] == ["k"]


def test_bucket_policy_operations_are_authorised_on_the_bucket(server: Server) -> None:
    bucket(server, "bp-admin")
    admin = server.client("s3", server.user("policy-admin", inline=doc({
        "Effect": "Allow", "Action": ["s3:PutBucketPolicy", "s3:GetBucketPolicy",
                                      "s3:GetBucketPolicyStatus"],
        "Resource": "arn:aws:s3:::bp-admin"})))
    text = put_policy(server, "bp-admin", {
        "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucketPolicy",
        "Resource": "arn:aws:s3:::bp-admin"})
    assert admin.get_bucket_policy(Bucket="bp-admin")["Policy"] == text
    assert admin.get_bucket_policy_status(Bucket="bp-admin")["PolicyStatus"] == {
        "IsPublic": False}
    assert denied(admin.delete_bucket_policy, Bucket="bp-admin") == ("AccessDenied", message(user_arn("policy-admin"), "s3:DeleteBucketPolicy",
                          "arn:aws:s3:::bp-admin",
                          "with an explicit deny in a resource-based policy"))
    # a policy that denies its own change locks every user out; root still may
    put_policy(server, "bp-admin", {
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutBucketPolicy",
        "Resource": "arn:aws:s3:::bp-admin"})
    assert denied(admin.put_bucket_policy, Bucket="bp-admin", Policy=text)[0] == "AccessDenied"
    server.client("s3").delete_bucket_policy(Bucket="bp-admin")
    admin.put_bucket_policy(Bucket="bp-admin", Policy=text)
