"""Authorisation under ``--auth sigv4``: IAM users and assumed roles with real keys (boto3)
against a real server; their identity policies decide, with AWS's words when they refuse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from opensage.testing import ROOT_KEYS, server_process, sigv4_args

ACCOUNT = "123456789012"
REGION = "us-east-1"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonSageMakerReadOnly"
FULL = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"


class Server:
    def __init__(self, url: str) -> None:
        self.url = url

    def client(self, service: str, key: tuple[str, ...] = ROOT_KEYS) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key[0], aws_secret_access_key=key[1],
                            aws_session_token=key[2] if len(key) > 2 else None,
                            config=Config(retries={"max_attempts": 1}))

    def user(self, name: str, *, attach: tuple[str, ...] = (),
             inline: dict[str, Any] | None = None) -> tuple[str, str]:
        iam = self.client("iam")
        iam.create_user(UserName=name)
        for arn in attach:
            iam.attach_user_policy(UserName=name, PolicyArn=arn)
        if inline is not None:
            iam.put_user_policy(UserName=name, PolicyName="inline",
                                PolicyDocument=json.dumps(inline))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("authz-data")
    with server_process(data_dir, *sigv4_args(), "--account-id", ACCOUNT) as (url, _proc):
        yield Server(url)


def denied(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_read_only_user_reads_but_cannot_create(server: Server) -> None:
    key = server.user("reader", attach=(READ_ONLY,))
    sm = server.client("sagemaker", key)
    assert sm.list_models()["Models"] == []
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    code, message = denied(sm.create_experiment, ExperimentName="nope")
    assert code == "AccessDeniedException"
    assert message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: "
        f"sagemaker:CreateExperiment on resource: arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
        f"experiment/nope because no identity-based policy allows the "
        f"sagemaker:CreateExperiment action")
    root = server.client("sagemaker")
    assert [e["ExperimentName"] for e in root.list_experiments()["ExperimentSummaries"]] == []
    attached = server.client("iam").list_attached_user_policies(UserName="reader")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [READ_ONLY]


def test_explicit_deny_on_a_tag_condition_wins_over_full_access(server: Server) -> None:
    deny = doc({"Effect": "Deny", "Action": "sagemaker:CreateExperiment", "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestTag/team": "ml"}}})
    sm = server.client("sagemaker", server.user("tagged", attach=(FULL,), inline=deny))
    code, message = denied(sm.create_experiment, ExperimentName="untagged")
    assert code == "AccessDeniedException" and "with an explicit deny" in message
    sm.create_experiment(ExperimentName="tagged-ok", Tags=[{"Key": "team", "Value": "ml"}])
    names = [e["ExperimentName"] for e in
             server.client("sagemaker").list_experiments()["ExperimentSummaries"]]
    assert names == ["tagged-ok"]


def test_s3_prefix_limited_policy(server: Server) -> None:
    server.client("s3").create_bucket(Bucket="shared")
    policy = doc(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": "arn:aws:s3:::shared/home/${aws:username}/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::shared",
         "Condition": {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}})
    s3 = server.client("s3", server.user("carol", inline=policy))
    s3.put_object(Bucket="shared", Key="home/carol/a.txt", Body=b"mine")
    assert s3.get_object(Bucket="shared", Key="home/carol/a.txt")["Body"].read() == b"mine"
    listed = s3.list_objects_v2(Bucket="shared", Prefix="home/carol/")
    assert [o["Key"] for o in listed["Contents"]] == ["home/carol/a.txt"]
    code, message = denied(s3.put_object, Bucket="shared", Key="home/dave/x", Body=b"no")
    assert code == "AccessDenied" and "s3:PutObject on resource: arn:aws:s3:::shared/home/dave/x" \
        in message
    assert denied(s3.list_objects_v2, Bucket="shared")[0] == "AccessDenied"
    root = server.client("s3")
    assert [o["Key"] for o in root.list_objects_v2(Bucket="shared")["Contents"]] == [
        "home/carol/a.txt"]


def test_pass_role_is_required_to_hand_a_role_over(server: Server) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
    allow_create = doc({"Effect": "Allow", "Action": "sagemaker:CreateModel", "Resource": "*"})
    sm = server.client("sagemaker", server.user("passer", inline=allow_create))
    code, message = denied(sm.create_model, ModelName="m", ExecutionRoleArn=role,
                           PrimaryContainer={"Image": "x"})
    assert code == "AccessDeniedException"
    assert f"iam:PassRole on resource: {role}" in message
    assert server.client("sagemaker").list_models()["Models"] == []


def test_simulate_principal_policy_explains(server: Server) -> None:
    server.user("simulated", attach=(READ_ONLY,), inline=doc(
        {"Effect": "Deny", "Action": "sagemaker:DescribeModel", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}))
    iam = server.client("iam")
    results = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/simulated",
        ActionNames=["sagemaker:ListModels", "sagemaker:CreateTrainingJob",
                     "sagemaker:DescribeModel"],
        ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyType": "ip",
                         "ContextKeyValues": ["10.1.2.3"]}])["EvaluationResults"]
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in results}
    assert decisions == {"sagemaker:ListModels": "allowed",
                         "sagemaker:CreateTrainingJob": "implicitDeny",
                         "sagemaker:DescribeModel": "explicitDeny"}
    listed = next(r for r in results if r["EvalActionName"] == "sagemaker:ListModels")
    assert listed["MatchedStatements"][0]["SourcePolicyId"] == READ_ONLY


def test_an_assumed_roles_policies_apply(server: Server) -> None:
    iam = server.client("iam")
    trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                 "Action": "sts:AssumeRole"})
    iam.create_role(RoleName="lister", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="lister", PolicyName="list", PolicyDocument=json.dumps(
        doc({"Effect": "Allow", "Action": "sagemaker:List*", "Resource": "*"})))
    assert iam.list_role_policies(RoleName="lister")["PolicyNames"] == ["list"]
    user = server.user("assumer", inline=doc(
        {"Effect": "Allow", "Action": "sts:AssumeRole",
         "Resource": f"arn:aws:iam::{ACCOUNT}:role/lister"}))
    assert denied(server.client("sagemaker", user).list_models)[0] == "AccessDeniedException"
    creds = server.client("sts", user).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/lister", RoleSessionName="s1")["Credentials"]
    session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    sm = server.client("sagemaker", session)
    assert sm.list_models()["Models"] == []
    code, message = denied(sm.create_experiment, ExperimentName="by-role")
    assert code == "AccessDeniedException"
    assert message.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/lister/s1 is not "
                              f"authorized to perform: sagemaker:CreateExperiment")
    assert denied(server.client("sts", user).assume_role,
                  RoleArn=f"arn:aws:iam::{ACCOUNT}:role/other",
                  RoleSessionName="s2")[0] == "AccessDenied"


def test_customer_managed_policy_through_a_group(server: Server) -> None:
    iam = server.client("iam")
    text = json.dumps(doc({"Effect": "Allow", "Action": "sagemaker:ListModels",
                           "Resource": "*"}))
    arn = iam.create_policy(PolicyName="lister", PolicyDocument=text)["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/lister"
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert version["Document"] == json.loads(text) and version["IsDefaultVersion"]
    key = server.user("grouped")
    sm = server.client("sagemaker", key)
    assert denied(sm.list_models)[0] == "AccessDeniedException"
    iam.create_group(GroupName="listers")
    iam.attach_group_policy(GroupName="listers", PolicyArn=arn)
    iam.add_user_to_group(GroupName="listers", UserName="grouped")
    assert sm.list_models()["Models"] == []
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    assert denied(iam.delete_policy, PolicyArn=arn)[0] == "DeleteConflict"
    names = {p["PolicyName"] for p in iam.list_policies(Scope="All")["Policies"]}
    assert {"lister", "AmazonSageMakerFullAccess", "AmazonS3ReadOnlyAccess"} <= names
    assert denied(iam.put_user_policy, UserName="grouped", PolicyName="bad",
                  PolicyDocument='{"Version": "2012-10-17"}')[0] == "MalformedPolicyDocument"
