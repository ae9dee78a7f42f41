"""A model's artifact (``ModelDataUrl``, a ``model.tar.gz``) streamed from the object store
and unpacked into a directory by the one safe extractor (``opensage.data.archives``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from opensage.data.archives import ArchiveError, ArchiveLimits, extract_tar
from opensage.settings import Settings
from opensage.store.remote_objects import ObjectAccess


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
