"""IAM users, roles and access keys; STS sessions; the credential lookup behind SigV4.

Every access key (the root key, users' keys, STS session keys) is one row of
``iam_access_keys`` with its secret encrypted (``store.secrets``) and the principal it signs
as. ``lookup`` is on the path of every signed request: it answers from memory (entries live
``CACHE_SECONDS``, dropped at once by a change made here) and reads the database only on a
miss. Identity policies and their evaluation are ``policies.py``'s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from opensage.errors import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    NoSuchEntity,
    ValidationException,
)
from opensage.services.iam.bucket_policies import BucketPolicies
from opensage.services.iam.naming import iam_path as _path
from opensage.services.iam.naming import random_id as _random_id
from opensage.services.iam.policies import Policies
from opensage.services.iam.principal import Credential, Principal
from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.iam import AlreadyExists, IamStore
from opensage.store.objects import ObjectStore
from opensage.store.secrets import KEY_FILE, SecretBox, write_private

log = logging.getLogger(__name__)
CACHE_SECONDS = 5.0  # how long a key read from the database is trusted without reading again
KEYS_PER_USER = 2  # AWS's quota (AccessKeysPerUser)
ROOT_CREDENTIALS_FILE = "root-credentials"
IMPLICIT_ROLE = "opensage"
DEFAULT_SESSION_LIMIT = 3600  # a role's MaxSessionDuration unless CreateRole/UpdateRole set it
SESSION_LIMIT_RANGE = (3600, 43200)
# Roles nobody created still answer GetRole/AssumeRole (the SDK's get_execution_role asks
# for the caller's role): they have no real creation date, so a fixed one keeps answers stable.
IMPLICIT_ROLE_CREATED = 1704067200.0  # 2024-01-01
SAGEMAKER_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


@dataclass(frozen=True)
class RootCredentials:
    access_key_id: str
    secret_access_key: str
    created: bool  # made now (print it once) rather than found or given
    file: Path | None  # where it was written, when made here

    def __repr__(self) -> str:
        return f"RootCredentials({self.access_key_id!r}, created={self.created})"


def unique_id(prefix: str, seed: str) -> str:
    """A stable AWS-looking id (``AROA...``) derived from a name."""
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[:17].upper()


def _new_secret() -> str:
    return secrets.token_urlsafe(30)[:40]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class IamService:
    def __init__(self, settings: Settings, db: Database,
                 clock: Callable[[], float] = time.time,
                 objects: ObjectStore | None = None) -> None:
        self.settings = settings
        self.account = settings.account_id
        self.store = IamStore(db)
        self.box = SecretBox(settings.secret_key_file or settings.data_dir / KEY_FILE)
        self.clock = clock
        self._cache: dict[str, tuple[float, Credential]] = {}
        self._lock = threading.Lock()
        self.policies = Policies(self.store, self.account, clock)
        # S3 bucket policies: evaluated with the identity policies of a request on a bucket
        self.bucket_policies: BucketPolicies | None = None
        if objects is not None:
            self.bucket_policies = BucketPolicies(objects, self.store, self.account)
            self.policies.resource_policy = self.bucket_policies.for_resource

    # -- credentials -----------------------------------------------------------------------

    def cached(self, access_key_id: str) -> Credential | None:
        """The key if memory holds it fresh (no I/O: safe on the event loop)."""
        entry = self._cache.get(access_key_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    def lookup(self, access_key_id: str) -> Credential | None:
        """The key, from memory or the database (blocking on a miss); None if unknown."""
        found = self.cached(access_key_id)
        if found is not None:
            return found
        row = self.store.key(access_key_id)
        if row is None:
            return None
        credential = Credential(
            access_key_id=access_key_id, secret=self.box.open(row["secret"]),
            principal=Principal.from_document(row["principal"], access_key_id),
            active=row["status"] == "Active", expiration=row["expiration"],
            token_sha256=row["token_sha256"])
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[access_key_id] = (time.monotonic() + CACHE_SECONDS, credential)
        return credential

    @staticmethod
    def token_matches(credential: Credential, token: str | None) -> bool:
        """A session key needs its own token; other keys need none."""
        if credential.token_sha256 is None:
            return token is None
        return token is not None and secrets.compare_digest(
            _token_hash(token), credential.token_sha256)

    def _forget(self, access_key_id: str) -> None:
        self._cache.pop(access_key_id, None)

    # -- the root key ----------------------------------------------------------------------

    def root_principal(self, access_key_id: str = "") -> Principal:
        return Principal("Root", f"arn:aws:iam::{self.account}:root", self.account,
                         self.account, "root", access_key_id)

    def ensure_root(self, access_key_id: str | None = None,
                    secret_access_key: str | None = None) -> RootCredentials:
        """The root key: the one given (it replaces any other), else the stored one, else a
        new one, written to ``<data_dir>/root-credentials`` (0600)."""
        if access_key_id or secret_access_key:
            if not (access_key_id and secret_access_key):
                raise ValueError("give both the root access key id and its secret")
            self.store.replace_root_key(self._key_row(
                access_key_id, secret_access_key, "root", None, self.root_principal()))
            for key in list(self._cache):
                self._forget(key)
            return RootCredentials(access_key_id, secret_access_key, False, None)
        stored = self.store.root_keys()
        if stored:
            row = stored[0]
            return RootCredentials(row["access_key_id"], self.box.open(row["secret"]), False,
                                   None)
        key_id, secret = _random_id("AKIA"), _new_secret()
        path = self.settings.data_dir / ROOT_CREDENTIALS_FILE
        text = (f"[default]\naws_access_key_id = {key_id}\n"
                f"aws_secret_access_key = {secret}\n")
        if not write_private(path, text.encode()):
            path.unlink()  # a stale file from an earlier database: this key replaces it
            write_private(path, text.encode())
        self.store.replace_root_key(self._key_row(key_id, secret, "root", None,
                                                  self.root_principal()))
        return RootCredentials(key_id, secret, True, path)

    def _key_row(self, key_id: str, secret: str, kind: str, user_name: str | None,
                 principal: Principal, *, expiration: float | None = None,
                 token: str | None = None) -> dict[str, Any]:
        return {"access_key_id": key_id, "kind": kind, "user_name": user_name,
                "secret": self.box.seal(secret), "status": "Active",
                "create_time": self.clock(), "expiration": expiration,
                "token_sha256": _token_hash(token) if token is not None else None,
                "principal": principal.document()}

    # -- users -----------------------------------------------------------------------------

    def _user_arn(self, path: str, name: str) -> str:
        return f"arn:aws:iam::{self.account}:user{path}{name}"

    def _user_document(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"Path": row["path"], "UserName": row["name"], "UserId": row["user_id"],
                "Arn": self._user_arn(row["path"], row["name"]),
                "CreateDate": row["create_time"], **row["body"]}

    def create_user(self, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["UserName"], _path(params.get("Path"))
        body = {"Tags": params["Tags"]} if params.get("Tags") else {}
        row = {"name": name, "user_id": _random_id("AIDA", 17), "path": path,
               "create_time": self.clock(), "body": body}
        try:
            self.store.insert_user(row)
        except AlreadyExists:
            raise EntityAlreadyExists(f"User with name {name} already exists.") from None
        return {"User": self._user_document(row)}

    def _user_row(self, name: str) -> dict[str, Any]:
        row = self.store.user(name)
        if row is None:
            raise NoSuchEntity(f"The user with name {name} cannot be found.")
        return row

    def get_user(self, params: dict[str, Any], caller: Principal | None) -> dict[str, Any]:
        name = params.get("UserName") or self._caller_user(caller)
        if name is None:  # the root user
            assert caller is not None
            return {"User": {"UserId": self.account, "Arn": caller.arn,
                             "CreateDate": IMPLICIT_ROLE_CREATED}}
        return {"User": self._user_document(self._user_row(name))}

    def list_users(self, params: dict[str, Any]) -> dict[str, Any]:
        rows, more = self._page(self.store.users, params)
        return {"Users": [self._user_document(r) for r in rows], **more}

    def delete_user(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["UserName"]
        self._user_row(name)
        if self.store.count_keys(name):
            raise DeleteConflict("Cannot delete entity, must delete access keys first.")
        if not self.store.delete_user(name):
            raise NoSuchEntity(f"The user with name {name} cannot be found.")
        self.store.drop_owner("user", name)
        self.policies._changed()
        return {}

    def _caller_user(self, caller: Principal | None) -> str | None:
        """The user a call without UserName is about: the calling IAM user; None for root."""
        if caller is None:
            raise ValidationException("UserName is required when the server runs without "
                                      "authentication (--auth none): there is no caller")
        if caller.type == "IAMUser":
            return caller.name
        if caller.type == "Root":
            return None
        raise ValidationException("Must specify userName when calling with non-User "
                                  "credentials")

    def _page(self, fetch: Callable[[str, str, int], list[dict[str, Any]]],
              params: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        limit = int(params.get("MaxItems") or 100)
        if not 1 <= limit <= 1000:
            raise ValidationException("MaxItems must be between 1 and 1000")
        rows = fetch(_path(params.get("PathPrefix")), params.get("Marker") or "", limit + 1)
        if len(rows) > limit:
            return rows[:limit], {"IsTruncated": True, "Marker": rows[limit - 1]["name"]}
        return rows, {"IsTruncated": False}

    # -- access keys -----------------------------------------------------------------------

    def create_access_key(self, params: dict[str, Any],
                          caller: Principal | None) -> dict[str, Any]:
        name = params.get("UserName") or self._caller_user(caller)
        if name is None:
            raise ValidationException("opensage's root key is the server's own "
                                      "(--root-access-key-id); create a user for more keys")
        user = self._user_row(name)
        if self.store.count_keys(name) >= KEYS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}")
        key_id, secret = _random_id("AKIA"), _new_secret()
        principal = Principal("IAMUser", self._user_arn(user["path"], name), user["user_id"],
                              self.account, name)
        row = self._key_row(key_id, secret, "user", name, principal)
        self.store.insert_key(row)
        log.info("access key %s created for user %s", key_id, name)
        return {"AccessKey": {"UserName": name, "AccessKeyId": key_id, "Status": "Active",
                              "SecretAccessKey": secret, "CreateDate": row["create_time"]}}

    def list_access_keys(self, params: dict[str, Any],
                         caller: Principal | None) -> dict[str, Any]:
        name = params.get("UserName") or self._caller_user(caller)
        if name is None:
            keys = [{"AccessKeyId": r["access_key_id"], "Status": r["status"],
                     "CreateDate": r["create_time"]} for r in self.store.root_keys()]
            return {"AccessKeyMetadata": keys, "IsTruncated": False}
        self._user_row(name)
        keys = [{"UserName": name, "AccessKeyId": r["access_key_id"], "Status": r["status"],
                 "CreateDate": r["create_time"]} for r in self.store.keys_of(name)]
        return {"AccessKeyMetadata": keys, "IsTruncated": False}

    def _key_owner(self, params: dict[str, Any], caller: Principal | None) -> str:
        name = params.get("UserName") or self._caller_user(caller)
        params["AccessKeyId"]
        if name is None:
            raise ValidationException("opensage's root key is the server's own: it cannot "
                                      "be changed through IAM")
        self._user_row(name)
        return name

    def delete_access_key(self, params: dict[str, Any],
                          caller: Principal | None) -> dict[str, Any]:
        name, key_id = self._key_owner(params, caller), params["AccessKeyId"]
        if not self.store.delete_key(key_id, name):
            raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
        self._forget(key_id)
        return {}

    def update_access_key(self, params: dict[str, Any],
                          caller: Principal | None) -> dict[str, Any]:
        name, key_id = self._key_owner(params, caller), params["AccessKeyId"]
        if not self.store.set_key_status(key_id, name, params["Status"]):
            raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
        self._forget(key_id)
        return {}

    # -- roles -----------------------------------------------------------------------------

    def _role_document(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"Path": row["path"], "RoleName": row["name"], "RoleId": row["role_id"],
                "Arn": f"arn:aws:iam::{self.account}:role{row['path']}{row['name']}",
                "CreateDate": row["create_time"],
                # AWS answers the trust policy URL-encoded
                "AssumeRolePolicyDocument": quote(row["assume_role_policy"]),
                "MaxSessionDuration": 3600, **row["body"]}

    def create_role(self, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["RoleName"], _path(params.get("Path"))
        policy = params["AssumeRolePolicyDocument"]
        try:
            json.loads(unquote(policy) if policy.lstrip().startswith("%") else policy)
        except ValueError:
            raise AwsMalformedPolicy("This policy contains invalid Json") from None
        body: dict[str, Any] = {"MaxSessionDuration": _session_limit(
            params.get("MaxSessionDuration", DEFAULT_SESSION_LIMIT))}
        for member in ("Description", "Tags"):
            if params.get(member):
                body[member] = params[member]
        row = {"name": name, "role_id": _random_id("AROA", 17), "path": path,
               "create_time": self.clock(), "assume_role_policy": policy, "body": body}
        try:
            self.store.insert_role(row)
        except AlreadyExists:
            raise EntityAlreadyExists(f"Role with name {name} already exists.") from None
        return {"Role": self._role_document(row)}

    def _role_row(self, name: str) -> dict[str, Any]:
        """A stored role, or the implicit one every name has until it is created."""
        row = self.store.role(name)
        if row is not None:
            return row
        return {"name": name, "role_id": unique_id("AROA", self.account + name), "path": "/",
                "create_time": IMPLICIT_ROLE_CREATED,
                "assume_role_policy": json.dumps(SAGEMAKER_TRUST), "body": {}}

    def get_role(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Role": self._role_document(self._role_row(params["RoleName"]))}

    def list_roles(self, params: dict[str, Any]) -> dict[str, Any]:
        rows, more = self._page(self.store.roles, params)
        return {"Roles": [self._role_document(r) for r in rows], **more}

    def update_role(self, params: dict[str, Any]) -> dict[str, Any]:
        """``Description`` and ``MaxSessionDuration`` (which bounds later AssumeRole calls'
        ``DurationSeconds`` and the sessions of jobs started from now on)."""
        changes: dict[str, Any] = {}
        if params.get("MaxSessionDuration") is not None:
            changes["MaxSessionDuration"] = _session_limit(params["MaxSessionDuration"])
        if params.get("Description") is not None:
            changes["Description"] = params["Description"]
        self._update_role(params["RoleName"], changes)
        return {}

    def update_role_description(self, params: dict[str, Any]) -> dict[str, Any]:
        row = self._update_role(params["RoleName"], {"Description": params["Description"]})
        return {"Role": self._role_document(row)}

    def _update_role(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        row = self.store.update_role_body(name, changes)
        if row is None:
            raise NoSuchEntity(f"The role with name {name} cannot be found.")
        return row

    def delete_role(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        if not self.store.delete_role(name):
            raise NoSuchEntity(f"The role with name {name} cannot be found.")
        self.store.drop_owner("role", name)
        self.policies._changed()
        return {}

    # -- STS -------------------------------------------------------------------------------

    def caller_identity(self, caller: Principal | None) -> dict[str, Any]:
        if caller is None:  # --auth none: the implicit role every call acts as
            role_id = unique_id("AROA", self.account + IMPLICIT_ROLE)
            return {"Account": self.account, "UserId": f"{role_id}:{IMPLICIT_ROLE}",
                    "Arn": f"arn:aws:sts::{self.account}:assumed-role/{IMPLICIT_ROLE}/"
                           f"{IMPLICIT_ROLE}"}
        return {"Account": caller.account, "UserId": caller.principal_id, "Arn": caller.arn}

    def assume_role(self, params: dict[str, Any], caller: Principal | None) -> dict[str, Any]:
        role_arn, session = params["RoleArn"], params["RoleSessionName"]
        prefix = f"arn:aws:iam::{self.account}:role/"
        if not role_arn.startswith(prefix):
            who = caller.arn if caller is not None else "anonymous"
            raise AccessDenied(f"User: {who} is not authorized to perform: sts:AssumeRole on "
                               f"resource: {role_arn}", code="AccessDenied")
        role_name = role_arn.rsplit("/", 1)[-1]
        role = self._role_row(role_name)
        limit = int(role["body"].get("MaxSessionDuration", DEFAULT_SESSION_LIMIT))
        seconds = int(params.get("DurationSeconds") or 3600)
        if not 900 <= seconds <= limit:
            raise ValidationException(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this "
                "role." if seconds > limit else
                f"1 validation error detected: Value '{seconds}' at 'durationSeconds' failed "
                "to satisfy constraint: Member must have value greater than or equal to 900")
        principal = self._role_principal(role, session)
        return {"Credentials": self._session(principal, seconds),
                "AssumedRoleUser": {"AssumedRoleId": principal.principal_id,
                                    "Arn": principal.arn},
                "PackedPolicySize": 0}

    def _role_principal(self, role: dict[str, Any], session: str) -> Principal:
        return Principal(
            "AssumedRole",
            f"arn:aws:sts::{self.account}:assumed-role/{role['name']}/{session}",
            f"{role['role_id']}:{session}", self.account, session)

    def _created_role(self, role_arn: str) -> dict[str, Any] | None:
        """The row of a role that was created (``CreateRole``) with exactly that ARN."""
        prefix = f"arn:aws:iam::{self.account}:role/"
        if not role_arn.startswith(prefix):
            return None
        row = self.store.role(role_arn.rsplit("/", 1)[-1])
        if row is None or f"{prefix}{row['path'].lstrip('/')}{row['name']}" != role_arn:
            return None
        return row

    def role_principal(self, role_arn: str, session: str) -> Principal | None:
        """The session principal a resource acting as a created role is checked as, without
        credentials (an endpoint's model fetch); None as for ``role_session``."""
        row = self._created_role(role_arn)
        return None if row is None else self._role_principal(row, session)

    def role_session(self, role_arn: str, session: str,
                     seconds: int) -> tuple[Principal, dict[str, Any]] | None:
        """Credentials of a role that was created (``CreateRole``), as ``AssumeRole`` mints
        them, for a job that acts as it: the service assumes it, so the caller's policy does
        not limit it; valid ``seconds`` but at least 15 minutes and at most the role's
        ``MaxSessionDuration``, as any session of the role. None for an ARN of another
        account or a role nobody created."""
        row = self._created_role(role_arn)
        if row is None:
            return None
        limit = int(row["body"].get("MaxSessionDuration", DEFAULT_SESSION_LIMIT))
        principal = self._role_principal(row, session)
        return principal, self._session(principal, min(max(900, seconds), limit))

    def server_session(self, seconds: int) -> dict[str, Any]:
        """Credentials of a session of the account's root, as ``GetSessionToken`` mints them,
        valid ``seconds`` (at least 15 minutes, at most 36 hours): what a host on another
        machine (a Ray node) signs with where it acts as the server (a job without a created
        role, a model instance fetching its model). Never logged."""
        return self._session(self.root_principal(), min(max(900, seconds), 129600))

    def get_session_token(self, params: dict[str, Any],
                          caller: Principal | None) -> dict[str, Any]:
        seconds = int(params.get("DurationSeconds") or 43200)
        if not 900 <= seconds <= 129600:
            raise ValidationException("DurationSeconds must be between 900 and 129600")
        if caller is not None and caller.type == "AssumedRole":
            raise AccessDenied("Cannot call GetSessionToken with session credentials",
                               code="AccessDenied")
        principal = caller or self.root_principal()
        return {"Credentials": self._session(principal, seconds)}

    def _session(self, principal: Principal, seconds: int) -> dict[str, Any]:
        key_id, secret = _random_id("ASIA"), _new_secret()
        token = "IQoJb3JpZ2luX2Vj" + secrets.token_urlsafe(120)
        expiration = self.clock() + seconds
        self.store.insert_key(self._key_row(key_id, secret, "session", None, principal,
                                            expiration=expiration, token=token))
        return {"AccessKeyId": key_id, "SecretAccessKey": secret, "SessionToken": token,
                "Expiration": expiration}

    def purge_sessions(self) -> int:
        return self.store.purge_sessions(self.clock() - 86400)


def _session_limit(value: Any) -> int:
    """A role's ``MaxSessionDuration`` as CreateRole/UpdateRole accept it."""
    seconds = int(value)
    if not SESSION_LIMIT_RANGE[0] <= seconds <= SESSION_LIMIT_RANGE[1]:
        bound = ("greater than or equal to 3600" if seconds < SESSION_LIMIT_RANGE[0]
                 else "less than or equal to 43200")
        raise ValidationException(
            f"1 validation error detected: Value '{seconds}' at 'maxSessionDuration' failed "
            f"to satisfy constraint: Member must have value {bound}")
    return seconds


class AwsMalformedPolicy(ValidationException):
    code = "MalformedPolicyDocument"
