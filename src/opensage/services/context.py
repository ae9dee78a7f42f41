"""What every service may use: configuration, the stores, and the clock.

Services are handed a :class:`Context` and, separately, the other services they call
(see ``services.wiring``): the context never holds a service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from opensage.containers import ContainerEngine
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

    def now(self) -> float:
        return self.clock()

    def arn(self, resource: str, service: str = "sagemaker") -> str:
        return self.settings.arn(service, resource)
