"""PLACEHOLDER — being implemented (S3 object store over fsspec)."""

from __future__ import annotations

from typing import Any


class ObjectStore:
    def __init__(self, url: str, db: Any, region: str) -> None:
        self.url, self.db, self.region = url, db, region

    def wipe(self) -> None:
        pass
