"""A model's artifact (``ModelDataUrl``, a ``model.tar.gz``) streamed from the object store
and unpacked into a directory by the one safe extractor (``opensage.data.archives``)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from opensage.data.archives import ArchiveError, ArchiveLimits, extract_tar
from opensage.settings import Settings
from opensage.store.remote_objects import ObjectAccess

MODEL_DIR = "/opt/ml/model"


class ArtifactError(Exception):
    """The artifact cannot be fetched or unpacked; the message is a FailureReason."""


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ArtifactError(f"Invalid model data URL {url!r}: expected s3://bucket/key")
    bucket, key = url[5:].split("/", 1)
    return bucket, key


def archive_limits(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(max_unpacked_bytes=settings.archive_max_unpacked_bytes,
                         max_ratio=settings.archive_max_ratio,
                         max_members=settings.archive_max_members)


def fetch_model(objects: ObjectAccess, url: str, dest: Path, limits: ArchiveLimits, *,
                what: tuple[str, str] = ("model data", "the model artifact")) -> Path:
    """Stream ``url`` into ``dest`` (replaced if it exists); returns ``dest``. Nothing is
    left in ``dest`` when the archive is refused. ``what`` names the archive in the two
    messages (access, extraction): a model's ``sourcedir.tar.gz`` is fetched the same way."""
    bucket, key = split_s3_url(url)
    if dest.exists():
        shutil.rmtree(dest)
    try:
        _, body = objects.open_object(bucket, key)
    except Exception as e:  # noqa: BLE001 - any store error is the reason the model won't load
        raise ArtifactError(f"Could not access {what[0]} at {url}: {e}") from None
    try:
        with body:
            extract_tar(body, dest, limits)
    except ArchiveError as e:
        raise ArtifactError(f"Unable to extract {what[1]} {url}: {e}") from None
    return dest


def code_directory(objects: ObjectAccess, model_dir: Path, work_dir: Path,
                   environment: Mapping[str, str], limits: ArchiveLimits, *,
                   local_code: bool = True) -> Path | None:
    """Where a framework model's inference script lives, found as the inference containers
    find it (``SAGEMAKER_SUBMIT_DIRECTORY``), or None (the framework's default handlers):

    - absent or under ``/opt/ml/model`` (the SDK's repack puts ``code/`` in
      ``model.tar.gz``): that directory of the unpacked model in ``model_dir``;
    - an ``s3://`` ``sourcedir.tar.gz``: fetched and unpacked (safely) into
      ``work_dir/code``;
    - ``file://`` (the SDK's local code): that directory of this machine; refused where
      ``local_code`` is false (a Ray node does not see the server's files).

    Raises ``ArtifactError`` with the reason."""
    submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY") or f"{MODEL_DIR}/code"
    if submit.startswith("s3://"):
        return fetch_model(objects, submit, work_dir / "code", limits,
                           what=("the inference code (SAGEMAKER_SUBMIT_DIRECTORY)",
                                 "the inference code"))
    if submit.startswith("file://"):
        if not local_code:
            raise ArtifactError(f"SAGEMAKER_SUBMIT_DIRECTORY {submit} is a directory of the "
                                "server's, which a Ray node does not see: upload the code "
                                "(an s3:// sourcedir.tar.gz, or code/ in model.tar.gz), or "
                                "run with --executor local")
        local = Path(submit[len("file://"):])
        return local if local.is_dir() else None
    path = submit.rstrip("/")
    if path == MODEL_DIR or path.startswith(MODEL_DIR + "/"):
        relative = path[len(MODEL_DIR):].lstrip("/")
        resolved = (model_dir / relative).resolve()
        if resolved.is_dir() and resolved.is_relative_to(model_dir.resolve()):
            return resolved
        return None
    fallback = model_dir / "code"
    return fallback if fallback.is_dir() else None
