"""Everything a request handler may reach, built once per server from the settings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from opensage.services.algorithms import AlgorithmCatalog
from opensage.services.logs import LogService
from opensage.services.metrics import MetricStore
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
    logs: LogService
    metrics: MetricStore
    algorithms: AlgorithmCatalog
    # Set by ``create``: services that hold a reference back to the backend.
    training: Any = field(default=None)
    tuning: Any = field(default=None)
    endpoints: Any = field(default=None)
    transform: Any = field(default=None)
    autoscaling: Any = field(default=None)  # application-autoscaling
    housekeeping: Any = field(default=None)  # retention purges

    @classmethod
    def create(cls, settings: Settings) -> Backend:
        from opensage.runner.local import LocalExecutor
        from opensage.services.autoscaling import AutoscalingService
        from opensage.services.endpoints import EndpointService
        from opensage.services.housekeeping import Housekeeping
        from opensage.services.training.jobs import TrainingService
        from opensage.services.transform import TransformService
        from opensage.services.tuning.jobs import TuningService

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database_url)
        db.prepare()
        backend = cls(settings=settings, db=db,
                      objects=ObjectStore(settings.objects_url, db, region=settings.region),
                      resources=ResourceStore(db), logs=LogService(db, settings),
                      metrics=MetricStore(db), algorithms=AlgorithmCatalog())
        backend.training = TrainingService(backend)
        backend.training.executor = LocalExecutor(
            settings.data_dir / "jobs" / "training", backend.objects, backend.training,
            slots=settings.job_slots, stop_grace_seconds=settings.stop_grace_seconds,
            spot_interruptions_per_hour=settings.spot_interruptions_per_hour,
            forkserver=_forkserver(settings))
        backend.tuning = TuningService(backend)
        backend.endpoints = EndpointService(backend)
        backend.transform = TransformService(backend)
        backend.autoscaling = AutoscalingService(backend)
        backend.housekeeping = Housekeeping(settings, backend.logs, backend.metrics,
                                            backend.autoscaling.purge_activities)
        return backend

    def start(self) -> None:
        """Start the job slots and pick up the jobs a previous run left unfinished."""
        self.training.executor.start()
        self.training.recover()
        self.tuning.start()  # its reconcile loop also resumes unfinished searches
        self.endpoints.start()  # endpoints that were InService come back InService
        self.transform.start()  # transform jobs left InProgress run again
        self.autoscaling.start()  # the scaler thread
        self.housekeeping.start()  # retention purges

    def arn(self, resource: str, service: str = "sagemaker") -> str:
        return self.settings.arn(service, resource)

    @staticmethod
    def now() -> float:
        return time.time()

    def reset(self) -> None:
        """Wipe all state: running jobs, rows, objects, logs (``--enable-reset`` only)."""
        with self.tuning.paused():  # no tuning step launches a child job mid-wipe
            self.training.executor.cancel_all()
            self.autoscaling.reset()
            self.endpoints.reset()
            self.transform.reset()
            self.db.wipe()
            self.objects.wipe()

    def close(self) -> None:
        self.housekeeping.close()
        self.tuning.shutdown()
        # Serving workers are forked by the training executor's fork server: stop them
        # before it goes, or they would look like crashes (replaced, or failing a job).
        self.autoscaling.close()
        self.endpoints.close()
        self.transform.close()
        self.training.executor.shutdown()
        self.db.dispose()


def _forkserver(settings: Settings) -> Any:
    """A warm process with the built-ins imported, so that jobs start in milliseconds."""
    if not settings.preload_algorithms:
        return None
    from opensage.algorithms.registry import preload_modules
    from opensage.runner.forkserver import ForkServer

    modules = preload_modules()
    return ForkServer(modules) if modules else None
