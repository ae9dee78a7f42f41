"""The policy evaluator against the examples of AWS's IAM documentation (evaluation logic,
condition operators, policy variables, set qualifiers)."""

from __future__ import annotations

from typing import Any

import pytest

from opensage.services.iam.managed import MANAGED
from opensage.services.iam.policy import (
    Caller,
    Decision,
    MalformedPolicy,
    evaluate,
    is_public,
    parse,
)

ACCOUNT = "123456789012"


def decide(document: dict[str, Any] | list[dict[str, Any]], action: str, resource: str = "*",
           **context: Any) -> Decision:
    docs = document if isinstance(document, list) else [document]
    policies = [parse(d, f"p{i}", "user") for i, d in enumerate(docs)]
    ctx = {k.replace("__", ":").replace("_slash_", "/").lower(): v for k, v in context.items()}
    return evaluate(policies, action, resource, ctx).decision


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def test_deny_wins_then_allow_else_implicit_deny() -> None:
    deny_delete = {"Effect": "Deny", "Action": "sagemaker:Delete*", "Resource": "*"}
    assert decide(doc(ALLOW_ALL, deny_delete), "sagemaker:DeleteModel") == Decision.EXPLICIT_DENY
    assert decide(doc(ALLOW_ALL, deny_delete), "sagemaker:CreateModel") == Decision.ALLOWED
    assert decide([doc(deny_delete), doc(ALLOW_ALL)], "sagemaker:DeleteModel") == (
        Decision.EXPLICIT_DENY)  # across policies too
    assert decide(doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
                  "s3:PutObject") == Decision.IMPLICIT_DENY
    assert decide([], "s3:GetObject") == Decision.IMPLICIT_DENY


def test_actions_are_case_insensitive_wildcards_and_not_action() -> None:
    read = doc({"Effect": "Allow", "Action": ["sagemaker:Describe*", "sagemaker:List?odels"],
                "Resource": "*"})
    assert decide(read, "SageMaker:describetrainingjob") == Decision.ALLOWED
    assert decide(read, "sagemaker:ListModels") == Decision.ALLOWED
    assert decide(read, "sagemaker:ListModelss") == Decision.IMPLICIT_DENY
    # AWS's example: everything but IAM
    not_iam = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert decide(not_iam, "s3:GetObject") == Decision.ALLOWED
    assert decide(not_iam, "iam:CreateUser") == Decision.IMPLICIT_DENY


def test_resources_are_case_sensitive_with_not_resource_and_variables() -> None:
    bucket = doc({"Effect": "Allow", "Action": "s3:GetObject",
                  "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/*"})
    key = "arn:aws:s3:::amzn-s3-demo-bucket/home/alice/notes.txt"
    assert decide(bucket, "s3:GetObject", key, aws__username="alice") == Decision.ALLOWED
    assert decide(bucket, "s3:GetObject", key, aws__username="bob") == Decision.IMPLICIT_DENY
    assert decide(bucket, "s3:GetObject", key) == Decision.IMPLICIT_DENY  # no variable value
    assert decide(bucket, "s3:GetObject", key.replace("home", "HOME"),
                  aws__username="alice") == Decision.IMPLICIT_DENY
    not_resource = doc({"Effect": "Deny", "Action": "s3:*",
                        "NotResource": ["arn:aws:s3:::HRBucket/Payroll",
                                        "arn:aws:s3:::HRBucket/Payroll/*"]}, ALLOW_ALL)
    assert decide(not_resource, "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/x") == (
        Decision.ALLOWED)
    assert decide(not_resource, "s3:GetObject", "arn:aws:s3:::HRBucket/Other") == (
        Decision.EXPLICIT_DENY)
    arn = doc({"Effect": "Allow", "Action": "sagemaker:*",
               "Resource": "arn:aws:sagemaker:*:123456789012:training-job/team-a-*"})
    assert decide(arn, "sagemaker:StopTrainingJob",
                  "arn:aws:sagemaker:us-east-1:123456789012:training-job/team-a-1") == (
        Decision.ALLOWED)
    assert decide(arn, "sagemaker:StopTrainingJob",
                  "arn:aws:sagemaker:us-east-1:123456789012:training-job/team-b-1") == (
        Decision.IMPLICIT_DENY)


def cond(operator: str, key: str, values: Any, effect: str = "Allow") -> dict[str, Any]:
    return doc({"Effect": effect, "Action": "*", "Resource": "*",
                "Condition": {operator: {key: values}}})


@pytest.mark.parametrize(("operator", "key", "values", "context", "expected"), [
    ("StringEquals", "aws:username", "alice", {"aws:username": "alice"}, True),
    ("StringEquals", "aws:username", ["bob", "alice"], {"aws:username": "alice"}, True),
    ("StringEquals", "aws:username", "Alice", {"aws:username": "alice"}, False),
    ("StringEqualsIgnoreCase", "aws:username", "Alice", {"aws:username": "alice"}, True),
    ("StringNotEquals", "aws:username", "bob", {"aws:username": "alice"}, True),
    ("StringNotEquals", "aws:username", ["bob", "alice"], {"aws:username": "alice"}, False),
    ("StringNotEquals", "aws:username", "bob", {}, True),  # negated, absent: true
    ("StringEquals", "aws:username", "bob", {}, False),  # absent: false
    ("StringLike", "aws:userid", "AIDA*", {"aws:userid": "AIDAEXAMPLE"}, True),
    ("StringNotLike", "aws:userid", "AIDA*", {"aws:userid": "AROAEXAMPLE:s"}, True),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/ml-*",
     {"aws:principalarn": "arn:aws:iam::123456789012:role/ml-team"}, True),
    ("ArnEquals", "aws:PrincipalArn", "arn:aws:iam::123456789012:user/alice",
     {"aws:principalarn": "arn:aws:iam::123456789012:user/alice"}, True),
    ("ArnNotLike", "aws:PrincipalArn", "arn:aws:iam::*:role/ml-*",
     {"aws:principalarn": "arn:aws:iam::123456789012:user/alice"}, True),
    ("Bool", "sagemaker:NetworkIsolation", "true", {"sagemaker:networkisolation": True}, True),
    ("Bool", "sagemaker:NetworkIsolation", "true", {"sagemaker:networkisolation": False}, False),
    ("Bool", "aws:SecureTransport", "false", {"aws:securetransport": "false"}, True),
    ("NumericLessThan", "s3:max-keys", "10", {"s3:max-keys": "5"}, True),
    ("NumericLessThan", "s3:max-keys", "10", {"s3:max-keys": "10"}, False),
    ("NumericLessThanEquals", "s3:max-keys", "10", {"s3:max-keys": "10"}, True),
    ("NumericGreaterThan", "s3:max-keys", "10", {"s3:max-keys": "11"}, True),
    ("NumericGreaterThanEquals", "s3:max-keys", "10", {"s3:max-keys": "9"}, False),
    ("NumericEquals", "s3:max-keys", "10", {"s3:max-keys": "ten"}, False),
    ("DateGreaterThan", "aws:CurrentTime", "2020-04-01T00:00:00Z",
     {"aws:currenttime": "2020-06-30T00:00:00Z"}, True),
    ("DateLessThan", "aws:CurrentTime", "2020-06-30T00:00:00Z",
     {"aws:currenttime": "2020-07-01T00:00:00Z"}, False),
    ("DateLessThan", "aws:EpochTime", "2020-06-30T00:00:00Z", {"aws:epochtime": "0"}, True),
    ("IpAddress", "aws:SourceIp", ["203.0.113.0/24", "2001:DB8:1234:5678::/64"],
     {"aws:sourceip": "203.0.113.7"}, True),
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:sourceip": "198.51.100.1"}, False),
    ("IpAddress", "aws:SourceIp", "2001:DB8:1234:5678::/64",
     {"aws:sourceip": "2001:db8:1234:5678::1"}, True),
    ("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:sourceip": "198.51.100.1"}, True),
    ("StringEqualsIfExists", "sagemaker:InstanceTypes", "ml.m5.large", {}, True),
    ("StringEqualsIfExists", "sagemaker:InstanceTypes", "ml.m5.large",
     {"sagemaker:instancetypes": ["ml.p3.2xlarge"]}, False),
    ("StringLikeIfExists", "sagemaker:VolumeKmsKey", "arn:aws:kms:*",
     {"sagemaker:volumekmskey": "arn:aws:kms:us-east-1:1:key/k"}, True),
    ("Null", "aws:RequestTag/team", "false", {"aws:requesttag/team": "a"}, True),
    ("Null", "aws:RequestTag/team", "false", {}, False),
    ("Null", "aws:RequestTag/team", "true", {}, True),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["team", "project"],
     {"aws:tagkeys": ["cost", "team"]}, True),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["team"], {"aws:tagkeys": ["cost"]}, False),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["team"], {}, False),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["team", "project"],
     {"aws:tagkeys": ["team", "project"]}, True),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["team", "project"],
     {"aws:tagkeys": ["team", "cost"]}, False),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["team"], {}, True),  # AWS: absent -> true
    ("ForAllValues:StringLike", "sagemaker:InstanceTypes", ["ml.m5.*", "ml.c5.*"],
     {"sagemaker:instancetypes": ["ml.m5.large", "ml.c5.xlarge"]}, True),
    ("ForAnyValue:StringNotEquals", "aws:TagKeys", ["team"], {"aws:tagkeys": ["team", "x"]},
     True),
    ("StringEquals", "aws:ResourceTag/team", "a", {"aws:resourcetag/team": "a"}, True),
    ("StringEquals", "sagemaker:ResourceTag/team", "a", {"sagemaker:resourcetag/team": "b"},
     False),
])
def test_condition_operators(operator: str, key: str, values: Any, context: dict[str, Any],
                             expected: bool) -> None:
    policies = [parse(cond(operator, key, values))]
    decision = evaluate(policies, "s3:GetObject", "*", context).decision
    assert (decision == Decision.ALLOWED) is expected


def test_conditions_and_between_keys_and_operators_or_between_values() -> None:
    both = doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {
        "StringEquals": {"aws:username": ["alice", "bob"], "aws:requesttag/team": "ml"},
        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    good = {"aws:username": "bob", "aws:requesttag/team": "ml", "aws:sourceip": "10.1.2.3"}
    assert evaluate([parse(both)], "a:b", "*", good).allowed
    for key, value in (("aws:username", "carol"), ("aws:requesttag/team", "x"),
                       ("aws:sourceip", "192.168.0.1")):
        assert not evaluate([parse(both)], "a:b", "*", {**good, key: value}).allowed


def test_deny_on_tag_condition_wins_over_full_access() -> None:
    deny = {"Effect": "Deny", "Action": "sagemaker:CreateTrainingJob", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestTag/team": "ml"}}}
    policies = [parse(MANAGED["AmazonSageMakerFullAccess"], "full", "aws-managed"),
                parse(doc(deny), "deny", "user")]
    arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/j"
    result = evaluate(policies, "sagemaker:CreateTrainingJob", arn, {})
    assert result.decision == Decision.EXPLICIT_DENY and result.matched[0].source_id == "deny"
    tagged = evaluate(policies, "sagemaker:CreateTrainingJob", arn,
                      {"aws:requesttag/team": "ml"})
    assert tagged.decision == Decision.ALLOWED


def test_resource_policy_principals() -> None:
    bucket = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": "arn:aws:s3:::b/*"}]}
    policy = parse(bucket, "b", "resource", resource_policy=True)
    alice = Caller("arn:aws:iam::123456789012:user/alice", ACCOUNT)
    assert evaluate([policy], "s3:GetObject", "arn:aws:s3:::b/k", {}, alice).allowed
    assert not evaluate([policy], "s3:GetObject", "arn:aws:s3:::b/k", {},
                        Caller("arn:aws:iam::123456789012:user/bob", ACCOUNT)).allowed
    assert evaluate([policy], "s3:DeleteObject", "arn:aws:s3:::b/k", {},
                    alice).decision == Decision.EXPLICIT_DENY
    # without a caller a resource policy's statements never apply
    assert evaluate([policy], "s3:GetObject", "arn:aws:s3:::b/k", {}).decision == (
        Decision.IMPLICIT_DENY)


ALICE = Caller(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT)
SESSION = Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/ml/job-1", ACCOUNT,
                 f"arn:aws:iam::{ACCOUNT}:role/team/ml")


def bucket_decision(principal: Any, caller: Caller, effect: str = "Allow",
                    field: str = "Principal", identity: dict[str, Any] | None = None,
                    **context: Any) -> Decision:
    statement = {"Effect": effect, field: principal, "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::b/*"}
    policies = [parse(doc(statement), "b", "resource", resource_policy=True)]
    if identity is not None:
        policies.insert(0, parse(identity, "mine", "user"))
    return evaluate(policies, "s3:GetObject", "arn:aws:s3:::b/k", context, caller).decision


@pytest.mark.parametrize(("principal", "caller", "expected"), [
    ("*", ALICE, Decision.ALLOWED),
    ({"AWS": "*"}, SESSION, Decision.ALLOWED),
    ({"AWS": ALICE.arn}, ALICE, Decision.ALLOWED),
    ({"AWS": [f"arn:aws:iam::{ACCOUNT}:user/bob", ALICE.arn]}, ALICE, Decision.ALLOWED),
    ({"AWS": ALICE.arn}, SESSION, Decision.IMPLICIT_DENY),
    # a role ARN (with its path) names every session of the role
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/ml"}, SESSION, Decision.ALLOWED),
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/ml"}, SESSION, Decision.IMPLICIT_DENY),
    ({"AWS": SESSION.arn}, SESSION, Decision.ALLOWED),
    ({"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/ml/other"}, SESSION,
     Decision.IMPLICIT_DENY),
    # the account delegates to IAM: in an Allow it grants nothing by itself
    ({"AWS": ACCOUNT}, ALICE, Decision.IMPLICIT_DENY),
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, SESSION, Decision.IMPLICIT_DENY),
    # service principals never sign a request here
    ({"Service": "sagemaker.amazonaws.com"}, ALICE, Decision.IMPLICIT_DENY),
    # no wildcard in a principal ARN: only "*" alone means everyone
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/*"}, ALICE, Decision.IMPLICIT_DENY),
])
def test_bucket_policy_principal_matching(principal: Any, caller: Caller,
                                          expected: Decision) -> None:
    assert bucket_decision(principal, caller) == expected


def test_an_account_principal_in_a_deny_names_every_principal_of_the_account() -> None:
    everything = doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    for principal in (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"):
        for caller in (ALICE, SESSION):
            assert bucket_decision({"AWS": principal}, caller, "Deny",
                                   identity=everything) == Decision.EXPLICIT_DENY
    assert bucket_decision({"AWS": "210987654321"}, ALICE, "Deny",
                           identity=everything) == Decision.ALLOWED


def test_identity_and_bucket_policies_together() -> None:
    allow = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    deny = doc({"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"})
    # a bucket Deny beats an identity Allow; an identity Deny beats a bucket Allow
    assert bucket_decision("*", ALICE, "Deny", identity=allow) == Decision.EXPLICIT_DENY
    assert bucket_decision("*", ALICE, "Allow", identity=deny) == Decision.EXPLICIT_DENY
    # either may allow
    assert bucket_decision({"AWS": "bob"}, ALICE, identity=allow) == Decision.ALLOWED
    assert bucket_decision({"AWS": ALICE.arn}, ALICE,
                           identity=doc()) == Decision.ALLOWED


def test_not_principal_exempts_only_the_exact_arn() -> None:
    # Deny everyone but alice
    assert bucket_decision({"AWS": ALICE.arn}, ALICE, "Deny", "NotPrincipal") == (
        Decision.IMPLICIT_DENY)
    assert bucket_decision({"AWS": ALICE.arn}, SESSION, "Deny", "NotPrincipal") == (
        Decision.EXPLICIT_DENY)
    # a role's ARN does not exempt its sessions, nor the account its users
    for exempt in (SESSION.role_arn, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"):
        assert bucket_decision({"AWS": exempt}, SESSION, "Deny", "NotPrincipal") == (
            Decision.EXPLICIT_DENY)
    assert bucket_decision({"AWS": SESSION.arn}, SESSION, "Deny", "NotPrincipal") == (
        Decision.IMPLICIT_DENY)


def test_bucket_policy_conditions() -> None:
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::b/*",
                 "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    policy = parse(doc(statement), "b", "resource", resource_policy=True)

    def decide_from(ip: str) -> Decision:
        return evaluate([policy], "s3:GetObject", "arn:aws:s3:::b/k",
                        {"aws:sourceip": ip}, ALICE).decision

    assert decide_from("10.1.2.3") == Decision.ALLOWED
    assert decide_from("127.0.0.1") == Decision.IMPLICIT_DENY
    insecure = {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    denied = parse(doc(insecure), "b", "resource", resource_policy=True)
    assert evaluate([denied], "s3:GetObject", "arn:aws:s3:::b/k",
                    {"aws:securetransport": False}, ALICE).decision == Decision.EXPLICIT_DENY


@pytest.mark.parametrize(("statement", "public"), [
    ({"Principal": "*"}, True),
    ({"Principal": {"AWS": "*"}}, True),
    ({"Principal": {"AWS": ALICE.arn}}, False),
    ({"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}, False),
    ({"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}, True),
    ({"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}},
     False),
    ({"Principal": "*", "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "1"}}},
     True),
    ({"Principal": "*", "Condition": {"StringLike": {"s3:prefix": "home/*"}}}, True),
    ({"Principal": "*", "Effect": "Deny"}, False),
])
def test_policy_status_is_public(statement: dict[str, Any], public: bool) -> None:
    full = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
            **statement}
    assert is_public(parse(doc(full), "b", "resource", resource_policy=True)) is public


@pytest.mark.parametrize("document", [
    "not json", "[]", {"Version": "2012-10-17"},
    {"Version": "2012-10-17", "Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}},
    {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Resource": "*"}},
    {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*"}},
    {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
                                            "Condition": {"StringSorta": {"a": "b"}}}},
    {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
                                            "Principal": "*"}},
    {"Version": "2099-01-01", "Statement": []},
])
def test_malformed_documents_are_refused(document: Any) -> None:
    with pytest.raises(MalformedPolicy):
        parse(document)


def test_managed_policies_parse_and_read_only_reads() -> None:
    for name, document in MANAGED.items():
        parse(document, name, "aws-managed")
    read = [parse(MANAGED["AmazonSageMakerReadOnly"])]
    assert evaluate(read, "sagemaker:DescribeTrainingJob", "*", {}).allowed
    assert evaluate(read, "sagemaker:ListModels", "*", {}).allowed
    assert not evaluate(read, "sagemaker:CreateTrainingJob", "*", {}).allowed
    s3_read = [parse(MANAGED["AmazonS3ReadOnlyAccess"])]
    assert evaluate(s3_read, "s3:GetObject", "arn:aws:s3:::b/k", {}).allowed
    assert not evaluate(s3_read, "s3:PutObject", "arn:aws:s3:::b/k", {}).allowed
