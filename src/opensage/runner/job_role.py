"""A job acting as its execution role (``RoleArn``) under ``--auth sigv4``.

The service hands the runner a :class:`JobRole` per job: a check of the role's identity
policies and the role's temporary credentials. The runner reads the job's inputs and writes
its outputs through :class:`AsRole`, an :class:`ObjectAccess` that asks the check before
each call (``s3:ListBucket`` with ``s3:prefix`` before a listing, ``s3:GetObject`` before a
read, ``s3:PutObject`` before a write), and gives the job's own code the credentials, so its
boto3 calls to this server are the role's too. This module is the one place training,
processing and transform jobs are checked, and (``model_data_denial``) a model's artifact
before an endpoint or a transform job fetches it; the policy evaluation itself is the
service's (``check``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from opensage.errors import AwsError
from opensage.runner.object_access import ObjectAccess
from opensage.store.objects import Listing, ObjectInfo

# (action, resource ARN, request context such as {"s3:prefix": ...}) -> None when the role
# may, else AWS's denial message ("User: <arn> is not authorized to perform: ...")
Check = Callable[[str, str, Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class JobRole:
    arn: str
    check: Check
    environment: Mapping[str, str] = field(default_factory=dict)  # AWS_ACCESS_KEY_ID, ...

    def __repr__(self) -> str:  # never print the credentials
        return f"JobRole({self.arn!r})"


class JobRoles(Protocol):
    def session(self, role_arn: str, session_name: str, seconds: int) -> JobRole | None:
        """The role a job acts as, with credentials valid ``seconds`` (at most the role's
        ``MaxSessionDuration``); None where the job acts as the server (no authentication,
        or a role nobody created)."""
        ...

    def acting_as(self, role_arn: str, session_name: str) -> JobRole | None:
        """The role's check alone, no credentials (an endpoint fetching its model's
        artifacts); None as for ``session``."""
        ...

    def server_session(self, seconds: int) -> Mapping[str, str]:
        """Credentials (``AWS_ACCESS_KEY_ID``, ...) of a session of the server's own, valid
        ``seconds`` (at least 15 minutes): what a host on another machine signs its S3 calls
        to this server with where the job acts as the server (no created role), or a model
        instance there fetches its model (its role was checked here first)."""
        ...


class RoleDenied(AwsError):
    """The job's role may not read its input or write its output: the job fails with this
    message (already in the words of SageMaker's FailureReason, less ``ClientError: ``)."""

    code = "AccessDenied"
    status = 403


class AsRole:
    """``objects`` as ``role`` sees them: each call checked first, refused with
    :class:`RoleDenied`, so nothing is read or written that the role may not."""

    def __init__(self, objects: ObjectAccess, role: JobRole) -> None:
        self.objects, self.role = objects, role

    def _require(self, action: str, resource: str, context: Mapping[str, Any],
                 what: str) -> None:
        denial = self.role.check(action, resource, context)
        if denial is not None:
            raise RoleDenied(f"{what}AccessDenied (403): {denial}")

    def require_read(self, bucket: str, key: str) -> None:
        self._require("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", {},
                      "Data download failed:")

    def require_write(self, bucket: str, key: str) -> None:
        self._require("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", {},
                      "Data upload failed:")

    def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                     start_after: str = "", max_keys: int = 1000) -> Listing:
        context: dict[str, Any] = {"s3:prefix": prefix, "s3:max-keys": str(max_keys)}
        if delimiter:
            context["s3:delimiter"] = delimiter
        self._require("s3:ListBucket", f"arn:aws:s3:::{bucket}", context,
                      f"Data download failed:Could not list s3://{bucket}/{prefix}: ")
        return self.objects.list_objects(bucket, prefix=prefix, delimiter=delimiter,
                                         start_after=start_after, max_keys=max_keys)

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        self.require_read(bucket, key)
        return self.objects.head_object(bucket, key)

    def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, IO[bytes]]:
        self.require_read(bucket, key)
        return self.objects.open_object(bucket, key)

    def read_object(self, bucket: str, key: str,
                    byte_range: tuple[int, int] | None = None) -> bytes:
        self.require_read(bucket, key)
        return self.objects.read_object(bucket, key, byte_range)

    def local_path(self, bucket: str, key: str) -> Path | None:
        self.require_read(bucket, key)
        return self.objects.local_path(bucket, key)

    def put_object(self, bucket: str, key: str,
                   body: bytes | IO[bytes] | Iterable[bytes], *,
                   meta: dict[str, Any] | None = None, content_md5: str | None = None,
                   checksum_algorithm: str | None = None, checksum: str | None = None,
                   if_none_match: str | None = None,
                   if_match: str | None = None) -> ObjectInfo:
        self.require_write(bucket, key)
        return self.objects.put_object(
            bucket, key, body, meta=meta, content_md5=content_md5,
            checksum_algorithm=checksum_algorithm, checksum=checksum,
            if_none_match=if_none_match, if_match=if_match)


class FacadeDenials:
    """``objects`` reached through the S3 facade with the job's session (a host on a Ray
    node): the facade checks each call as the role, and its AccessDenied is a
    :class:`RoleDenied` in the words :class:`AsRole` uses, so the job fails with the same
    FailureReason as on this machine."""

    def __init__(self, objects: ObjectAccess) -> None:
        self.objects = objects

    @staticmethod
    def _denied(err: AwsError, what: str) -> AwsError:
        if err.code != "AccessDenied":
            return err
        return RoleDenied(f"{what}AccessDenied (403): {err.message}")

    def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                     start_after: str = "", max_keys: int = 1000) -> Listing:
        try:
            return self.objects.list_objects(bucket, prefix=prefix, delimiter=delimiter,
                                             start_after=start_after, max_keys=max_keys)
        except AwsError as err:
            raise self._denied(err, "Data download failed:Could not list "
                                    f"s3://{bucket}/{prefix}: ") from None

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        try:
            return self.objects.head_object(bucket, key)
        except AwsError as err:
            raise self._denied(err, "Data download failed:") from None

    def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, IO[bytes]]:
        try:
            return self.objects.open_object(bucket, key)
        except AwsError as err:
            raise self._denied(err, "Data download failed:") from None

    def read_object(self, bucket: str, key: str,
                    byte_range: tuple[int, int] | None = None) -> bytes:
        try:
            return self.objects.read_object(bucket, key, byte_range)
        except AwsError as err:
            raise self._denied(err, "Data download failed:") from None

    def local_path(self, bucket: str, key: str) -> Path | None:
        return self.objects.local_path(bucket, key)

    def put_object(self, bucket: str, key: str,
                   body: bytes | IO[bytes] | Iterable[bytes], *,
                   meta: dict[str, Any] | None = None, content_md5: str | None = None,
                   checksum_algorithm: str | None = None, checksum: str | None = None,
                   if_none_match: str | None = None,
                   if_match: str | None = None) -> ObjectInfo:
        try:
            return self.objects.put_object(
                bucket, key, body, meta=meta, content_md5=content_md5,
                checksum_algorithm=checksum_algorithm, checksum=checksum,
                if_none_match=if_none_match, if_match=if_match)
        except AwsError as err:
            raise self._denied(err, "Data upload failed:") from None


def require_reads(objects: ObjectAccess, keys: Iterable[tuple[str, str]]) -> None:
    """Before anything is downloaded: the role may read every one of ``keys``."""
    if isinstance(objects, AsRole):
        for bucket, key in keys:
            objects.require_read(bucket, key)


def require_writes(objects: ObjectAccess, keys: Iterable[tuple[str, str]]) -> None:
    """Before anything is uploaded: the role may write every one of ``keys``."""
    if isinstance(objects, AsRole):
        for bucket, key in keys:
            objects.require_write(bucket, key)


def model_data_denial(role: JobRole | None, url: str | None, region: str) -> str | None:
    """Why the model's execution role may not fetch its artifact ``url`` (``s3:GetObject``),
    in the words of SageMaker's FailureReason, with the role's denial; None when it may (or
    no role is enforced, or there is no artifact, or ``url`` is no S3 URL: the fetch says)."""
    if role is None or not url or not url.startswith("s3://") or "/" not in url[5:]:
        return None
    bucket, key = url[5:].split("/", 1)
    denial = role.check("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", {})
    if denial is None:
        return None
    return (f"Could not access model data at {url}. Please ensure that the role "
            f'"{role.arn}" exists and that its trust relationship policy allows the action '
            '"sts:AssumeRole" for the service principal "sagemaker.amazonaws.com". Also '
            'ensure that the role has "s3:GetObject" permissions and that the object is '
            f"located in {region}. AccessDenied (403): {denial}")
