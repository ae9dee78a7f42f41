"""Checkpoints: restored from ``CheckpointConfig.S3Uri`` at start, new files uploaded as
they appear (file by file, same relative paths), so an interrupted job can resume."""

from __future__ import annotations

from pathlib import Path

from opensage.runner.channels import materialize, split_s3_uri
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

    def upload_changes(self) -> None:
        current = self._snapshot()
        for path, stamp in list(current.items()):
            if self._seen.get(path) != stamp:
                key = self.prefix + path.relative_to(self.local_dir).as_posix()
                try:
                    with open(path, "rb") as body:
                        self.objects.put_object(self.bucket, key, body)
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
