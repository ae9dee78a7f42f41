"""Real-time endpoints: CreateEndpoint, DescribeEndpoint, ListEndpoints, UpdateEndpoint,
DeleteEndpoint, UpdateEndpointWeightsAndCapacities, and the routing table InvokeEndpoint
reads.

The pieces, by role: ``deploy`` (blue/green deployment of a configuration), ``capacity``
(weights and instance counts in place), ``replacement`` (instances that died), ``metrics``
(invocation metrics in batches), ``plan`` (what a deployment runs, kept in the row's
internal state), ``live`` (the workers serving now), ``states`` (the lifecycle). Workers
are the shared :mod:`opensage.serving.fleet`; the model's ``Environment`` reaches them.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from opensage.errors import ValidationError, ValidationException
from opensage.runner.job_role import JobRoles
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, create, load, summaries
from opensage.services.endpoints.capacity import CapacityChange
from opensage.services.endpoints.deploy import Deployer, Mode, retire, retire_now
from opensage.services.endpoints.live import LOG_GROUP, Hosting, LiveEndpoint
from opensage.services.endpoints.metrics import InvocationMetrics
from opensage.services.endpoints.plan import (
    DEPLOYED,
    PENDING,
    capture_view,
    deployed,
    resolve,
    variant_views,
    with_capacities,
)
from opensage.services.endpoints.replacement import Watcher
from opensage.services.endpoints.states import EndpointStatus, sources
from opensage.serving.capture import CaptureService
from opensage.serving.fleet import InstanceLauncher, Launcher
from opensage.serving.process import Worker
from opensage.serving.router import UnknownVariant
from opensage.store.leases import LeaseKeeper, Leases, server_owner
from opensage.store.resources import Resource, StatusConflict

__all__ = ["EndpointService"]

KIND = kinds.ENDPOINT
RECOVERY_WAIT_SECONDS = 20.0
Desired = list[dict[str, Any]]  # DesiredWeightsAndCapacities
Edit = Callable[[dict[str, Any]], None]  # a change to a row's body or internal state
# Several servers on one database: one server serves an endpoint (it holds the endpoint's
# lease and its URL is in the row's internal state); the others forward InvokeEndpoint to
# it (api/runtime.py). A server that died is replaced once its lease expires (``adopt``).
HOST = "_Host"
OWNER_CACHE_SECONDS = 1.0  # how long a server believes which server serves an endpoint


class EndpointService:
    def __init__(self, ctx: Context, forkserver: Any, roles: JobRoles | None = None,
                 launcher: InstanceLauncher | None = None) -> None:
        """``forkserver``: the warm ``ForkServer`` workers are forked from (None: started
        fresh); ``roles``: a model's artifact is fetched as its ``ExecutionRoleArn`` may
        (``--auth sigv4``); ``launcher``: where instances run (default: processes on this
        machine; ``serving.ray_instances.RayLauncher`` with ``--executor ray``)."""
        self.ctx = ctx
        self.forkserver = forkserver
        self.launcher = launcher or Launcher(forkserver, "endpoint", ctx.containers)
        self.hosting = Hosting(ctx, self.launcher)
        self.capture = CaptureService(ctx.objects, max_bytes=ctx.settings.capture_buffer_bytes)
        self.deployer = Deployer(self.hosting, self.capture, roles)
        self.capacity = CapacityChange(self.hosting)
        self.watcher = Watcher(self.hosting)
        self.metrics = InvocationMetrics(ctx.metrics, self._instances)
        self._serving = LeaseKeeper(Leases(ctx.db), server_owner(ctx.settings.data_dir),
                                    ctx.settings.lease_ttl_seconds, on_lost=self._lost)
        self._owners: dict[str, tuple[float, str | None]] = {}  # name -> (until, url)
        # lower-cased names whose serving lease another server took over: not served here
        # (a deployment still starting when the lease was lost is retired by ``adopt``)
        self._fenced: set[str] = set()

    @property
    def _live(self) -> dict[str, LiveEndpoint]:
        """The deployments serving now, by lower-cased name (tests look at their workers)."""
        return self.hosting.live

    # -- API -------------------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> str:
        name = params["EndpointName"]
        config = load(self.ctx, kinds.ENDPOINT_CONFIG, params["EndpointConfigName"]).body
        deployment = resolve(self.ctx, config)
        now = self.ctx.now()
        arn = arn_of(self.ctx, KIND, name)
        body = {"EndpointName": name, "EndpointArn": arn,
                "EndpointConfigName": config["EndpointConfigName"],
                "EndpointStatus": EndpointStatus.CREATING, "CreationTime": now,
                "LastModifiedTime": now,
                "ProductionVariants": variant_views(deployment, current=False, when=now)}
        if config.get("DataCaptureConfig"):
            body["DataCaptureConfig"] = capture_view(config["DataCaptureConfig"])
        create(self.ctx, KIND, name, body, params.get("Tags") or [], noun="endpoint",
               status=EndpointStatus.CREATING,
               internal={DEPLOYED: deployment, HOST: self.ctx.settings.own_url})
        if self._serving.claim(_lease_key(name)):
            self._fenced.discard(name.lower())
        self.deployer.spawn(name, deployment, Mode.CREATE)
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        return load(self.ctx, KIND, name).body

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        return summaries(self.ctx, KIND, params, key="Endpoints", fields={
            f: f for f in ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime",
                           "EndpointStatus")})

    def update(self, params: dict[str, Any]) -> str:
        row = self._updatable(params["EndpointName"])
        config = load(self.ctx, kinds.ENDPOINT_CONFIG, params["EndpointConfigName"]).body
        deployment = resolve(self.ctx, config)

        def change(body: dict[str, Any]) -> None:
            body["EndpointStatus"] = EndpointStatus.UPDATING
            body.pop("FailureReason", None)

        self._begin_update(row, change, lambda internal: internal.update({PENDING: deployment}))
        self.deployer.spawn(row.name, deployment, Mode.UPDATE)
        return row.arn

    def delete(self, name: str) -> None:
        row = load(self.ctx, KIND, name)
        self.ctx.resources.delete(KIND.name, row.name)
        with self.hosting.lock:
            self.hosting.tokens.pop(row.name.lower(), None)
            live = self.hosting.live.pop(row.name.lower(), None)
        self.capture.remove(row.name)  # write what is buffered
        if live is not None:
            retire(live, grace=self.hosting.stop_grace)
        self._serving.release(_lease_key(row.name))

    def set_capacities(self, name: str,
                       desired: Desired) -> tuple[str, threading.Thread]:
        """Change variants' weight and/or instance count in place (workers started before
        traffic reaches them, removed ones drained): ``Updating`` then ``InService``."""
        row = self._updatable(name)
        current = deployed(row.internal)
        if current is None:
            raise ValidationException(f'Endpoint "{row.arn}" has no deployment to change.')
        target = with_capacities(current, desired, row.arn)
        now = self.ctx.now()

        def change(body: dict[str, Any]) -> None:
            views = variant_views(target, current=False, when=now)
            for view, old in zip(views, body.get("ProductionVariants") or [], strict=False):
                view.update({k: old[k] for k in ("CurrentWeight", "CurrentInstanceCount",
                                                 "DeployedImages") if k in old})
            body.update(EndpointStatus=EndpointStatus.UPDATING, ProductionVariants=views)
            body.pop("FailureReason", None)

        self._begin_update(row, change, None)
        return row.arn, self.capacity.begin(row.name, target)

    def _updatable(self, name: str) -> Resource:
        row = load(self.ctx, KIND, name)
        if row.status != EndpointStatus.IN_SERVICE:
            raise self._not_updatable(row.arn, row.status)
        return row

    def _begin_update(self, row: Resource, change: Edit, change_internal: Edit | None) -> None:
        """InService -> Updating, or the error AWS gives when it is no longer InService."""
        try:
            self.ctx.resources.transition(
                KIND.name, row.name, sources(EndpointStatus.UPDATING, EndpointStatus.IN_SERVICE),
                EndpointStatus.UPDATING, change, now=self.ctx.now(),
                change_internal=change_internal)
        except StatusConflict as e:
            raise self._not_updatable(row.arn, e.current) from None

    @staticmethod
    def _not_updatable(arn: str, status: str | None) -> ValidationException:
        if status is not None and EndpointStatus(status).in_progress:
            return ValidationException(f'Cannot update in-progress endpoint "{arn}".')
        return ValidationException(f'Cannot update endpoint "{arn}" in status {status}.')

    # -- the invocation path (no store access) ---------------------------------------------
    def route(self, name: str, target_variant: str | None) -> tuple[str, Worker]:
        live = self.hosting.live.get(name.lower())
        if live is None:
            raise self._missing(name)
        try:
            variant, worker = live.router.pick(target_variant)
        except UnknownVariant:
            raise ValidationError(f"The variant {target_variant} does not exist for endpoint "
                                  f"{name}.") from None
        return variant.name, worker

    def reroute(self, name: str, variant: str, failed: Worker) -> Worker | None:
        """Another instance of ``variant`` (of whatever configuration is live now) that is up,
        for a request ``failed`` could not take; None while there is none (a replacement may
        be starting). ValidationError once the endpoint is gone."""
        live = self.hosting.live.get(name.lower())
        if live is None:
            raise self._missing(name)
        own = live.router.by_name.get(variant.lower())
        if own is None:  # the live configuration has other variants now
            return None
        worker: Worker | None = own.healthy_worker(failed)
        return worker

    def serving_elsewhere(self, name: str) -> str | None:
        """The URL of the other server that serves ``name`` (None: this one, or none):
        read from the row at most once a second per endpoint."""
        if name.lower() in self.hosting.live:
            return None
        now = time.monotonic()
        cached = self._owners.get(name.lower())
        if cached is not None and cached[0] > now:
            return cached[1]
        row = self.ctx.resources.get(KIND.name, name)
        url = None if row is None else row.internal.get(HOST)
        if url == self.ctx.settings.own_url:
            url = None
        self._owners[name.lower()] = (now + OWNER_CACHE_SECONDS, url)
        return url

    def forget_owner(self, name: str) -> None:
        """The server named for ``name`` did not answer: look again next time."""
        self._owners.pop(name.lower(), None)

    def _missing(self, name: str) -> ValidationError:
        return ValidationError(f"Endpoint {name} of account {self.ctx.settings.account_id} "
                               "not found.")

    def record(self, endpoint: str, variant: str, status: int, model_us: float,
               overhead_us: float) -> None:
        """One invocation's outcome; written to the metric store in batches, off this path."""
        self.metrics.record((endpoint, variant, status, model_us, overhead_us))

    def _instances(self, endpoint: str, variant: str) -> int:
        live = self.hosting.live.get(endpoint.lower())
        return live.instances(variant) if live is not None else 0

    def log_stream_arn(self, endpoint: str, variant: str) -> str:
        group = LOG_GROUP.format(name=endpoint)
        return self.ctx.arn(f"log-group:{group}:log-stream:{variant}", service="logs")

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, wait: float = RECOVERY_WAIT_SECONDS) -> None:
        """Start the metric flusher and the watcher; bring back the endpoints a previous run
        was serving (waiting up to ``wait`` seconds for them, so that InService means
        routable)."""
        self.hosting.closing.clear()
        self.metrics.start()
        self.watcher.start()
        self.launcher.warm()
        with self.hosting.lock:
            if not self.hosting.live:  # what a previous (killed) server left behind
                shutil.rmtree(self.hosting.root, ignore_errors=True)
        deploys = [thread for row in self.ctx.resources.scan(KIND.name, statuses=(
            EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING, EndpointStatus.CREATING))
            if self._serving.claim(_lease_key(row.name))
            and (thread := self._restore(row)) is not None]
        deadline = time.monotonic() + wait
        for thread in deploys:
            thread.join(max(0.0, deadline - time.monotonic()))

    def adopt(self) -> tuple[threading.Thread, ...]:
        """A live server's periodic look: serve the endpoints of a server that died (their
        leases expired), and stop serving those deleted through another server, or taken
        over by another (a deployment that was still starting when its lease was lost)."""
        active = (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING, EndpointStatus.CREATING)
        rows = {row.name.lower(): row for row in self.ctx.resources.scan(KIND.name,
                                                                          statuses=active)}
        with self.hosting.lock:
            gone = [self.hosting.live.pop(n) for n in list(self.hosting.live)
                    if n not in rows or n in self._fenced]
        for live in gone:
            retire(live, grace=self.hosting.stop_grace)
            if live.name.lower() not in rows:  # deleted through another server: our lease
                self._serving.release(_lease_key(live.name))  # of it goes too
        threads = []
        for name, row in rows.items():
            if name in self.hosting.live or not self._serving.take_over(_lease_key(row.name)):
                continue
            self._fenced.discard(name)  # its server died: served here from now on
            if (thread := self._restore(row)) is not None:
                threads.append(thread)
        return tuple(threads)

    def _lost(self, key: str) -> None:
        """Another server took over an endpoint this one serves (it was cut from the
        database past the lease's time to live, and the other now serves it): its fleet
        here is stopped; requests reaching this server are sent to the other one."""
        name = key.removeprefix("endpoint:")
        self._fenced.add(name)
        with self.hosting.lock:
            self.hosting.tokens.pop(name, None)
            live = self.hosting.live.pop(name, None)
        self._owners.pop(name, None)  # read the row's new host at the next request
        if live is not None:
            retire(live, grace=self.hosting.stop_grace)

    def _restore(self, row: Resource) -> threading.Thread | None:
        """Deploy again what ``row`` served (an update in progress is abandoned), here."""
        deployment = deployed(row.internal)
        if deployment is None:
            return None
        try:
            self.ctx.resources.edit(KIND.name, row.name, [row.status], now=self.ctx.now(),
                                    change_internal=lambda internal: internal.update(
                                        {HOST: self.ctx.settings.own_url}))
        except StatusConflict:
            return None
        if row.status == EndpointStatus.CREATING:
            return self.deployer.spawn(row.name, deployment, Mode.CREATE)
        if row.status == EndpointStatus.UPDATING:
            def interrupted(body: dict[str, Any]) -> None:
                body.update(EndpointStatus=EndpointStatus.IN_SERVICE,
                            FailureReason="The update was interrupted by a server restart.")

            try:
                self.ctx.resources.transition(
                    KIND.name, row.name,
                    sources(EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING),
                    EndpointStatus.IN_SERVICE, interrupted, now=self.ctx.now(),
                    change_internal=lambda internal: internal.pop(PENDING, None))
            except StatusConflict:
                return None
        return self.deployer.spawn(row.name, deployment, Mode.RESTORE)

    def stop_all(self, grace: float = 5.0) -> None:
        """Stop every worker (server shutdown or reset)."""
        with self.hosting.lock:
            live = list(self.hosting.live.values())
            self.hosting.live.clear()
            self.hosting.tokens.clear()
        threads = [threading.Thread(target=retire_now, args=(e, grace)) for e in live]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def close(self) -> None:
        self._serving.close()
        self.hosting.closing.set()
        self.hosting.wake.set()
        self.stop_all()
        self.watcher.join(timeout=5)
        self.metrics.close()
        self.capture.close()
        self.launcher.close()

    def reset(self) -> None:
        self.stop_all(grace=1.0)
        self._serving.forget_all()  # the leases are about to be wiped
        self._fenced.clear()
        self.metrics.clear()
        self.capture.reset()
        shutil.rmtree(self.hosting.root, ignore_errors=True)


def _lease_key(name: str) -> str:
    return f"endpoint:{name.lower()}"
