"""A job's execution role as the runner gets it (``services.iam.job_roles``): a session of a
role that was created, named after the job and valid for the job's run, whose check is the
role's identity policies; none for a role nobody created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    service.create_role({"RoleName": "worker", "Path": "/jobs/",
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
    assert key is not None and key.expiration == NOW + 7200  # the job's MaxRuntime
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


@pytest.mark.parametrize("arn", [
    f"arn:aws:iam::{ACCOUNT}:role/opensage",  # nobody created it
    f"arn:aws:iam::{ACCOUNT}:role/worker",  # the created one has another path
    "arn:aws:iam::999999999999:role/jobs/worker",  # another account
])
def test_other_roles_leave_the_job_as_the_server(iam: IamService, arn: str) -> None:
    assert JobRoles(iam).session(arn, "my-job", 3600) is None
