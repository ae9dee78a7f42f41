"""Changing variants' weights and instance counts in place (UpdateEndpointWeightsAndCapacities,
and autoscaling): ``Updating``, then new workers start and pass ``/ping`` before traffic
reaches them, removed ones drain, and the endpoint is ``InService`` again. A change that
cannot be made (a new instance does not come up) is rolled back: the new workers go and the
endpoint keeps serving as it was, with a ``FailureReason``."""

from __future__ import annotations

import logging
import threading
from typing import Any

from opensage.services import kinds
from opensage.services.endpoints.deploy import DeployFailed
from opensage.services.endpoints.live import Hosting, LiveEndpoint
from opensage.services.endpoints.plan import DEPLOYED, Deployment, deployed, variant_views
from opensage.services.endpoints.states import EndpointStatus, sources
from opensage.serving.fleet import Fleet, WorkerFailed, drain
from opensage.serving.process import Worker
from opensage.store.resources import StatusConflict

KIND = kinds.ENDPOINT
log = logging.getLogger(__name__)


class CapacityChange:
    def __init__(self, hosting: Hosting) -> None:
        self.hosting = hosting
        self.ctx = hosting.ctx

    def begin(self, name: str, target: Deployment) -> threading.Thread:
        """Apply ``target`` (the endpoint is ``Updating`` already) on a thread."""
        thread = threading.Thread(target=self._apply, args=(name, target), daemon=True,
                                  name=f"capacity-{name}")
        thread.start()
        return thread

    def _apply(self, name: str, target: Deployment) -> None:
        key = name.lower()
        with self.hosting.lock:
            live = self.hosting.live.get(key)
            token = self.hosting.tokens.get(key)
        added: dict[str, list[Worker]] = {}
        try:
            if live is None:
                raise DeployFailed("The endpoint has no running instances.")
            for plan in target["Variants"]:
                fleet = live.variants[plan["VariantName"]].fleet
                grow = plan["InstanceCount"] - len(fleet.workers)
                if grow > 0:
                    try:
                        added[plan["VariantName"]] = fleet.start(grow)
                    except WorkerFailed as e:
                        raise DeployFailed(
                            f"A new instance of production variant {plan['VariantName']} did "
                            f"not pass the ping health check: {e}.") from None
        except DeployFailed as e:
            self._failed(name, token, added, str(e))
            return
        except Exception as e:
            log.exception("changing the capacity of endpoint %s failed", name)
            self._failed(name, token, added, f"InternalFailure: {e}")
            return
        assert live is not None
        retired = self._commit(name, token, live, target, added)
        for worker in retired:  # drain: finish what is in flight, off this thread
            threading.Thread(target=drain, args=([worker], self.hosting.stop_grace),
                             daemon=True, name=f"retire-{name}").start()

    def _commit(self, name: str, token: str | None, live: LiveEndpoint, target: Deployment,
                added: dict[str, list[Worker]]) -> list[Worker]:
        """Make the change live; the workers to drain (the new ones when the endpoint was
        deleted or redeployed meanwhile)."""
        key = name.lower()
        with self.hosting.lock:
            if self.hosting.tokens.get(key) != token or self.hosting.live.get(key) is not live:
                return [w for ws in added.values() for w in ws]
            now = self.ctx.now()

            def change(body: dict[str, Any]) -> None:
                images = {v["VariantName"]: v.get("DeployedImages")
                          for v in body.get("ProductionVariants") or []}
                views = variant_views(target, current=True, when=now)
                for view in views:
                    if images.get(view["VariantName"]):
                        view["DeployedImages"] = images[view["VariantName"]]
                body.update(EndpointStatus=EndpointStatus.IN_SERVICE, LastModifiedTime=now,
                            ProductionVariants=views)

            try:
                self.ctx.resources.transition(
                    KIND.name, name, sources(EndpointStatus.IN_SERVICE,
                                             EndpointStatus.UPDATING),
                    EndpointStatus.IN_SERVICE, change, now=now,
                    change_internal=lambda internal: internal.update({DEPLOYED: target}))
            except StatusConflict:  # deleted meanwhile
                return [w for ws in added.values() for w in ws]
            retired: list[Worker] = []
            for plan in target["Variants"]:
                served = live.variants[plan["VariantName"]]
                served.plan = plan
                fleet: Fleet = served.fleet
                fleet.admit(added.get(plan["VariantName"], []))
                retired += fleet.release(len(fleet.workers) - plan["InstanceCount"])
            live.reroute()
        return retired

    def _failed(self, name: str, token: str | None, added: dict[str, list[Worker]],
                reason: str) -> None:
        """Roll back: the new workers go, the endpoint keeps serving as it was."""
        for workers in added.values():
            for worker in workers:
                worker.kill()
        with self.hosting.lock:
            if self.hosting.tokens.get(name.lower()) != token:
                return
            row = self.ctx.resources.get(KIND.name, name)
            current = deployed(row.internal) if row is not None else None
            now = self.ctx.now()

            def change(body: dict[str, Any]) -> None:
                if current is not None:  # the capacities it still has
                    body["ProductionVariants"] = variant_views(current, current=True, when=now)
                body.update(EndpointStatus=EndpointStatus.IN_SERVICE,
                            FailureReason=reason[:1024], LastModifiedTime=now)

            try:
                self.ctx.resources.transition(
                    KIND.name, name, sources(EndpointStatus.IN_SERVICE,
                                             EndpointStatus.UPDATING),
                    EndpointStatus.IN_SERVICE, change, now=now)
            except StatusConflict:
                pass  # deleted meanwhile
