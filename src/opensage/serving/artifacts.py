"""A model's artifact (``ModelDataUrl``, a ``model.tar.gz``) fetched from the object store and
unpacked into a directory, every member checked against path traversal."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath

from opensage.store.objects import ObjectStore


class ArtifactError(Exception):
    """The artifact cannot be fetched or unpacked; the message is a FailureReason."""


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ArtifactError(f"Invalid model data URL {url!r}: expected s3://bucket/key")
    bucket, key = url[5:].split("/", 1)
    return bucket, key


def safe_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """The members to extract; raises on any that would land outside ``dest``."""
    root = dest.resolve()
    members = []
    for member in tar.getmembers():
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            raise ArtifactError(f"model.tar.gz member {member.name!r} points outside the "
                                "model directory")
        if not (root / path).resolve().is_relative_to(root):
            raise ArtifactError(f"model.tar.gz member {member.name!r} points outside the "
                                "model directory")
        if member.issym() or member.islnk():
            target = PurePosixPath(member.linkname)
            base = (root / path).parent if member.issym() else root
            if target.is_absolute() or not (base / target).resolve().is_relative_to(root):
                raise ArtifactError(f"model.tar.gz link {member.name!r} points outside the "
                                    "model directory")
        elif not (member.isfile() or member.isdir()):
            continue  # devices, FIFOs: never extracted
        members.append(member)
    return members


def unpack(archive: Path, dest: Path) -> None:
    """Extract ``archive`` (tar, gzipped or not) into ``dest`` (replaced if it exists)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = safe_members(tar, dest)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ArtifactError(f"Unable to extract the model artifact: {e}") from None


def fetch_model(objects: ObjectStore, url: str, dest: Path) -> Path:
    """Download ``url`` and unpack it into ``dest``; returns ``dest``."""
    bucket, key = split_s3_url(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = dest.parent / (dest.name + ".tar.gz")
    try:
        _, body = objects.open_object(bucket, key)
    except Exception as e:  # noqa: BLE001 - any store error is the reason the model won't load
        raise ArtifactError(f"Could not access model data at {url}: {e}") from None
    try:
        with body, open(scratch, "wb") as out:
            shutil.copyfileobj(body, out, 1 << 20)
        unpack(scratch, dest)
    finally:
        scratch.unlink(missing_ok=True)
    return dest
