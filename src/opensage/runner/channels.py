"""Input channels materialised from the object store into ``input/data/<channel>``.

File and FastFile modes link each object's blob into place (a hard link where the store is
local, else a streamed copy), so the server never reads a dataset into memory. FastFile is
served as File mode: every file is in place before the job starts (nothing is lazy).
Pipe mode streams through named pipes instead: see :mod:`opensage.runner.pipes`.

As on SageMaker, ``CompressionType`` and ``RecordWrapperType`` only act in Pipe mode: File
mode places the objects exactly as they are stored (a ``.gz`` object stays compressed).

Which objects a host gets: every object under the prefix (or named by the manifest) in key
order (manifest order for a manifest); ``ShuffleConfig`` shuffles that list with a seed drawn
from ``Seed`` and the epoch (File mode is epoch 0), then ``ShardedByS3Key`` gives host ``i``
of ``n`` the entries at positions ``i, i + n, i + 2n, ...``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple, TypeVar

from opensage.errors import AwsError
from opensage.runner.job_role import RoleDenied, require_reads
from opensage.runner.object_access import ObjectAccess
from opensage.store.objects import ObjectInfo

T = TypeVar("T")
MAX_NAME_BYTES = 255  # one path component, on every file system a job may run on


class ChannelError(Exception):
    """A channel that cannot be provided: the job fails with this message."""


class ChannelObject(NamedTuple):
    """One object a channel provides and where it lands under the channel directory."""

    bucket: str
    key: str
    relative: str
    size: int


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ChannelError(f"Invalid S3 URI {uri!r}: expected s3://bucket/prefix")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def input_mode(channel: dict[str, Any], default: str = "File") -> str:
    """The channel's InputMode, else the job's TrainingInputMode."""
    return str(channel.get("InputMode") or default or "File")


def s3_source(channel: dict[str, Any]) -> dict[str, Any]:
    source = (channel.get("DataSource") or {}).get("S3DataSource")
    if source is None:
        raise ChannelError(f"Channel {channel.get('ChannelName')!r}: only S3DataSource is "
                           "supported")
    return dict(source)


def _list_objects(objects: ObjectAccess, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
    start_after = ""
    while True:
        page = objects.list_objects(bucket, prefix=prefix, start_after=start_after,
                                    max_keys=1000)
        yield from page.objects
        if not page.is_truncated or page.last is None:
            return
        start_after = page.last


def resolve_objects(objects: ObjectAccess, source: dict[str, Any]) -> list[ChannelObject]:
    """Every object a channel's S3DataSource names (S3Prefix or ManifestFile), in order."""
    uri = source["S3Uri"]
    bucket, prefix = split_s3_uri(uri)
    data_type = source.get("S3DataType", "S3Prefix")
    try:
        if data_type == "ManifestFile":
            found = _manifest_objects(objects, json.loads(objects.read_object(bucket, prefix)))
        elif data_type == "S3Prefix":
            found = [ChannelObject(bucket, info.key, relative_key(info.key, prefix), info.size)
                     for info in _list_objects(objects, bucket, prefix)
                     if not info.key.endswith("/")]
        elif data_type == "AugmentedManifestFile":
            raise ChannelError(f"S3DataType AugmentedManifestFile ({uri}) is supported only in "
                               "Pipe input mode")
        else:
            raise ChannelError(f"S3DataType {data_type} is not supported")
    except RoleDenied:
        raise  # the job's role may not read it: its own FailureReason
    except AwsError as err:
        raise ChannelError(f"Could not read {uri}: {err.message}") from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        raise ChannelError(f"Invalid manifest file {uri}: {err}") from None
    if not found:
        raise ChannelError(
            f'No S3 objects found under S3 URL "{uri}" given in input data source. Please '
            "ensure that the bucket exists in the selected region, that objects exist under "
            "that S3 prefix, and that the role has access to them.")
    return found


def _manifest_objects(objects: ObjectAccess, manifest: Any) -> list[ChannelObject]:
    """``[{"prefix": "s3://b/p/"}, "rel1", "rel2", ...]``: each object must exist."""
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise ValueError('expected [{"prefix": "s3://bucket/prefix/"}, "relative/key", ...]')
    base_bucket, base = split_s3_uri(manifest[0]["prefix"])
    found = []
    for rel in manifest[1:]:
        if not isinstance(rel, str) or not rel:
            raise ValueError(f"entry {rel!r} is not a relative key")
        info = objects.head_object(base_bucket, base + rel)
        found.append(ChannelObject(base_bucket, base + rel, rel, info.size))
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


def shuffle_seed(seed: int, epoch: int) -> int:
    """A stable 64-bit seed for one epoch of a channel's ShuffleConfig (same on every run)."""
    digest = hashlib.sha256(f"opensage-shuffle:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def select_entries(entries: Sequence[T], source: dict[str, Any],
                   shuffle: dict[str, Any] | None = None, *, epoch: int = 0,
                   host_index: int = 0, host_count: int = 1) -> list[T]:
    """The entries host ``host_index`` (0-based) of ``host_count`` gets in ``epoch``: the
    list shuffled when ShuffleConfig is given, then every ``host_count``-th entry from
    ``host_index`` when the distribution is ShardedByS3Key (FullyReplicated: all)."""
    if not 0 <= host_index < host_count:
        raise ValueError(f"host index {host_index} is not in 0..{host_count - 1}")
    chosen = list(entries)
    if shuffle is not None and shuffle.get("Seed") is not None:
        random.Random(shuffle_seed(int(shuffle["Seed"]), epoch)).shuffle(chosen)
    if source.get("S3DataDistributionType", "FullyReplicated") == "ShardedByS3Key":
        chosen = chosen[host_index::host_count]
    return chosen


def materialize(objects: ObjectAccess, channel: dict[str, Any], target: Path, *,
                host_index: int = 0, host_count: int = 1) -> int:
    """Place the channel's objects under ``target`` (File and FastFile modes); returns the
    number of files. Objects are placed as stored: no decompression, no RecordIO wrapping."""
    source = s3_source(channel)
    found = select_entries(resolve_objects(objects, source), source,
                           channel.get("ShuffleConfig"), host_index=host_index,
                           host_count=host_count)
    target.mkdir(parents=True, exist_ok=True)
    for obj in found:  # every path is checked before anything is placed
        try:
            safe_join(target, obj.relative)
        except ChannelError as err:
            raise ChannelError(f"Object s3://{obj.bucket}/{obj.key} cannot be placed in "
                               f"channel {channel.get('ChannelName')!r}: {err}") from None
    require_reads(objects, ((obj.bucket, obj.key) for obj in found))  # before any download
    for obj in found:
        dest = safe_join(target, obj.relative)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _place(objects, obj.bucket, obj.key, dest)
        except RoleDenied:
            raise
        except AwsError as err:
            raise ChannelError(f"Could not read s3://{obj.bucket}/{obj.key}: "
                               f"{err.message}") from None
        except (FileExistsError, IsADirectoryError, NotADirectoryError):
            raise ChannelError(f"Objects s3://{obj.bucket}/{obj.key} and another one land on "
                               f"the same path {obj.relative!r}") from None
    return len(found)


def safe_join(root: Path, relative: str) -> Path:
    parts = [p for p in PurePosixPath(relative).parts if p not in ("", ".", "/")]
    if not parts or ".." in parts:
        raise ChannelError(f"its path {relative!r} escapes the channel directory")
    if "\0" in relative:
        raise ChannelError(f"its path {relative!r} contains a NUL character, which no file "
                           "name can hold")
    for part in parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise ChannelError(f"its path {relative!r} has a name of {len(os.fsencode(part))} "
                               f"bytes; file names are limited to {MAX_NAME_BYTES} bytes")
    return root.joinpath(*parts)


def _place(objects: ObjectAccess, bucket: str, key: str, dest: Path) -> None:
    local = objects.local_path(bucket, key)
    if local is not None:
        try:
            os.link(local, dest)  # same file system: instant, no bytes copied
            return
        except FileExistsError:
            raise
        except OSError:
            shutil.copyfile(local, dest)
            return
    _, stream = objects.open_object(bucket, key)
    with stream, open(dest, "xb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
