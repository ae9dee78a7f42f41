"""S3 bucket policies: ``PutBucketPolicy``/``GetBucketPolicy``/``DeleteBucketPolicy``/
``GetBucketPolicyStatus``, and the policy a request on a bucket is evaluated with.

A document is checked as S3 checks it before it is stored (``MalformedPolicy`` otherwise,
nothing stored): JSON, a ``Version`` and a ``Statement``, each statement's ``Effect``,
``Principal`` (``"*"``, or ``{"AWS": ...}``/``{"Service": ...}`` naming ``*``, an account, or
a user, role or role session of this account that exists), ``s3:`` actions and resources
inside the bucket; then parsed by the one evaluator (``policy.parse``). It is stored with
the bucket (``s3_buckets.policy``) and goes with it.

:meth:`BucketPolicies.for_resource` answers the parsed policy of an ``arn:aws:s3:::bucket[/key]``
resource; ``Policies.authorize`` evaluates it together with the caller's identity policies
(AWS's same-account logic). Parsed policies are cached ``CACHE_SECONDS`` per server, as
principals' identity policies are (a change made through this server drops the entry at
once; another server sees it within that time).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from opensage.errors import NoSuchBucket, S3Error
from opensage.services.iam.policy import MalformedPolicy, Policy, glob_match, is_public, parse
from opensage.store.iam import IamStore
from opensage.store.objects import ObjectStore

CACHE_SECONDS = 5.0
MAX_BYTES = 20 * 1024  # S3's limit on a bucket policy
S3_ARN = "arn:aws:s3:::"
SOURCE_TYPE = "resource"  # SimulatePrincipalPolicy's PolicySourceType for a resource policy
_PRINCIPAL = re.compile(
    r"^arn:aws:(?:iam::(\d{12}):(root|user/.+|role/.+)|sts::(\d{12}):(assumed-role/.+/.+))$")


class MalformedBucketPolicy(S3Error):
    code = "MalformedPolicy"
    status = 400


class NoSuchBucketPolicy(S3Error):
    code = "NoSuchBucketPolicy"
    status = 404


def bucket_of(resource: str) -> str | None:
    """The bucket an ``arn:aws:s3:::bucket[/key]`` resource names."""
    if not resource.startswith(S3_ARN):
        return None
    return resource[len(S3_ARN):].partition("/")[0] or None


class BucketPolicies:
    def __init__(self, objects: ObjectStore, iam: IamStore, account: str) -> None:
        self.objects, self.iam, self.account = objects, iam, account
        self._cache: dict[str, tuple[float, Policy | None]] = {}
        self._lock = threading.Lock()

    # -- the S3 operations -----------------------------------------------------------------

    def put(self, bucket: str, document: str) -> None:
        self.objects.head_bucket(bucket)  # NoSuchBucket before MalformedPolicy, as S3
        self.check(bucket, document)
        self.objects.set_bucket_policy(bucket, document)
        self.forget(bucket)

    def get(self, bucket: str) -> str:
        document = self.objects.bucket_policy(bucket)
        if document is None:
            raise NoSuchBucketPolicy("The bucket policy does not exist", BucketName=bucket)
        return document

    def delete(self, bucket: str) -> None:
        """As S3: a bucket without a policy answers 204 too."""
        self.objects.set_bucket_policy(bucket, None)
        self.forget(bucket)

    def is_public(self, bucket: str) -> bool:
        return is_public(parse(self.get(bucket), bucket, SOURCE_TYPE, resource_policy=True))

    # -- evaluation ------------------------------------------------------------------------

    def policy(self, bucket: str) -> Policy | None:
        """The bucket's parsed policy (None: none, or no such bucket), from memory when
        fresh."""
        entry = self._cache.get(bucket)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        try:
            document = self.objects.bucket_policy(bucket)
        except NoSuchBucket:
            document = None
        found = None
        if document is not None:
            try:
                found = parse(document, bucket, SOURCE_TYPE, resource_policy=True)
            except MalformedPolicy:  # stored by hand past the check: it grants nothing
                found = None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[bucket] = (time.monotonic() + CACHE_SECONDS, found)
        return found

    def for_resource(self, resource: str) -> Policy | None:
        bucket = bucket_of(resource)
        return self.policy(bucket) if bucket is not None else None

    def forget(self, bucket: str) -> None:
        with self._lock:
            self._cache.pop(bucket, None)

    def forget_all(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- the check PutBucketPolicy makes ---------------------------------------------------

    def check(self, bucket: str, document: str) -> Policy:
        """The parsed policy, or MalformedBucketPolicy in S3's words."""
        if len(document.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            raise MalformedBucketPolicy("Policy exceeds the maximum allowed document size.")
        try:
            raw = json.loads(document)
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            raise MalformedBucketPolicy("Policies must be valid JSON and the first byte must "
                                        "be '{'")
        for name in ("Version", "Statement"):
            if name not in raw:
                raise MalformedBucketPolicy(f"Missing required field {name}")
        statements = raw["Statement"] if isinstance(raw["Statement"], list) else [
            raw["Statement"]]
        for statement in statements:
            if isinstance(statement, Mapping):
                self._check_statement(bucket, statement)
        try:
            return parse(raw, bucket, SOURCE_TYPE, resource_policy=True)
        except MalformedPolicy as exc:
            raise MalformedBucketPolicy(str(exc)) from None

    def _check_statement(self, bucket: str, statement: Mapping[str, Any]) -> None:
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise MalformedBucketPolicy(f"Invalid effect: {effect}")
        if "Principal" not in statement and "NotPrincipal" not in statement:
            raise MalformedBucketPolicy("Missing required field Principal")
        for field in ("Principal", "NotPrincipal"):
            if field in statement and not self._valid_principal(statement[field]):
                raise MalformedBucketPolicy("Invalid principal in policy")
        if "Action" not in statement and "NotAction" not in statement:
            raise MalformedBucketPolicy("Missing required field Action")
        for field in ("Action", "NotAction"):
            for action in _listed(statement.get(field)):
                if not (action == "*" or action.lower().startswith("s3:")):
                    raise MalformedBucketPolicy("Policy has invalid action")
        if "Resource" not in statement and "NotResource" not in statement:
            raise MalformedBucketPolicy("Missing required field Resource")
        for field in ("Resource", "NotResource"):
            for resource in _listed(statement.get(field)):
                named = bucket_of(resource)
                if named is None or not glob_match(named, bucket):
                    raise MalformedBucketPolicy("Policy has invalid resource")

    def _valid_principal(self, value: Any) -> bool:
        if value == "*":
            return True
        if not isinstance(value, Mapping) or not value or not set(value) <= {"AWS", "Service"}:
            return False
        for kind, names in value.items():
            listed = _listed(names)
            if not listed:
                return False
            for name in listed:
                if kind == "Service" or name == "*" or re.fullmatch(r"\d{12}", name):
                    continue
                if not self._valid_arn(name):
                    return False
        return True

    def _valid_arn(self, arn: str) -> bool:
        """An IAM principal ARN; one of this account must name a user or role that exists
        (as S3 refuses a policy naming a principal IAM does not know)."""
        match = _PRINCIPAL.match(arn)
        if match is None:
            return False
        account, what = (match.group(1), match.group(2)) if match.group(1) else (
            match.group(3), match.group(4))
        if account != self.account or what == "root":
            return True
        kind, _, rest = what.partition("/")
        if kind == "assumed-role":
            row = self.iam.role(rest.split("/")[0])
            return row is not None
        name = rest.rsplit("/", 1)[-1]
        row = self.iam.user(name) if kind == "user" else self.iam.role(name)
        return row is not None and f"{row['path']}{row['name']}" == f"/{rest}"


def _listed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
