"""Jobs and models acting as their execution role (``RoleArn``, ``ExecutionRoleArn``) under
``--auth sigv4``.

The runner (``runner.job_role``) asks for a job's role when the job starts: here it is
assumed as STS ``AssumeRole`` would (a session named after the job, credentials for the
job's ``MaxRuntimeInSeconds`` capped by the role's ``MaxSessionDuration``) and the runner gets
the check of each S3 call the platform makes for the job against the role's identity
policies, and the credentials for the job's code. An endpoint's deployment gets the check
alone (``acting_as``): it fetches its model's artifacts as the model's role, and its workers
get no credentials. A host on a Ray node reaches the objects through the S3 facade
with the job role's session, or where there is none a short-lived session of the server's
own (``server_session``). A role nobody created (the implicit roles ``GetRole`` answers for any
name) gives none: such a job acts as the server, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opensage.runner.job_role import Check, JobRole
from opensage.services.iam.policies import denial_message
from opensage.services.iam.principal import Principal
from opensage.services.iam.service import IamService


class JobRoles:
    def __init__(self, iam: IamService) -> None:
        self.iam = iam

    def session(self, role_arn: str, session_name: str, seconds: int) -> JobRole | None:
        found = self.iam.role_session(role_arn, session_name[:64], seconds)
        if found is None:
            return None
        principal, credentials = found
        return JobRole(role_arn, self._check(principal), {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]})

    def server_session(self, seconds: int) -> dict[str, str]:
        credentials = self.iam.server_session(seconds)
        return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"]}

    def acting_as(self, role_arn: str, session_name: str) -> JobRole | None:
        principal = self.iam.role_principal(role_arn, session_name[:64])
        return None if principal is None else JobRole(role_arn, self._check(principal))

    def _check(self, principal: Principal) -> Check:
        policies = self.iam.policies
        base = policies.base_context(principal)  # reads the role's row: once per job

        def check(action: str, resource: str, extra: Mapping[str, Any]) -> str | None:
            now = policies.base_context(self.iam.root_principal())  # the time keys, no I/O
            context = {**base, "aws:currenttime": now["aws:currenttime"],
                       "aws:epochtime": now["aws:epochtime"], **extra}
            result = policies.authorize(principal, action, resource, context)
            return None if result.allowed else denial_message(principal, action, resource,
                                                                 result)

        return check
