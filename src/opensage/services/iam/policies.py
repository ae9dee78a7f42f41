"""IAM identity policies: inline and managed policies of users, groups and roles, the AWS
managed policies (``managed.py``), ``SimulatePrincipalPolicy``, and the decision every signed
request gets (``authorize``).

A principal's parsed policies are cached ``CACHE_SECONDS`` (dropped at once by a change made
through this server), so a request's check costs the evaluation only. A resource that has a
resource policy (an S3 bucket's, through ``resource_policy``) is decided by both together,
with AWS's same-account logic (``policy.evaluate``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, unquote

from opensage.errors import (
    AwsError,
    DeleteConflict,
    EntityAlreadyExists,
    NoSuchEntity,
    ValidationException,
)
from opensage.services.iam.managed import ARN_PREFIX, MANAGED
from opensage.services.iam.naming import iam_path as _path
from opensage.services.iam.naming import random_id as _random_id
from opensage.services.iam.policy import (
    Caller,
    Decision,
    MalformedPolicy,
    Policy,
    Result,
    evaluate,
    parse,
)
from opensage.services.iam.principal import Principal
from opensage.store.iam import AlreadyExists, IamStore

CACHE_SECONDS = 5.0
KINDS = {"User": "user", "Role": "role", "Group": "group"}


class MalformedPolicyDocument(AwsError):
    code = "MalformedPolicyDocument"
    status = 400


def _document(raw: str) -> tuple[str, Policy]:
    text = unquote(raw) if raw.lstrip().startswith("%") else raw
    try:
        return text, parse(text)
    except MalformedPolicy as exc:
        raise MalformedPolicyDocument(str(exc)) from None


class LazyContext(Mapping[str, Any]):
    """A request context whose resource tags are read only if a condition asks for them."""

    def __init__(self, values: dict[str, Any],
                 resource_tags: Callable[[], dict[str, str]] | None) -> None:
        self.known = values
        self._loader = resource_tags
        self._tags: dict[str, str] | None = None

    def __getitem__(self, key: str) -> Any:
        if key in self.known:
            return self.known[key]
        for prefix in ("aws:resourcetag/", "sagemaker:resourcetag/"):
            if key.startswith(prefix) and self._loader is not None:
                if self._tags is None:
                    self._tags = {k.lower(): v for k, v in self._loader().items()}
                return self._tags[key[len(prefix):]]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


class Policies:
    def __init__(self, store: IamStore, account: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.account, self.clock = store, account, clock
        self._cache: dict[str, tuple[float, tuple[Policy, ...]]] = {}
        self._lock = threading.Lock()
        # resource ARN -> the resource's own policy (an S3 bucket's), None where it has none
        self.resource_policy: Callable[[str], Policy | None] | None = None

    def _changed(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- owners ----------------------------------------------------------------------------

    def _owner(self, kind: str, params: dict[str, Any]) -> str:
        field = {"user": "UserName", "role": "RoleName", "group": "GroupName"}[kind]
        name = str(params[field])
        found = {"user": self.store.user, "role": self.store.role,
                 "group": self.store.group}[kind](name)
        if found is None:
            raise NoSuchEntity(f"The {kind} with name {name} cannot be found.")
        return name

    # -- inline policies -------------------------------------------------------------------

    def put_inline(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(kind, params)
        text, _ = _document(params["PolicyDocument"])
        self.store.put_inline(kind, owner, params["PolicyName"], text)
        self._changed()
        return {}

    def get_inline(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(kind, params)
        name = params["PolicyName"]
        document = self.store.inline(kind, owner).get(name)
        if document is None:
            raise NoSuchEntity(f"The {kind} policy with name {name} cannot be found.")
        field = {"user": "UserName", "role": "RoleName", "group": "GroupName"}[kind]
        return {field: owner, "PolicyName": name, "PolicyDocument": quote(document)}

    def delete_inline(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(kind, params)
        if not self.store.delete_inline(kind, owner, params["PolicyName"]):
            raise NoSuchEntity(f"The {kind} policy with name {params['PolicyName']} cannot "
                               f"be found.")
        self._changed()
        return {}

    def list_inline(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(kind, params)
        return {"PolicyNames": list(self.store.inline(kind, owner)), "IsTruncated": False}

    # -- managed policies ------------------------------------------------------------------

    def _policy_arn(self, path: str, name: str) -> str:
        return f"arn:aws:iam::{self.account}:policy{path}{name}"

    def _policy_row(self, arn: str) -> dict[str, Any]:
        if arn.startswith(ARN_PREFIX) and arn[len(ARN_PREFIX):] in MANAGED:
            name = arn[len(ARN_PREFIX):]
            return {"arn": arn, "name": name, "policy_id": "ANPA" + name.upper()[:17],
                    "path": "/", "create_time": 1546300800.0,
                    "body": {"DefaultVersionId": "v1", "Versions": {"v1": {
                        "Document": json.dumps(MANAGED[name]), "CreateDate": 1546300800.0}}}}
        row = self.store.policy(arn)
        if row is None:
            raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
        return row

    def _policy_document(self, row: dict[str, Any]) -> dict[str, Any]:
        body = row["body"]
        out = {"PolicyName": row["name"], "PolicyId": row["policy_id"], "Arn": row["arn"],
               "Path": row["path"], "DefaultVersionId": body["DefaultVersionId"],
               "AttachmentCount": self.store.attachment_count(row["arn"]),
               "PermissionsBoundaryUsageCount": 0, "IsAttachable": True,
               "CreateDate": row["create_time"], "UpdateDate": row["create_time"]}
        if body.get("Description"):
            out["Description"] = body["Description"]
        return out

    def create_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["PolicyName"], _path(params.get("Path"))
        text, _ = _document(params["PolicyDocument"])
        now = self.clock()
        row = {"arn": self._policy_arn(path, name), "name": name,
               "policy_id": _random_id("ANPA", 17), "path": path, "create_time": now,
               "body": {"DefaultVersionId": "v1", "Description": params.get("Description"),
                        "Versions": {"v1": {"Document": text, "CreateDate": now}}}}
        try:
            self.store.insert_policy(row)
        except AlreadyExists:
            raise EntityAlreadyExists(f"A policy called {name} already exists. Duplicate "
                                      f"names are not allowed.") from None
        return {"Policy": self._policy_document(row)}

    def get_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Policy": self._policy_document(self._policy_row(params["PolicyArn"]))}

    def get_policy_version(self, params: dict[str, Any]) -> dict[str, Any]:
        row = self._policy_row(params["PolicyArn"])
        version = params["VersionId"]
        found = row["body"]["Versions"].get(version)
        if found is None:
            raise NoSuchEntity(f"Policy {row['arn']} version {version} does not exist or is "
                               f"not attachable.")
        return {"PolicyVersion": {"Document": quote(found["Document"]), "VersionId": version,
                                  "IsDefaultVersion": version == row["body"][
                                      "DefaultVersionId"],
                                  "CreateDate": found["CreateDate"]}}

    def list_policies(self, params: dict[str, Any]) -> dict[str, Any]:
        scope = params.get("Scope") or "All"
        rows: list[dict[str, Any]] = []
        if scope in ("All", "AWS"):
            rows += [self._policy_row(ARN_PREFIX + n) for n in sorted(MANAGED)]
        if scope in ("All", "Local"):
            rows += self.store.policies(_path(params.get("PathPrefix")), "", 1000)
        docs = [self._policy_document(r) for r in rows]
        if params.get("OnlyAttached"):
            docs = [d for d in docs if d["AttachmentCount"]]
        return {"Policies": docs, "IsTruncated": False}

    def delete_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["PolicyArn"]
        if arn.startswith(ARN_PREFIX):
            raise ValidationException("AWS managed policies cannot be deleted.")
        self._policy_row(arn)
        if self.store.attachment_count(arn):
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        self.store.delete_policy(arn)
        return {}

    def attach(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(kind, params)
        self._policy_row(params["PolicyArn"])
        self.store.attach(kind, owner, params["PolicyArn"])
        self._changed()
        return {}

    def detach(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(kind, params)
        if not self.store.detach(kind, owner, params["PolicyArn"]):
            raise NoSuchEntity(f"Policy {params['PolicyArn']} was not found.")
        self._changed()
        return {}

    def list_attached(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._owner(kind, params)
        policies = []
        for arn in self.store.attached(kind, owner):
            policies.append({"PolicyName": arn.rsplit("/", 1)[-1], "PolicyArn": arn})
        return {"AttachedPolicies": policies, "IsTruncated": False}

    # -- groups ----------------------------------------------------------------------------

    def create_group(self, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["GroupName"], _path(params.get("Path"))
        row = {"name": name, "group_id": _random_id("AGPA", 17), "path": path,
               "create_time": self.clock()}
        try:
            self.store.insert_group(row)
        except AlreadyExists:
            raise EntityAlreadyExists(f"Group with name {name} already exists.") from None
        return {"Group": {"Path": path, "GroupName": name, "GroupId": row["group_id"],
                          "Arn": f"arn:aws:iam::{self.account}:group{path}{name}",
                          "CreateDate": row["create_time"]}}

    def add_user_to_group(self, params: dict[str, Any]) -> dict[str, Any]:
        group, user = self._owner("group", params), self._owner("user", params)
        self.store.add_member(group, user)
        self._changed()
        return {}

    def remove_user_from_group(self, params: dict[str, Any]) -> dict[str, Any]:
        group, user = self._owner("group", params), self._owner("user", params)
        if not self.store.remove_member(group, user):
            raise NoSuchEntity(f"User {user} is not in group {group}.")
        self._changed()
        return {}

    # -- evaluation ------------------------------------------------------------------------

    def _owned(self, kind: str, owner: str) -> list[Policy]:
        out = [parse(doc, name, kind) for name, doc in self.store.inline(kind, owner).items()]
        for arn in self.store.attached(kind, owner):
            try:
                row = self._policy_row(arn)
            except NoSuchEntity:
                continue
            version = row["body"]["Versions"][row["body"]["DefaultVersionId"]]
            out.append(parse(version["Document"], arn,
                             "aws-managed" if arn.startswith(ARN_PREFIX) else "user-managed"))
        return out

    def identity_policies(self, kind: str, name: str) -> tuple[Policy, ...]:
        """A user's (with its groups') or a role's policies, from memory when fresh."""
        index = f"{kind}/{name}"
        entry = self._cache.get(index)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        policies = self._owned(kind, name)
        if kind == "user":
            for group in self.store.groups_of(name):
                policies += self._owned("group", group)
        found = tuple(policies)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[index] = (time.monotonic() + CACHE_SECONDS, found)
        return found

    @staticmethod
    def subject(principal: Principal) -> tuple[str, str] | None:
        """(kind, name) whose policies apply to ``principal``; None for the root user."""
        if principal.type == "IAMUser":
            return "user", principal.name
        if principal.type == "AssumedRole":
            return "role", principal.arn.split("/")[1]
        return None

    def base_context(self, principal: Principal) -> dict[str, Any]:
        now = self.clock()
        context: dict[str, Any] = {
            "aws:currenttime": dt.datetime.fromtimestamp(now, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "aws:epochtime": str(int(now)), "aws:securetransport": False,
            "aws:principalaccount": principal.account, "aws:userid": principal.principal_id,
            "aws:principaltype": principal.type, "aws:principalarn": principal.arn}
        if principal.type == "IAMUser":
            context["aws:username"] = principal.name
        elif principal.type == "AssumedRole":
            role = principal.arn.split("/")[1]
            row = self.store.role(role)
            path = row["path"] if row is not None else "/"
            context["aws:principalarn"] = f"arn:aws:iam::{principal.account}:role{path}{role}"
        return context

    def authorize(self, principal: Principal, action: str, resource: str,
                  context: Mapping[str, Any]) -> Result:
        subject = self.subject(principal)
        if subject is None:  # root: every action on every resource of its account
            return Result(Decision.ALLOWED)
        policies = self.identity_policies(*subject)
        found = self.resource_policy(resource) if self.resource_policy is not None else None
        if found is None:
            return evaluate(policies, action, resource, context)
        role = str(context.get("aws:principalarn", "")) if subject[0] == "role" else ""
        return evaluate((*policies, found), action, resource, context,
                        Caller(principal.arn, principal.account, role))

    # -- SimulatePrincipalPolicy -----------------------------------------------------------

    def simulate(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["PolicySourceArn"]
        head, _, name = arn.partition(":user/") if ":user/" in arn else arn.partition(":role/")
        if not name or not head.startswith("arn:aws:iam::"):
            raise ValidationException(f"Invalid ARN: {arn}")
        kind = "user" if ":user/" in arn else "role"
        name = name.rsplit("/", 1)[-1]
        self._owner(kind, {"UserName": name, "RoleName": name})
        policies = list(self.identity_policies(kind, name))
        for i, extra in enumerate(params.get("PolicyInputList") or []):
            parsed = _document(extra)[1]
            policies.append(Policy(f"PolicyInputList.{i + 1}", "IAM Policy",
                                   parsed.statements))
        context: dict[str, Any] = {}
        if kind == "user":
            context["aws:username"] = name
        for entry in params.get("ContextEntries") or []:
            values = entry.get("ContextKeyValues") or []
            key = entry["ContextKeyName"].lower()
            context[key] = values if entry.get("ContextKeyType", "").endswith("List") else (
                values[0] if values else None)
        results = []
        for action in params["ActionNames"]:
            for resource in params.get("ResourceArns") or ["*"]:
                result = evaluate(policies, action, resource, context)
                results.append({
                    "EvalActionName": action, "EvalResourceName": resource,
                    "EvalDecision": result.decision.value,
                    "MatchedStatements": [{"SourcePolicyId": m.source_id,
                                           "SourcePolicyType": m.source_type}
                                          for m in result.matched],
                    "MissingContextValues": []})
        return {"EvaluationResults": results, "IsTruncated": False}


def denial_message(principal: Principal, action: str, resource: str, result: Result) -> str:
    """AWS's words, naming the kind of policy whose Deny refused (a resource policy's
    first)."""
    if result.decision is Decision.EXPLICIT_DENY:
        why = ("with an explicit deny in a resource-based policy"
               if any(m.source_type == "resource" for m in result.matched)
               else "with an explicit deny in an identity-based policy")
    else:
        why = f"because no identity-based policy allows the {action} action"
    return (f"User: {principal.arn} is not authorized to perform: {action} on resource: "
            f"{resource} {why}")
