"""Packing ``model/`` and ``output/data`` into tar.gz objects, written atomically."""

from __future__ import annotations

import tarfile
from pathlib import Path

from opensage.store.objects import ObjectStore


def has_files(directory: Path) -> bool:
    return directory.is_dir() and any(p.is_file() for p in directory.rglob("*"))


def pack_and_upload(objects: ObjectStore, directory: Path, scratch: Path, bucket: str,
                    key: str) -> None:
    """Tar+gzip ``directory`` (paths relative to it) to a scratch file, then stream it into
    the object store, which publishes it only once complete."""
    scratch.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(scratch, "w:gz", compresslevel=6) as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    with open(scratch, "rb") as body:
        objects.put_object(bucket, key, body, meta={"ContentType": "application/x-tar"})
    scratch.unlink(missing_ok=True)
