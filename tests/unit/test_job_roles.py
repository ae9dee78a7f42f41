"""A job's execution role as the runner gets it (``services.iam.job_roles``): a session of a
role that was created, named after the job and valid for the job's run, whose check is the
role's identity policies; none for a role nobody created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensage.errors import NoSuchEntity, ValidationException
from opensage.runner.job_role import model_data_denial
from opensage.services.iam import IamService
from opensage.services.iam.job_roles import JobRoles
from opensage.settings import Settings
from opensage.store.db import Database

ACCOUNT = "123456789012"
NOW = 1_800_000_000.0


@pytest.fixture
def iam(tmp_path: Path) -> IamService:
    settings = Settings(data_dir=tmp_path, port=0, account_id=ACCOUNT)
    db = Database(settings.database_url)
    db.prepare()
    service = IamService(settings, db, clock=lambda: NOW)
    service.create_role({"RoleName": "worker", "Path": "/jobs/", "MaxSessionDuration": 10800,
                         "AssumeRolePolicyDocument": json.dumps({"Statement": []})})
    service.policies.put_inline("role", {
        "RoleName": "worker", "PolicyName": "s3", "PolicyDocument": json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                 "Condition": {"StringLike": {"s3:prefix": "in/*"}}},
                {"Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::b/in/*"}]})})
    return service


def test_a_created_role_gives_the_job_a_session_and_its_policies(iam: IamService) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:role/jobs/worker"
    role = JobRoles(iam).session(arn, "my-job", 7200)
    assert role is not None and role.arn == arn
    key = iam.lookup(role.environment["AWS_ACCESS_KEY_ID"])
    assert key is not None and key.expiration == NOW + 7200  # the job's MaxRuntime (< 3 h)
    assert key.principal.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/worker/my-job"
    assert key.secret == role.environment["AWS_SECRET_ACCESS_KEY"]
    assert iam.token_matches(key, role.environment["AWS_SESSION_TOKEN"])
    assert "SECRET" not in repr(role) and key.secret not in repr(role)
    assert role.check("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "in/x"}) is None
    assert role.check("s3:GetObject", "arn:aws:s3:::b/in/x.csv", {}) is None
    assert role.check("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "other/"}) == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/worker/my-job is not authorized to "
        "perform: s3:ListBucket on resource: arn:aws:s3:::b because no identity-based "
        "policy allows the s3:ListBucket action")
    assert role.check("s3:PutObject", "arn:aws:s3:::b/in/x.csv", {}) is not None
    short = JobRoles(iam).session(arn, "quick", 60)
    assert short is not None
    found = iam.lookup(short.environment["AWS_ACCESS_KEY_ID"])
    assert found is not None and found.expiration == NOW + 900  # STS's shortest session


def test_a_jobs_session_lasts_at_most_the_roles_max_session_duration(iam: IamService) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:role/jobs/worker"
    long = JobRoles(iam).session(arn, "long-job", 86400)  # MaxRuntime: a day
    assert long is not None
    key = iam.lookup(long.environment["AWS_ACCESS_KEY_ID"])
    assert key is not None and key.expiration == NOW + 10800  # the role's setting
    iam.update_role({"RoleName": "worker", "MaxSessionDuration": 3600})
    assert iam.get_role({"RoleName": "worker"})["Role"]["MaxSessionDuration"] == 3600
    later = JobRoles(iam).session(arn, "later-job", 86400)
    assert later is not None
    key = iam.lookup(later.environment["AWS_ACCESS_KEY_ID"])
    assert key is not None and key.expiration == NOW + 3600
    # the platform's checks do not hang on the credentials: they still answer
    assert later.check("s3:GetObject", "arn:aws:s3:::b/in/x.csv", {}) is None


def test_acting_as_a_role_checks_its_policies_without_minting_credentials(
        iam: IamService) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:role/jobs/worker"
    role = JobRoles(iam).acting_as(arn, "my-endpoint")
    assert role is not None and role.environment == {}
    assert role.check("s3:GetObject", "arn:aws:s3:::b/in/model.tar.gz", {}) is None
    assert role.check("s3:GetObject", "arn:aws:s3:::b/other/model.tar.gz", {}) == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/worker/my-endpoint is not authorized to "
        "perform: s3:GetObject on resource: arn:aws:s3:::b/other/model.tar.gz because no "
        "identity-based policy allows the s3:GetObject action")
    assert JobRoles(iam).acting_as(f"arn:aws:iam::{ACCOUNT}:role/opensage", "e") is None


def test_model_data_denial_names_the_object_and_the_role(iam: IamService) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:role/jobs/worker"
    role = JobRoles(iam).acting_as(arn, "ep")
    assert model_data_denial(role, "s3://b/in/model.tar.gz", "us-east-1") is None
    assert model_data_denial(None, "s3://b/other/model.tar.gz", "us-east-1") is None
    assert model_data_denial(role, None, "us-east-1") is None
    why = model_data_denial(role, "s3://b/other/model.tar.gz", "us-east-1")
    assert why is not None
    assert why.startswith(f'Could not access model data at s3://b/other/model.tar.gz. Please '
                          f'ensure that the role "{arn}" exists')
    assert why.endswith("object is located in us-east-1. AccessDenied (403): User: "
                        f"arn:aws:sts::{ACCOUNT}:assumed-role/worker/ep is not authorized to "
                        "perform: s3:GetObject on resource: arn:aws:s3:::b/other/model.tar.gz "
                        "because no identity-based policy allows the s3:GetObject action")


@pytest.mark.parametrize("seconds", [3599, 43201])
def test_max_session_duration_is_between_an_hour_and_twelve(iam: IamService,
                                                            seconds: int) -> None:
    with pytest.raises(ValidationException, match=f"Value '{seconds}' at "
                       "'maxSessionDuration' failed to satisfy constraint"):
        iam.create_role({"RoleName": f"r{seconds}", "MaxSessionDuration": seconds,
                         "AssumeRolePolicyDocument": "{}"})
    with pytest.raises(ValidationException, match="maxSessionDuration"):
        iam.update_role({"RoleName": "worker", "MaxSessionDuration": seconds})
    assert iam.get_role({"RoleName": "worker"})["Role"]["MaxSessionDuration"] == 10800
    with pytest.raises(NoSuchEntity, match="The role with name nobody cannot be found."):
        iam.update_role({"RoleName": "nobody", "MaxSessionDuration": 3600})


@pytest.mark.parametrize("arn", [
    f"arn:aws:iam::{ACCOUNT}:role/opensage",  # nobody created it
    f"arn:aws:iam::{ACCOUNT}:role/worker",  # the created one has another path
    "arn:aws:iam::999999999999:role/jobs/worker",  # another account
])
def test_other_roles_leave_the_job_as_the_server(iam: IamService, arn: str) -> None:
    assert JobRoles(iam).session(arn, "my-job", 3600) is None
