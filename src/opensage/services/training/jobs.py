"""The training service: validates and records a job before handing it to the executor,
then records everything the executor reports (status, logs, metrics, outcome).

Every change is written to the store before it is acted on, as one compare-and-set of the
job's row (``ResourceStore.transition`` for a status move, ``edit`` for the rest): no
process-local lock decides anything, so several servers may share one database. A stop is
a move InProgress -> Stopping; the server running the job sees it at once when the request
reached it, else within ``runner.local.STOP_POLL_SECONDS`` (the executor asks). A restart
re-submits the jobs that were still running (see ``recover``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from opensage.errors import ResourceInUse, ValidationException
from opensage.runner.executor import Executor
from opensage.runner.local import LOG_GROUP, Outcome, TrainingEvents, TrainingSpec
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, load, summaries
from opensage.services.events import Listeners
from opensage.services.registry import algorithms as registered_algorithms
from opensage.services.training import definition
from opensage.services.training.events import (
    TrainingJobCreated,
    TrainingJobEnded,
    WatchedMetricsReported,
)
from opensage.services.training.states import (
    ACTIVE,
    ENDED,
    MESSAGES,
    Secondary,
    Status,
    check_transition,
)
from opensage.store.leases import LeaseKeeper, Leases, server_owner
from opensage.store.resources import AlreadyExists, Resource, StatusConflict

log = logging.getLogger(__name__)
KIND = kinds.TRAINING_JOB
# A server holds a lease on each job it runs, renewed while it lives: a server that starts
# re-runs only the jobs whose lease has lapsed or is its own (it restarted), never a job
# another live server runs; a live server takes over the jobs of one that died once their
# leases expire (``recover(adopting=True)``, settings.lease_ttl_seconds).
Body = dict[str, Any]


class TrainingService:
    def __init__(self, ctx: Context,
                 executor: Callable[[TrainingEvents], Executor]) -> None:
        """``executor`` builds the executor that runs the jobs, given where it reports (this
        service): the two refer to each other, so the service builds it."""
        self.ctx = ctx
        self.job_created: Listeners[TrainingJobCreated] = Listeners("TrainingJobCreated")
        self.job_ended: Listeners[TrainingJobEnded] = Listeners("TrainingJobEnded")
        self.watched_metrics: Listeners[WatchedMetricsReported] = Listeners(
            "WatchedMetricsReported")
        self.executor = executor(self)
        self._runs = LeaseKeeper(Leases(ctx.db), server_owner(ctx.settings.data_dir),
                                 ctx.settings.lease_ttl_seconds, on_lost=self._lost)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the job slots and run again the jobs a previous run left unfinished."""
        self.executor.start()
        self.recover()

    def cancel_all(self) -> None:
        """Drop every queued and running job (all state is about to be wiped)."""
        self.executor.cancel_all()
        self._runs.forget_all()

    def close(self) -> None:
        """Kill running jobs (their rows stay InProgress and run again on the next start)."""
        self.executor.shutdown()
        self._runs.close()  # this server's leases lapse (its next start takes them back)

    # -- API -------------------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> str:
        name = params["TrainingJobName"]
        arn = arn_of(self.ctx, KIND, name)
        prepared = definition.prepare(
            self.ctx.algorithms, params,
            find_algorithm=partial(registered_algorithms.find, self.ctx),
            containers=self.ctx.containers)
        now = self.ctx.now()
        body = definition.describe_body(params, arn, prepared, now)
        _transition_into(body, Secondary.STARTING, now, MESSAGES[Secondary.STARTING])
        try:
            job = self.ctx.resources.create(
                KIND.name, name, arn, body, now=now, status=body["TrainingJobStatus"],
                tag_list=params.get("Tags") or [],
                internal=definition.internal_state(params, prepared))
        except AlreadyExists:
            raise ResourceInUse(
                "Training job names must be unique within an AWS account and region, and "
                f"a training job with this name already exists ({arn})") from None
        self.job_created.publish(TrainingJobCreated(name))  # in the request: tracked at once
        self._runs.claim(_run_key(name))
        # A stop arriving before the run is queued is not lost: the run asks its row first.
        self.executor.submit(self._spec(job))
        return arn

    def describe(self, name: str) -> Body:
        return load(self.ctx, KIND, name).body

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        return summaries(self.ctx, KIND, params, key="TrainingJobSummaries", fields={
            f: f for f in ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime",
                           "LastModifiedTime", "TrainingJobStatus", "SecondaryStatus")})

    def stop(self, name: str) -> None:
        """InProgress -> Stopping as one compare-and-set: a job that ends meanwhile is either
        refused here or recorded as Stopped by its final report. The executor's request
        reaches only the run still going (a server running it elsewhere polls its row)."""
        job = load(self.ctx, KIND, name)
        now = self.ctx.now()
        try:
            self.ctx.resources.transition(
                KIND.name, job.name, [Status.IN_PROGRESS], Status.STOPPING,
                lambda body: _moved(body, Secondary.STOPPING, now), now=now)
        except StatusConflict as conflict:
            raise ValidationException("The request was rejected because the training job "
                                      f"is in status {conflict.current}.") from None
        self.executor.stop(job.name)

    def update(self, params: dict[str, Any]) -> str:
        """UpdateTrainingJob: profiler settings while running, warm-pool keep-alive after."""
        job = load(self.ctx, KIND, params["TrainingJobName"])
        keep_alive = (params.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds")
        running_only = bool(set(params) - {"TrainingJobName", "ResourceConfig"})

        def change(body: Body) -> None:
            for key in ("ProfilerConfig", "RemoteDebugConfig"):
                if key in params:
                    body[key] = {**(body.get(key) or {}), **params[key]}
            if "ProfilerRuleConfigurations" in params:
                body["ProfilerRuleConfigurations"] = (body.get("ProfilerRuleConfigurations")
                                                      or []) + params["ProfilerRuleConfigurations"]
            if keep_alive is not None:
                body["ResourceConfig"] = {**body["ResourceConfig"],
                                          "KeepAlivePeriodInSeconds": keep_alive}

        allowed = [Status.IN_PROGRESS] if running_only else [*ACTIVE, *ENDED]
        try:
            self._edit(job.name, allowed, change)
        except StatusConflict as conflict:
            raise ValidationException(
                f"The training job is in status {conflict.current}: only InProgress jobs can "
                "have their profiler or debug settings updated.") from None
        return job.arn

    def interrupt(self, name: str) -> None:
        """Reclaim a managed-spot job's capacity now (a test hook): it goes Interrupted,
        then resumes from its checkpoints. The request reaches only the run still going."""
        job = load(self.ctx, KIND, name)
        if not job.body.get("EnableManagedSpotTraining") or job.status != Status.IN_PROGRESS:
            raise ValidationException(
                f"Training job {name} is not a running managed spot job.")
        self.executor.interrupt(job.name)

    def recover(self, *, adopting: bool = False) -> None:
        """After a restart: run again every job that was still queued or running, and end
        the ones being stopped; each only if its run lease is free (no live server runs it).
        ``adopting`` (a live server's periodic look): only the jobs of a server that died,
        whose leases expired."""
        take = partial(self._runs.take_over, orphans=True) if adopting else self._runs.claim
        for row in self.ctx.resources.scan(KIND.name, statuses=ACTIVE):
            if not take(_run_key(row.name)):
                continue  # another server runs it
            if row.status == Status.STOPPING:
                self.finished(row.name, Outcome("Stopped"))
                continue
            try:
                job = self._edit(row.name, [Status.IN_PROGRESS],
                                 partial(_restart, now=self.ctx.now()))
            except StatusConflict:
                self._runs.release(_run_key(row.name))  # stopped or ended meanwhile
                continue
            self.executor.submit(self._spec(job))

    # -- what the executor reports (TrainingEvents) ----------------------------------------
    def advance(self, name: str, status: str, message: str | None = None) -> None:
        now = self.ctx.now()
        target = Secondary(status)

        def change(body: Body) -> None:
            _moved(body, target, now, message)
            if target in (Secondary.DOWNLOADING, Secondary.TRAINING):
                body.setdefault("TrainingStartTime", now)

        try:
            self._edit(name, [Status.IN_PROGRESS], change)
        except StatusConflict:
            pass  # being stopped (a stop wins over progress), ended, or wiped by a reset

    def logs(self, name: str, stream: str, events: Sequence[tuple[int, str]]) -> None:
        self.ctx.logs.append(LOG_GROUP, stream, events)

    def metrics(self, name: str, values: Sequence[tuple[str, float, float]]) -> None:
        self.ctx.metrics.put_training_metrics(name, values)

        def change(body: Body) -> None:
            final = {m["MetricName"]: m for m in body.get("FinalMetricDataList", [])}
            for metric, value, when in values:
                final[metric] = {"MetricName": metric, "Value": value, "Timestamp": when}
            body["FinalMetricDataList"] = list(final.values())

        try:
            job = self._edit(name, ACTIVE, change)
        except StatusConflict:
            return  # ended or wiped meanwhile
        if definition.runner_state(job.internal).get("prompt_metrics"):
            self.watched_metrics.publish(WatchedMetricsReported(name))

    def finished(self, name: str, outcome: Outcome) -> None:
        """Record how the job ended: InProgress -> its outcome, or Stopping -> Stopped (or
        Failed). A job already ended, or wiped by a reset, is left as it is; so is a job
        whose run lease another server holds now (it took the job over: its end is its)."""
        key = _run_key(name)
        if not self._runs.may_record_end(key, f"training job {name}", outcome.status):
            return
        recorded = self._record_end(name, outcome)
        self._runs.release(key)
        if recorded:
            self.job_ended.publish(TrainingJobEnded(name))  # listeners read the row

    def stop_requested(self, name: str) -> bool:
        job = self.ctx.resources.get(KIND.name, name)
        return job is not None and job.status == Status.STOPPING

    # -- fencing ---------------------------------------------------------------------------
    def _lost(self, key: str) -> None:
        """Another server took over a job this one runs (it was cut from the database past
        the lease's time to live): its processes here are killed, its end never recorded."""
        self.executor.abandon(_name_of(key))

    # -- helpers ---------------------------------------------------------------------------
    def _record_end(self, name: str, outcome: Outcome) -> bool:
        now = self.ctx.now()
        while True:
            job = self.ctx.resources.get(KIND.name, name)
            if job is None or job.status not in ACTIVE:
                return False
            target = _final(Secondary(outcome.status), stopping=job.status == Status.STOPPING)
            try:
                self.ctx.resources.transition(
                    KIND.name, name, [job.status], target.primary,
                    partial(self._conclude, target=target, outcome=outcome, now=now), now=now)
                return True
            except StatusConflict:
                continue  # stopped meanwhile: decide again on the fresh row

    def _edit(self, name: str, statuses: Sequence[Status],
              change: Callable[[Body], None]) -> Resource:
        now = self.ctx.now()

        def stamped(body: Body) -> None:
            change(body)
            body["LastModifiedTime"] = now

        return self.ctx.resources.edit(KIND.name, name, statuses, stamped, now=now)

    def _conclude(self, body: Body, target: Secondary, outcome: Outcome, now: float) -> None:
        message = outcome.failure_reason if target == Secondary.FAILED else None
        _moved(body, target, now, message)
        if outcome.failure_reason:
            body["FailureReason"] = outcome.failure_reason
        start = body.get("TrainingStartTime") or outcome.training_start or now
        body.setdefault("TrainingStartTime", start)
        body["TrainingEndTime"] = now
        seconds = max(1, round(now - start))  # the SDK divides by it: never 0
        body["TrainingTimeInSeconds"] = seconds
        body["BillableTimeInSeconds"] = seconds
        if body.get("EnableManagedSpotTraining"):  # spot capacity costs less, as on AWS
            discount = self.ctx.settings.spot_discount
            body["BillableTimeInSeconds"] = max(1, round(seconds * (1 - discount)))

    def _spec(self, job: Resource) -> TrainingSpec:
        return definition.training_spec(job.body, job.internal,
                                        region=self.ctx.settings.region)


def _run_key(name: str) -> str:
    return f"{KIND.name}/{name}/run"


def _name_of(run_key: str) -> str:
    return run_key.removeprefix(f"{KIND.name}/").removesuffix("/run")


def _final(reported: Secondary, *, stopping: bool) -> Secondary:
    """How a job that ended as ``reported`` is recorded: a stopped job is Stopped, unless
    it failed."""
    if stopping and reported != Secondary.FAILED:
        return Secondary.STOPPED
    return reported


def _moved(body: Body, target: Secondary, now: float, message: str | None = None) -> None:
    _transition_into(body, target, now, message or MESSAGES.get(target, str(target)))
    body["LastModifiedTime"] = now


def _transition_into(body: Body, target: Secondary, now: float, message: str) -> None:
    transitions = body.setdefault("SecondaryStatusTransitions", [])
    if transitions:
        current = Secondary(body["SecondaryStatus"])
        if current != target:
            check_transition(current, target)
        transitions[-1]["EndTime"] = now
    transitions.append({"Status": str(target), "StartTime": now, "StatusMessage": message})
    body["SecondaryStatus"] = str(target)
    body["TrainingJobStatus"] = str(target.primary)


def _restart(body: Body, now: float) -> None:
    if body["SecondaryStatus"] != Secondary.STARTING:
        _transition_into(body, Secondary.RESTARTING, now,
                         "The opensage server restarted; the job is being run again")
