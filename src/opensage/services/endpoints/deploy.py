"""Deploying an endpoint's configuration, blue/green.

The row is written before anything is acted on: ``Creating`` (or ``Updating``) is stored,
then a deploy thread fetches each variant's model, starts its fleet and waits for every
``/ping``; only then does the new deployment go live (the router swapped in one step) and
the endpoint become ``InService``. A model that fails to load sends a new endpoint to
``Failed`` with the reason; a failed update leaves it ``InService`` on its old deployment
with a ``FailureReason``. The old deployment's workers then drain (SIGTERM lets them finish
the requests in flight), so an update drops no request.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

from opensage.runner.job_role import JobRoles, model_data_denial
from opensage.runner.toolkit import isolation
from opensage.services import kinds
from opensage.services.endpoints.live import Hosting, LiveEndpoint, ServedVariant
from opensage.services.endpoints.plan import (
    DEPLOYED,
    PENDING,
    Deployment,
    VariantPlan,
    variant_views,
)
from opensage.services.endpoints.states import EndpointStatus, sources
from opensage.services.servable import NotServable, Servable, servable, worker_program
from opensage.serving.artifacts import ArtifactError, archive_limits
from opensage.serving.capture import CaptureService
from opensage.serving.fleet import WorkerFailed, drain, prepare_model
from opensage.store.resources import StatusConflict

KIND = kinds.ENDPOINT
log = logging.getLogger(__name__)


class DeployFailed(Exception):
    """The message is the endpoint's FailureReason."""


class Mode(Enum):
    CREATE = "create"  # Creating -> InService | Failed
    UPDATE = "update"  # Updating -> InService (switched over, or rolled back)
    RESTORE = "restore"  # after a restart: InService stays (or Failed if it cannot serve)


class Deployer:
    def __init__(self, hosting: Hosting, capture: CaptureService,
                 roles: JobRoles | None = None) -> None:
        """``roles``: each model's artifact is fetched only if its ``ExecutionRoleArn`` may
        read it (``--auth sigv4``)."""
        self.hosting = hosting
        self.ctx = hosting.ctx
        self.capture = capture
        self.roles = roles

    def check_model_data(self, name: str, plan: VariantPlan) -> None:
        """DeployFailed, naming the artifact and the role, when the model's execution role
        may not read its artifact (AWS fetches it as that role)."""
        role_arn = plan.get("ExecutionRoleArn") or ""
        if self.roles is None or not role_arn or not plan["ModelDataUrl"]:
            return
        why = model_data_denial(self.roles.acting_as(role_arn, name), plan["ModelDataUrl"],
                                self.ctx.settings.region)
        if why is not None:
            raise DeployFailed(why)

    def spawn(self, name: str, deployment: Deployment, mode: Mode) -> threading.Thread:
        token = uuid.uuid4().hex
        with self.hosting.lock:
            self.hosting.tokens[name.lower()] = token
        thread = threading.Thread(target=self._deploy, args=(name, deployment, token, mode),
                                  daemon=True, name=f"deploy-{name}")
        thread.start()
        return thread

    def servable_for(self, plan: VariantPlan) -> Servable:
        try:
            return servable(self.ctx.algorithms, plan["Image"], plan["Environment"],
                            self.ctx.containers)
        except NotServable as e:
            raise DeployFailed(f"Production variant {plan['VariantName']}: {e}") from None

    def _progress(self, name: str, stream: str) -> Callable[[str], None]:
        """Where an environment build's progress lines go: the endpoint's log group."""
        return lambda line: self.hosting.log(name, stream, line)

    def _deploy(self, name: str, deployment: Deployment, token: str, mode: Mode) -> None:
        try:
            live = self._start(name, deployment, token)
        except DeployFailed as e:
            self._failed(name, str(e), token, mode)
            return
        except Exception as e:
            log.exception("deploying endpoint %s failed", name)
            self._failed(name, f"InternalFailure: {type(e).__name__}: {e}", token, mode)
            return
        hosting = self.hosting
        key = name.lower()
        old: LiveEndpoint | None = None
        with hosting.lock:
            current = hosting.tokens.get(key) == token
            if current:
                try:
                    self._went_live(name, deployment, mode)
                except StatusConflict:  # deleted meanwhile
                    current = False
            if current:
                old = hosting.live.get(key)
                hosting.live[key] = live
                self.capture.configure(name, deployment.get("DataCapture"))
        if not current:  # deleted (or superseded) meanwhile
            retire(live, grace=1.0)
        elif old is not None:
            retire(old, grace=hosting.stop_grace)  # drain: finish what is in flight

    def _went_live(self, name: str, deployment: Deployment, mode: Mode) -> None:
        if mode is Mode.RESTORE:
            return  # the row already says InService on this deployment
        now = self.ctx.now()

        def change(body: dict[str, Any]) -> None:
            body.pop("FailureReason", None)
            body.update(EndpointStatus=EndpointStatus.IN_SERVICE, LastModifiedTime=now,
                        EndpointConfigName=deployment["EndpointConfigName"],
                        ProductionVariants=variant_views(deployment, current=True, when=now))

        def change_internal(internal: dict[str, Any]) -> None:
            internal.pop(PENDING, None)
            internal[DEPLOYED] = deployment

        source = EndpointStatus.CREATING if mode is Mode.CREATE else EndpointStatus.UPDATING
        self.ctx.resources.transition(KIND.name, name, sources(EndpointStatus.IN_SERVICE,
                                                               source),
                                      EndpointStatus.IN_SERVICE, change, now=now,
                                      change_internal=change_internal)

    def _start(self, name: str, deployment: Deployment, token: str) -> LiveEndpoint:
        directory = self.hosting.root / name.lower() / token
        served: list[ServedVariant] = []
        try:
            for plan in deployment["Variants"]:
                vname = plan["VariantName"]
                what = self.servable_for(plan)
                if (plan.get("NetworkIsolation") and not self.hosting.launcher.remote
                        and (why := isolation.unavailable()) is not None):  # Ray: the node checks
                    raise DeployFailed(f"Production variant {vname}: {why}")
                work_dir = directory / vname
                model_dir = work_dir / "model"
                self.check_model_data(name, plan)
                try:
                    prepare_model(self.ctx.objects, plan["ModelDataUrl"], model_dir,
                                  archive_limits(self.ctx.settings))
                except ArtifactError as e:
                    raise DeployFailed(f"Failed to download or extract the model data "
                                       f"for production variant {vname}: {e}") from None
                try:
                    program = worker_program(self.ctx, what, model_dir, work_dir,
                                             plan["Environment"],
                                             self._progress(name, f"{vname}/environment"),
                                             here=not self.hosting.launcher.remote)
                except NotServable as e:
                    raise DeployFailed(f"Production variant {vname}: {e}") from None
                fleet = self.hosting.fleet(name, plan, program, work_dir)
                served.append(ServedVariant(plan, fleet))
            for variant in served:
                try:
                    variant.fleet.admit(variant.fleet.start(variant.plan["InstanceCount"]))
                except WorkerFailed as e:
                    raise DeployFailed(
                        f"The primary container for production variant {variant.name} did "
                        f"not pass the ping health check: {e}. Please check CloudWatch logs "
                        "for this endpoint.") from None
        except BaseException:
            for variant in served:
                variant.fleet.kill()
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return LiveEndpoint(name, directory, served)

    def _failed(self, name: str, reason: str, token: str, mode: Mode) -> None:
        hosting = self.hosting
        with hosting.lock:
            if hosting.tokens.get(name.lower()) != token:
                return
            now = self.ctx.now()
            # An update rolls back: still serving the old configuration.
            target = EndpointStatus.IN_SERVICE if mode is Mode.UPDATE else EndpointStatus.FAILED
            source = {Mode.CREATE: EndpointStatus.CREATING, Mode.UPDATE: EndpointStatus.UPDATING,
                      Mode.RESTORE: EndpointStatus.IN_SERVICE}[mode]

            def change(body: dict[str, Any]) -> None:
                body.update(EndpointStatus=target, FailureReason=reason[:1024],
                            LastModifiedTime=now)

            try:
                self.ctx.resources.transition(
                    KIND.name, name, sources(target, source), target, change, now=now,
                    change_internal=lambda internal: internal.pop(PENDING, None))
            except StatusConflict:
                return  # deleted meanwhile
            if target is EndpointStatus.FAILED:
                hosting.tokens.pop(name.lower(), None)
                hosting.live.pop(name.lower(), None)


def retire(live: LiveEndpoint, grace: float) -> None:
    """Drain ``live``'s workers off the caller's thread, then remove its files."""
    threading.Thread(target=retire_now, args=(live, grace), daemon=True,
                     name=f"retire-{live.name}").start()


def retire_now(live: LiveEndpoint, grace: float) -> None:
    drain(live.workers, grace)
    _remove(live.directory)


def _remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
