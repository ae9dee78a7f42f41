"""What an endpoint's workers look like while it serves, and the state the deploy,
capacity, replacement and metrics pieces share: which deployment of each endpoint is live,
which one may go live next (its token), the launcher, and the log writer."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from opensage.runner.workspace import cpus_for
from opensage.services.context import Context
from opensage.services.endpoints.plan import VariantPlan
from opensage.serving.fleet import Fleet, InstanceLauncher, ModelServer, WorkerProgram
from opensage.serving.process import LogSink, Worker
from opensage.serving.router import LiveVariant, Router

LOG_GROUP = "/aws/sagemaker/Endpoints/{name}"
log = logging.getLogger(__name__)


@dataclass
class ServedVariant:
    plan: VariantPlan
    fleet: Fleet

    @property
    def name(self) -> str:
        return self.plan["VariantName"]


class LiveEndpoint:
    """One deployment of an endpoint: a fleet per variant and the router over them."""

    def __init__(self, name: str, directory: Path, variants: list[ServedVariant]) -> None:
        self.name = name
        self.directory = directory
        self.variants = {v.name: v for v in variants}
        self.router = self._route()

    def _route(self) -> Router:
        return Router([LiveVariant(v.name, v.plan["Weight"], v.fleet.workers)
                       for v in self.variants.values()])

    def reroute(self) -> None:
        """A new router over the fleets as they are now (the router itself never changes)."""
        self.router = self._route()

    @property
    def workers(self) -> list[Worker]:
        return [w for v in self.variants.values() for w in v.fleet.workers]

    def instances(self, variant: str) -> int:
        served = self.variants.get(variant)
        return len(served.fleet.workers) if served is not None else 0


class Hosting:
    """The endpoint service's shared state. ``lock`` guards ``live`` and ``tokens``."""

    def __init__(self, ctx: Context, launcher: InstanceLauncher) -> None:
        self.ctx = ctx
        self.launcher = launcher
        self.root = ctx.settings.data_dir / "endpoints"
        self.lock = threading.RLock()
        self.live: dict[str, LiveEndpoint] = {}  # by lower-cased name
        self.tokens: dict[str, str] = {}  # endpoint -> the deployment that may go live
        self.closing = threading.Event()
        self.wake = threading.Event()  # a worker exited: the watcher looks now
        self.stop_grace = 30.0

    def fleet(self, endpoint: str, plan: VariantPlan, program: WorkerProgram,
              directory: Path) -> Fleet:
        """The fleet of one variant: its workers' output goes to the endpoint's log group,
        stream ``<variant>/<instance-id>``; an exit wakes the watcher."""
        group = LOG_GROUP.format(name=endpoint)
        model = ModelServer(program=program, model_dir=directory / "model", work_dir=directory,
                            cpus=cpus_for(plan["InstanceType"]), env=plan["Environment"],
                            startup_timeout=plan["StartupTimeout"],
                            isolated=plan.get("NetworkIsolation", False),
                            model_url=plan["ModelDataUrl"], instance_type=plan["InstanceType"])

        def sink(worker: Worker) -> LogSink:
            stream = f"{plan['VariantName']}/{worker.instance_id}"

            def write(events: list[tuple[int, str]]) -> None:
                self.ctx.logs.append(group, stream, events)

            return write

        return Fleet(self.launcher, model, sink, lambda _worker: self.wake.set())

    def log(self, endpoint: str, stream: str, message: str) -> None:
        group = LOG_GROUP.format(name=endpoint)
        try:
            self.ctx.logs.append(group, stream, [(int(time.time() * 1000), message)])
        except Exception:
            log.exception("storing a log line in %s failed", group)
