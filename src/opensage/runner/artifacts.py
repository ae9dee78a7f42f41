"""Packing ``model/`` and ``output/data`` into tar.gz objects, written atomically."""

from __future__ import annotations

import tarfile
from pathlib import Path

from opensage.runner.object_access import ObjectAccess


def has_files(directory: Path) -> bool:
    return directory.is_dir() and any(p.is_file() for p in directory.rglob("*"))


def pack_and_upload(objects: ObjectAccess, directory: Path, scratch: Path, bucket: str,
                    key: str) -> None:
    """Tar+gzip ``directory`` (paths relative to it) to a scratch file, then stream it into
    the object store, which publishes it only once complete."""
    scratch.parent.mkdir(parents=True, exist_ok=True)
    # Level 1: model files are mostly floats, which compress little at any level; on a
    # 1.4 MB XGBoost model level 6 took 72 ms for a 17 % smaller file than level 1's 17 ms,
    # and the packing is part of every job's training time.
    with tarfile.open(scratch, "w:gz", compresslevel=1) as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    with open(scratch, "rb") as body:
        objects.put_object(bucket, key, body, meta={"ContentType": "application/x-tar"})
    scratch.unlink(missing_ok=True)
