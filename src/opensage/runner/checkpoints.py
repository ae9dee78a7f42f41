"""Checkpoints: restored from ``CheckpointConfig.S3Uri`` at start, new files uploaded as
they appear (file by file, same relative paths), so an interrupted job can resume. The same
sync uploads a processing job's outputs (``Continuous`` as they appear, all at its end).

With an execution role (``runner.job_role.AsRole``) every key of an upload round is checked
(``s3:PutObject``) before any of the round is written: a round the role may not write in
whole writes nothing. Rounds are per object key, never per prefix: an IAM resource can name
one key or a suffix (``out/*.csv``), so no check of a prefix stands for the objects under it.
"""

from __future__ import annotations

from pathlib import Path

from opensage.runner.channels import materialize, split_s3_uri
from opensage.runner.job_role import require_writes
from opensage.runner.object_access import ObjectAccess


class CheckpointSync:
    def __init__(self, objects: ObjectAccess, s3_uri: str, local_dir: Path) -> None:
        self.objects = objects
        self.bucket, prefix = split_s3_uri(s3_uri)
        self.prefix = prefix.rstrip("/") + "/" if prefix else ""
        self.local_dir = local_dir
        self._seen: dict[Path, tuple[int, int]] = {}

    def restore(self) -> None:
        page = self.objects.list_objects(self.bucket, prefix=self.prefix, max_keys=1)
        if page.objects:
            materialize(self.objects, {"ChannelName": "checkpoints", "DataSource": {
                "S3DataSource": {"S3Uri": f"s3://{self.bucket}/{self.prefix}"}}},
                self.local_dir)
        self._seen = self._snapshot()

    def changed(self) -> list[Path]:
        """The files new or changed since the last upload (what ``upload_changes`` sends)."""
        return [path for path, stamp in self._snapshot().items()
                if self._seen.get(path) != stamp]

    def pending_keys(self) -> list[tuple[str, str]]:
        """(bucket, key) of each file ``upload_changes`` would send now."""
        return [(self.bucket, self._key(path)) for path in self.changed()]

    def _key(self, path: Path) -> str:
        return self.prefix + path.relative_to(self.local_dir).as_posix()

    def upload_changes(self) -> None:
        current = self._snapshot()
        changed = [path for path, stamp in current.items() if self._seen.get(path) != stamp]
        require_writes(self.objects, ((self.bucket, self._key(path)) for path in changed))
        for path in changed:
            try:
                with open(path, "rb") as body:
                    self.objects.put_object(self.bucket, self._key(path), body)
            except FileNotFoundError:  # the job pruned an old checkpoint meanwhile
                current.pop(path)
        self._seen = current

    def _snapshot(self) -> dict[Path, tuple[int, int]]:
        stamps = {}
        for path in self.local_dir.rglob("*"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file():
                stamps[path] = (stat.st_size, stat.st_mtime_ns)
        return stamps


def upload_all(syncs: list[CheckpointSync]) -> None:
    """Every sync's changes, once the role may write all of them (nothing is written
    otherwise: ``RoleDenied``)."""
    for sync in syncs:
        require_writes(sync.objects, sync.pending_keys())
    for sync in syncs:
        sync.upload_changes()
