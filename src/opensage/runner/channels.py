"""Input channels materialised from the object store into ``input/data/<channel>``.

File and FastFile modes link each object's blob into place (a hard link where the store is
local, else a streamed copy), so the server never reads a dataset into memory.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from opensage.errors import AwsError
from opensage.store.objects import ObjectStore


class ChannelError(Exception):
    """A channel that cannot be provided: the job fails with this message."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ChannelError(f"Invalid S3 URI {uri!r}: expected s3://bucket/prefix")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _list_keys(objects: ObjectStore, bucket: str, prefix: str) -> Iterator[str]:
    start_after = ""
    while True:
        page = objects.list_objects(bucket, prefix=prefix, start_after=start_after,
                                    max_keys=1000)
        for info in page.objects:
            yield info.key
        if not page.is_truncated or page.last is None:
            return
        start_after = page.last


def resolve_objects(objects: ObjectStore, source: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(bucket, key, relative path) of every object a channel's S3DataSource names."""
    uri = source["S3Uri"]
    bucket, prefix = split_s3_uri(uri)
    try:
        if source.get("S3DataType", "S3Prefix") == "ManifestFile":
            manifest = json.loads(objects.read_object(bucket, prefix))
            base_bucket, base = split_s3_uri(manifest[0]["prefix"])
            found = [(base_bucket, base + rel, rel) for rel in manifest[1:]]
            for b, k, _ in found:
                objects.head_object(b, k)
        elif source.get("S3DataType", "S3Prefix") == "S3Prefix":
            found = [(bucket, key, relative_key(key, prefix))
                     for key in _list_keys(objects, bucket, prefix) if not key.endswith("/")]
        else:
            raise ChannelError(f"S3DataType {source.get('S3DataType')} is not supported here")
    except AwsError as err:
        raise ChannelError(f"Could not read {uri}: {err.message}") from None
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise ChannelError(f"Invalid manifest file {uri}: {err}") from None
    if not found:
        raise ChannelError(
            f'No S3 objects found under S3 URL "{uri}" given in input data source. Please '
            "ensure that the bucket exists in the selected region, that objects exist under "
            "that S3 prefix, and that the role has access to them.")
    return found


def relative_key(key: str, prefix: str) -> str:
    """Where an object lands in the channel: its key past the prefix (``data/train`` +
    ``data/train/a.csv`` -> ``a.csv``); a prefix that names one object gives its base name,
    one that ends mid-name keeps the path past the prefix's folder."""
    rest = key[len(prefix):]
    if not rest:
        return key.rsplit("/", 1)[-1]
    if prefix.endswith("/") or rest.startswith("/") or not prefix:
        return rest.lstrip("/")
    return key[len(prefix.rsplit("/", 1)[0]) + 1:] if "/" in prefix else key


def materialize(objects: ObjectStore, channel: dict[str, Any], target: Path) -> int:
    """Place the channel's objects under ``target``; returns the number of files."""
    source = channel["DataSource"].get("S3DataSource")
    if source is None:
        raise ChannelError(f"Channel {channel['ChannelName']!r}: only S3DataSource is supported")
    count = 0
    for bucket, key, relative in resolve_objects(objects, source):
        dest = _safe_join(target, relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _place(objects, bucket, key, dest)
        count += 1
    return count


def _safe_join(root: Path, relative: str) -> Path:
    parts = [p for p in PurePosixPath(relative).parts if p not in ("", ".", "/")]
    if not parts or ".." in parts:
        raise ChannelError(f"Refusing object path {relative!r}: it escapes the channel directory")
    return root.joinpath(*parts)


def _place(objects: ObjectStore, bucket: str, key: str, dest: Path) -> None:
    local = objects.local_path(bucket, key)
    if local is not None:
        try:
            os.link(local, dest)  # same file system: instant, no bytes copied
            return
        except OSError:
            shutil.copyfile(local, dest)
            return
    _, stream = objects.open_object(bucket, key)
    with stream, open(dest, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
