"""Everything a request handler may reach, built once per server from the settings."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.objects import ObjectStore
from opensage.store.resources import ResourceStore


@dataclass
class Backend:
    settings: Settings
    db: Database
    objects: ObjectStore
    resources: ResourceStore

    @classmethod
    def create(cls, settings: Settings) -> Backend:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database_url)
        db.migrate()
        return cls(settings=settings, db=db,
                   objects=ObjectStore(settings.objects_url, db, region=settings.region),
                   resources=ResourceStore(db))

    def arn(self, resource: str, service: str = "sagemaker") -> str:
        return self.settings.arn(service, resource)

    @staticmethod
    def now() -> float:
        return time.time()

    def reset(self) -> None:
        """Wipe all state: rows, objects, logs. Only reachable with ``--enable-reset``."""
        self.db.wipe()
        self.objects.wipe()

    def close(self) -> None:
        self.db.dispose()
