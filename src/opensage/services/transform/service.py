"""Batch transform: CreateTransformJob, DescribeTransformJob, ListTransformJobs,
StopTransformJob.

The row is stored ``InProgress`` first (the model's container kept in its internal state, so
the job runs as created even if the model changes); a job thread then starts the model's
fleet (:mod:`opensage.serving.fleet`, the workers endpoints use) and streams every input
object through it (``job``): input objects are those under ``S3Prefix`` or listed in a
``ManifestFile``, read as streams (``CompressionType: Gzip`` decompressed on the fly), split
and batched (``records``), filtered and joined (``formats``, ``jsonpath``).

Logs go to ``/aws/sagemaker/TransformJobs``, stream ``<job>/<instance-id>-<epoch>``. After a
server restart a job left ``InProgress`` runs again from the start (outputs are replaced
whole), one left ``Stopping`` becomes ``Stopped``.

Several servers may share one database: a server runs a job only while it holds the job's
run lease (``store.leases``), renewed while it runs, so a job is never run by two servers
at once; a restarted server takes its own jobs back at once (the owner is its host and data
directory), another takes them once their lease lapses. A stop that reaches a server not
running the job is seen by the one running it within ``STOP_POLL_SECONDS`` (it polls the row).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from opensage.errors import ValidationException
from opensage.runner.job_role import AsRole, JobRoles
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, create, load, summaries
from opensage.services.events import JobCreated, JobEnded, Listeners
from opensage.services.models import serving_container
from opensage.services.transform.job import (
    CONTAINER,
    LOG_GROUP,
    NETWORK_ISOLATION,
    Job,
    Running,
    split_url,
)
from opensage.services.transform.jsonpath import parse_path
from opensage.services.transform.outcomes import JobFailed, JobStopped
from opensage.services.transform.states import TransformJobStatus, outcome, sources
from opensage.serving.fleet import InstanceLauncher, Launcher
from opensage.store.leases import LeaseKeeper, Leases, server_owner
from opensage.store.resources import StatusConflict

__all__ = ["TransformService"]

KIND = kinds.TRANSFORM_JOB
log = logging.getLogger(__name__)
Status = TransformJobStatus
ROLE = "_ExecutionRoleArn"  # key of Resource.internal: the model's role, as created
STOP_POLL_SECONDS = 1.0  # how often a running job looks for a stop made through another server


class TransformService:
    def __init__(self, ctx: Context, forkserver: Any, roles: JobRoles | None = None,
                 launcher: InstanceLauncher | None = None) -> None:
        """``forkserver``: the warm ``ForkServer`` workers are forked from (None: started
        fresh); ``roles``: a job reads its input and writes its output as its model's
        ``ExecutionRoleArn`` may (``--auth sigv4``); ``launcher``: where the model's workers
        run (default: processes on this machine; a ``RayLauncher`` with ``--executor
        ray``)."""
        self.ctx = ctx
        self.roles = roles
        self.forkserver = forkserver
        self.launcher = launcher or Launcher(forkserver, "transform", ctx.containers)
        self.root = ctx.settings.data_dir / "transform"
        self._running: dict[str, Running] = {}
        self._lock = threading.Lock()
        self.job_created: Listeners[JobCreated] = Listeners("TransformJobCreated")
        self.job_ended: Listeners[JobEnded] = Listeners("TransformJobEnded")
        self._runs = LeaseKeeper(Leases(ctx.db), server_owner(ctx.settings.data_dir),
                                 ctx.settings.lease_ttl_seconds, on_lost=self._lost)

    # -- API -------------------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> str:
        name = params["TransformJobName"]
        model = load(self.ctx, kinds.MODEL, params["ModelName"])
        container = serving_container(model)
        _validate(params)
        container[NETWORK_ISOLATION] = bool(model.body.get("EnableNetworkIsolation"))
        now = self.ctx.now()
        arn = arn_of(self.ctx, KIND, name)
        body = {k: v for k, v in params.items() if k != "Tags"}
        body["TransformInput"] = {"CompressionType": "None", "SplitType": "None",
                                  **params["TransformInput"]}
        body.update(TransformJobArn=arn, TransformJobStatus=Status.IN_PROGRESS,
                    CreationTime=now, LastModifiedTime=now)
        internal = {CONTAINER: container, ROLE: model.body.get("ExecutionRoleArn") or ""}
        create(self.ctx, KIND, name, body, params.get("Tags") or [], noun="transform job",
               status=Status.IN_PROGRESS, internal=internal)
        self.job_created.publish(JobCreated(name))  # in the request: tracked at once
        if self._runs.claim(_run_key(name)):  # a new name: only a wiped store had it
            self._launch(name)
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        return load(self.ctx, KIND, name).body

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        return summaries(self.ctx, KIND, params, key="TransformJobSummaries", fields={
            f: f for f in ("TransformJobName", "TransformJobArn", "CreationTime",
                           "TransformEndTime", "LastModifiedTime", "TransformJobStatus",
                           "FailureReason")})

    def stop(self, name: str) -> None:
        row = load(self.ctx, KIND, name)
        if row.status == Status.STOPPING:
            return
        if row.status != Status.IN_PROGRESS:
            raise ValidationException(
                f"The transform job {row.name} is in status {row.status}: only an InProgress "
                "job can be stopped.")
        now = self.ctx.now()
        try:
            self.ctx.resources.transition(
                KIND.name, row.name, sources(Status.STOPPING, Status.IN_PROGRESS),
                Status.STOPPING, lambda body: body.update(
                    TransformJobStatus=Status.STOPPING, LastModifiedTime=now), now=now)
        except StatusConflict:
            return  # it finished (or was stopped) meanwhile
        with self._lock:
            running = self._running.get(row.name.lower())
        if running is not None:
            running.stop.set()
        elif self._runs.claim(_run_key(row.name)):  # no server runs it: stopped at once
            self._finish(row.name, Status.STOPPED)
            self._runs.release(_run_key(row.name))
        # else another server runs it: it sees the Stopping row and stops

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()

    def recover(self, *, adopting: bool = False) -> None:
        """Run again every job a previous server left ``InProgress``; ``Stopping`` ones stop.
        Each only if its run lease is free or this server's (no other live server runs it);
        ``adopting``: only the jobs of a server that died (their leases expired)."""
        take = partial(self._runs.take_over, orphans=True) if adopting else self._runs.claim
        for row in self.ctx.resources.scan(KIND.name, statuses=(Status.IN_PROGRESS,
                                                                 Status.STOPPING)):
            with self._lock:
                if row.name.lower() in self._running:
                    continue  # this server runs it already
            if not take(_run_key(row.name)):
                continue  # another server runs it
            if row.status == Status.STOPPING:
                self._finish(row.name, Status.STOPPED)
                self._runs.release(_run_key(row.name))
            else:
                self._log(row.name, "system", "The server restarted: the transform "
                          "job runs again from the start.")
                self._launch(row.name)

    def stop_all(self, wait: float = 10.0, *, shutdown: bool = False) -> None:
        with self._lock:
            running = list(self._running.values())
        for job in running:
            job.shutdown = shutdown
            job.stop.set()
            if job.fleet is not None:
                job.fleet.kill()
        deadline = time.monotonic() + wait
        for job in running:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Server shutdown: jobs in progress are left ``InProgress``; ``start`` reruns them."""
        self.stop_all(shutdown=True)
        self.launcher.close()
        self._runs.close()

    def _lost(self, key: str) -> None:
        """Another server took over a job this one runs (it was cut from the database past
        the lease's time to live): its workers here are killed, its end never recorded."""
        name = key.removeprefix(f"{KIND.name}/").removesuffix("/run")
        with self._lock:
            running = self._running.get(name.lower())
        if running is None:
            return
        running.lost = True
        running.stop.set()
        if running.fleet is not None:
            running.fleet.kill()

    def reset(self) -> None:
        self.stop_all()
        self._runs.forget_all()  # the leases are about to be wiped
        shutil.rmtree(self.root, ignore_errors=True)

    # -- running a job ---------------------------------------------------------------------
    def _launch(self, name: str) -> None:
        running = Running(name)
        with self._lock:
            self._running[name.lower()] = running
        running.thread = threading.Thread(target=self._run, args=(running,), daemon=True,
                                          name=f"transform-{name}")
        running.thread.start()
        threading.Thread(target=self._watch_stop, args=(running, running.thread), daemon=True,
                         name=f"transform-{name}-stop").start()

    def _watch_stop(self, running: Running, thread: threading.Thread) -> None:
        """Stop the run when its row goes ``Stopping`` (or away) through another server."""
        while not running.stop.wait(STOP_POLL_SECONDS) and thread.is_alive():
            try:
                row = self.ctx.resources.get(KIND.name, running.name)
            except Exception:  # the database went away (shutdown): the run ends on its own
                log.exception("polling transform job %s for a stop failed", running.name)
                return
            if row is None or row.status != Status.IN_PROGRESS:
                running.stop.set()

    def _run(self, running: Running) -> None:
        name = running.name
        directory = self.root / name.lower()
        result: tuple[TransformJobStatus, str | None]
        try:
            row = load(self.ctx, KIND, name)
            self._started(name)
            role_arn = row.internal.get(ROLE) or ""
            # the platform's own reads and writes only: the workers get no credentials
            role = (self.roles.acting_as(role_arn, name)
                    if self.roles is not None and role_arn else None)
            Job(self.ctx, self.launcher, row.body, row.internal.get(CONTAINER) or {}, running,
                directory, self._log,
                self.ctx.objects if role is None else AsRole(self.ctx.objects, role)).run()
        except JobStopped:
            result = (Status.STOPPED, None)
        except JobFailed as e:
            result = (Status.FAILED, str(e))
        except Exception as e:
            log.exception("transform job %s failed", name)
            result = (Status.FAILED, f"InternalServerError: {type(e).__name__}: {e}")
        else:
            result = (Status.STOPPED if running.stop.is_set() else Status.COMPLETED, None)
        try:
            if running.shutdown:
                pass  # stays InProgress: the next server runs it again
            elif running.lost or not self._runs.holds(_run_key(name)):  # the write's fence
                log.warning("transform job %s ended here (%s) but its run lease is not this "
                            "server's (another took the job over, or the store was reset): "
                            "not recorded", name, result[0])
                self._runs.forget(_run_key(name))
            else:
                self._finish(name, *result)
        finally:
            running.client.close()
            if running.fleet is not None:
                running.fleet.kill()
            shutil.rmtree(directory, ignore_errors=True)
            with self._lock:
                if self._running.get(name.lower()) is running:
                    del self._running[name.lower()]
            try:  # given back even on a shutdown: the job stays InProgress for the next server
                self._runs.release(_run_key(name))
            except Exception:  # the database went away: the lease lapses instead
                log.exception("releasing the run lease of transform job %s failed", name)

    def _started(self, name: str) -> None:
        """Record ``TransformStartTime`` (an edit, not a move: the job stays InProgress)."""
        now = self.ctx.now()
        try:
            self.ctx.resources.edit(KIND.name, name, (Status.IN_PROGRESS,), lambda body: (
                body.update(TransformStartTime=now, LastModifiedTime=now)), now=now)
        except StatusConflict:
            pass  # stopped (or deleted) before it started

    def _finish(self, name: str, result: TransformJobStatus, reason: str | None = None) -> None:
        """End the job with its run's ``result``; a job asked to stop ends ``Stopped``."""
        for _attempt in range(5):  # a concurrent StopTransformJob moves it to Stopping
            row = self.ctx.resources.get(KIND.name, name)
            if row is None or row.status is None or Status(row.status).is_terminal:
                return
            current = Status(row.status)
            target = outcome(current, result)
            now = self.ctx.now()
            try:
                self.ctx.resources.transition(KIND.name, name, sources(target, current), target,
                                              _ended(target, now, reason), now=now)
            except StatusConflict:
                continue
            self.job_ended.publish(JobEnded(name))  # listeners read the row
            return

    def _log(self, job: str, stream: str, message: str) -> None:
        try:
            self.ctx.logs.append(LOG_GROUP, f"{job}/{stream}",
                                 [(int(time.time() * 1000), message)])
        except Exception:
            log.exception("storing a log line of transform job %s failed", job)


def _run_key(name: str) -> str:
    return f"{KIND.name}/{name}/run"


def _ended(status: TransformJobStatus, now: float,
           reason: str | None) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body.update(TransformJobStatus=status, TransformEndTime=now, LastModifiedTime=now)
        if status is TransformJobStatus.FAILED and reason:
            body["FailureReason"] = reason[:1024]

    return change


def _validate(params: dict[str, Any]) -> None:
    payload = params.get("MaxPayloadInMB")
    concurrent = params.get("MaxConcurrentTransforms")
    if payload is not None and payload > 100:
        raise ValidationException("MaxPayloadInMB must be less than or equal to 100.")
    if payload is not None and concurrent and payload * concurrent > 100:
        raise ValidationException("MaxConcurrentTransforms * MaxPayloadInMB must be less than "
                                  "or equal to 100.")
    if len(params.get("Environment") or {}) > 16:
        raise ValidationException("Environment can have at most 16 entries.")
    source = params["TransformInput"]["DataSource"].get("S3DataSource")
    if not source:
        raise ValidationException("TransformInput.DataSource.S3DataSource is required.")
    for url in (source["S3Uri"], params["TransformOutput"]["S3OutputPath"]):
        split_url(url)
    processing = params.get("DataProcessing") or {}
    for key in ("InputFilter", "OutputFilter"):
        if processing.get(key):
            try:
                parse_path(processing[key])
            except ValueError as e:
                raise ValidationException(f"DataProcessing.{key}: {e}") from None
