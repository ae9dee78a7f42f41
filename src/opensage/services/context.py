"""What every service may use: configuration, the stores, and the clock.

Services are handed a :class:`Context` and, separately, the other services they call
(see ``services.wiring``): the context never holds a service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opensage.containers import ContainerEngine, engine_sockets
from opensage.runner.environments import Environments
from opensage.services.algorithms import AlgorithmCatalog
from opensage.services.logs import LogService
from opensage.services.metrics import MetricStore
from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.objects import ObjectStore
from opensage.store.resources import ResourceStore


@dataclass(frozen=True)
class Context:
    settings: Settings
    db: Database
    resources: ResourceStore
    objects: ObjectStore
    logs: LogService
    metrics: MetricStore
    algorithms: AlgorithmCatalog
    environments: Environments  # script mode's framework environments
    containers: ContainerEngine | None = None  # runs own images; None: no engine here
    clock: Callable[[], float] = time.time  # seconds since the epoch; a test may fix it

    @property
    def hidden_from_jobs(self) -> tuple[Path, ...]:
        """What an isolated job or model worker does not see (``EnableNetworkIsolation``): the
        server's files (``Settings.private_paths``) and the container engines' sockets."""
        return (*self.settings.private_paths,
                *engine_sockets(self.settings.container_engine))

    def now(self) -> float:
        return self.clock()

    def arn(self, resource: str, service: str = "sagemaker") -> str:
        return self.settings.arn(service, resource)
