"""Who may see what in the console: each page, before it reads, asks the policy evaluator the
API uses (``IamService.policies``) whether the caller (``session.PRINCIPAL``: a cookie's key,
set by ``SessionGate``) may make the API call the page stands for: ``sagemaker:List*`` for a
list, ``Describe*`` on the resource's ARN for a detail page, ``Stop*``, ``CreateTrainingJob``
and ``iam:PassRole`` for the actions, ``logs:*``, ``cloudwatch:GetMetricData``, ``s3:*`` for
what those services hold. A page's own reads refuse with AWS's words (``Denied``: the 403
page or JSON); the parts of a page that other calls fill (charts, scaling) are left out when
they are not allowed. Under ``--auth none`` there is no principal and nothing is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from opensage.console.session import PRINCIPAL
from opensage.errors import AwsError
from opensage.services.iam import Principal
from opensage.services.iam.access import pass_role_context, request_context
from opensage.services.iam.policies import denial_message
from opensage.services.wiring import Services


class Denied(AwsError):
    code = "AccessDeniedException"
    status = 403


@dataclass(frozen=True)
class Caller:
    """The services, seen by one console request's caller."""

    services: Services
    principal: Principal | None
    source_ip: str = ""

    @classmethod
    def of(cls, request: Request, services: Services) -> Caller:
        client = request.scope.get("client")
        return cls(services, request.scope.get(PRINCIPAL), client[0] if client else "")

    def sagemaker_arn(self, kind: str, name: str) -> str:
        return self.services.context.settings.arn("sagemaker", f"{kind}/{name.lower()}")

    def _check(self, action: str, resource: str, params: dict[str, Any] | None) -> str | None:
        """None if allowed, else AWS's refusal."""
        if self.principal is None or self.principal.type == "Root":
            return None
        iam = self.services.iam
        tags = None
        if resource.startswith("arn:aws:sagemaker:"):
            def tags() -> dict[str, str]:
                items, _ = self.services.context.resources.list_tags(resource, 100, None)
                return {t["Key"]: t.get("Value", "") for t in items}
        context, roles = request_context(iam, self.principal, self.source_ip, params or {},
                                         tags)
        result = iam.policies.authorize(self.principal, action, resource, context)
        if not result.allowed:
            return denial_message(self.principal, action, resource, result)
        if action.startswith("sagemaker:Create"):
            for role in roles:
                result = iam.policies.authorize(self.principal, "iam:PassRole", role,
                                                pass_role_context(context))
                if not result.allowed:
                    return denial_message(self.principal, "iam:PassRole", role, result)
        return None

    def require(self, action: str, resource: str = "*",
                params: dict[str, Any] | None = None) -> None:
        """Raise Denied unless the caller may make this call (with these request members:
        their tags, instance types and roles, as the API checks them)."""
        refused = self._check(action, resource, params)
        if refused is not None:
            raise Denied(refused)

    def allowed(self, action: str, resource: str = "*") -> bool:
        return self._check(action, resource, None) is None
