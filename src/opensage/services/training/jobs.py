"""The training service: validates and records a job before handing it to the executor,
then records everything the executor reports (status, logs, metrics, outcome).

Every change is written to the store before it is acted on; a restart re-submits the jobs
that were still running (see ``recover``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opensage.errors import ResourceInUse, ValidationException
from opensage.runner.executor import Executor
from opensage.runner.local import LOG_GROUP, Outcome, TrainingEvents, TrainingSpec
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, load, summaries
from opensage.services.events import Listeners
from opensage.services.training import definition
from opensage.services.training.events import TrainingJobEnded, WatchedMetricsReported
from opensage.services.training.states import MESSAGES, Secondary, check_transition
from opensage.store.leases import LeaseKeeper, Leases, server_owner
from opensage.store.resources import AlreadyExists

KIND = kinds.TRAINING_JOB
# A server holds a lease on each job it runs, renewed while it lives: a server that starts
# re-runs only the jobs whose lease has lapsed or is its own (it restarted), never a job
# another live server runs.
RUN_LEASE_TTL = 60.0


class TrainingService:
    def __init__(self, ctx: Context,
                 executor: Callable[[TrainingEvents], Executor]) -> None:
        """``executor`` builds the executor that runs the jobs, given where it reports (this
        service): the two refer to each other, so the service builds it."""
        self.ctx = ctx
        # Guards read-modify-write of job rows, and makes a job's status check and the executor
        # request that follows it one step (stop, interrupt, create): re-entered by _mutate.
        self._lock = threading.RLock()
        self.job_ended: Listeners[TrainingJobEnded] = Listeners("TrainingJobEnded")
        self.watched_metrics: Listeners[WatchedMetricsReported] = Listeners(
            "WatchedMetricsReported")
        self.executor = executor(self)
        self._runs = LeaseKeeper(Leases(ctx.db), server_owner(ctx.settings.data_dir),
                                 RUN_LEASE_TTL)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the job slots and run again the jobs a previous run left unfinished."""
        self.executor.start()
        self.recover()

    def cancel_all(self) -> None:
        """Drop every queued and running job (all state is about to be wiped)."""
        self.executor.cancel_all()

    def close(self) -> None:
        """Kill running jobs (their rows stay InProgress and run again on the next start)."""
        self.executor.shutdown()
        self._runs.close()  # this server's leases lapse (its next start takes them back)

    # -- API -------------------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> str:
        name = params["TrainingJobName"]
        arn = arn_of(self.ctx, KIND, name)
        prepared = definition.prepare(self.ctx.algorithms, params)
        now = self.ctx.now()
        body = definition.describe_body(params, arn, prepared, now)
        _transition_into(body, Secondary.STARTING, now, MESSAGES[Secondary.STARTING])
        with self._lock:  # a stop seeing the new row finds its run in the executor
            try:
                self.ctx.resources.create(KIND.name, name, arn, body, now=now,
                                              status=body["TrainingJobStatus"],
                                              tag_list=params.get("Tags") or [])
            except AlreadyExists:
                raise ResourceInUse(
                    "Training job names must be unique within an AWS account and region, and "
                    f"a training job with this name already exists ({arn})") from None
            self._runs.claim(_run_key(name))
            self.executor.submit(self._spec(body))
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        return load(self.ctx, KIND, name).body

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        return summaries(self.ctx, KIND, params, key="TrainingJobSummaries", fields={
            f: f for f in ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime",
                           "LastModifiedTime", "TrainingJobStatus", "SecondaryStatus")})

    def stop(self, name: str) -> None:
        # One step: a job that ends meanwhile is either refused here or recorded as Stopped,
        # and the executor's request reaches only the run that is still going.
        with self._lock:
            job = load(self.ctx, KIND, name)
            if job.status != "InProgress":
                raise ValidationException("The request was rejected because the training job "
                                          f"is in status {job.status}.")
            self._mutate(job.name, lambda body: _transition_into(
                body, Secondary.STOPPING, self.ctx.now(), MESSAGES[Secondary.STOPPING]))
            self.executor.stop(job.name)

    def update(self, params: dict[str, Any]) -> str:
        """UpdateTrainingJob: profiler settings while running, warm-pool keep-alive after."""
        job = load(self.ctx, KIND, params["TrainingJobName"])
        keep_alive = (params.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds")
        if job.status != "InProgress" and set(params) - {"TrainingJobName", "ResourceConfig"}:
            raise ValidationException(
                f"The training job is in status {job.status}: only InProgress jobs can have "
                "their profiler or debug settings updated.")

        def change(body: dict[str, Any]) -> None:
            for key in ("ProfilerConfig", "RemoteDebugConfig"):
                if key in params:
                    body[key] = {**(body.get(key) or {}), **params[key]}
            if "ProfilerRuleConfigurations" in params:
                body["ProfilerRuleConfigurations"] = (body.get("ProfilerRuleConfigurations")
                                                      or []) + params["ProfilerRuleConfigurations"]
            if keep_alive is not None:
                body["ResourceConfig"] = {**body["ResourceConfig"],
                                          "KeepAlivePeriodInSeconds": keep_alive}

        self._mutate(job.name, change, force=True)
        return job.arn

    def interrupt(self, name: str) -> None:
        """Reclaim a managed-spot job's capacity now (a test hook): it goes Interrupted,
        then resumes from its checkpoints."""
        with self._lock:
            job = load(self.ctx, KIND, name)
            if not job.body.get("EnableManagedSpotTraining") or job.status != "InProgress":
                raise ValidationException(
                    f"Training job {name} is not a running managed spot job.")
            self.executor.interrupt(job.name)

    def recover(self) -> None:
        """After a restart: run again every job that was still queued or running, and end
        the ones being stopped; each only if its run lease is free (no live server runs it)."""
        for row in self.ctx.resources.scan(KIND.name, statuses=("InProgress", "Stopping")):
            if not self._runs.claim(_run_key(row.name)):
                continue  # another server runs it
            if row.status == "Stopping":
                self.finished(row.name, Outcome("Stopped"))
                continue
            self._mutate(row.name, lambda body: _restart(body, self.ctx.now()))
            self.executor.submit(self._spec(self.describe(row.name)))

    # -- what the executor reports (TrainingEvents) ----------------------------------------
    def advance(self, name: str, status: str, message: str | None = None) -> None:
        now = self.ctx.now()

        def change(body: dict[str, Any]) -> None:
            target = Secondary(status)
            if body["SecondaryStatus"] == Secondary.STOPPING:
                return  # a stop request wins over progress reports
            _transition_into(body, target, now, message or MESSAGES.get(target, status))
            if target in (Secondary.DOWNLOADING, Secondary.TRAINING):
                body.setdefault("TrainingStartTime", now)

        self._mutate(name, change)

    def logs(self, name: str, stream: str, events: list[tuple[int, str]]) -> None:
        self.ctx.logs.append(LOG_GROUP, stream, events)

    def metrics(self, name: str, values: list[tuple[str, float, float]]) -> None:
        self.ctx.metrics.put_training_metrics(name, values)
        watched = False

        def change(body: dict[str, Any]) -> None:
            nonlocal watched
            final = {m["MetricName"]: m for m in body.get("FinalMetricDataList", [])}
            for metric, value, when in values:
                final[metric] = {"MetricName": metric, "Value": value, "Timestamp": when}
            body["FinalMetricDataList"] = list(final.values())
            watched = bool((body.get("OpensageRunner") or {}).get("prompt_metrics"))

        self._mutate(name, change)
        if watched:
            self.watched_metrics.publish(WatchedMetricsReported(name))

    def finished(self, name: str, outcome: Outcome) -> None:
        now = self.ctx.now()

        def change(body: dict[str, Any]) -> None:
            target = Secondary(outcome.status)
            if body["SecondaryStatus"] == Secondary.STOPPING and target != Secondary.FAILED:
                target = Secondary.STOPPED
            message = outcome.failure_reason if target == Secondary.FAILED else None
            _transition_into(body, target, now, message or MESSAGES.get(target, str(target)))
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

        self._mutate(name, change, force=True)
        self._runs.release(_run_key(name))
        self.job_ended.publish(TrainingJobEnded(name))  # listeners read the row

    # -- helpers ---------------------------------------------------------------------------
    def _mutate(self, name: str, change: Callable[[dict[str, Any]], None], *,
                force: bool = False) -> None:
        with self._lock:
            job = self.ctx.resources.get(KIND.name, name)
            if job is None:
                return  # wiped (reset) while running
            if Secondary(job.body["SecondaryStatus"]).is_terminal and not force:
                return
            body = dict(job.body)
            change(body)
            now = self.ctx.now()
            body["LastModifiedTime"] = now
            self.ctx.resources.update(KIND.name, name, body, now=now,
                                      status=body["TrainingJobStatus"])

    def _spec(self, body: dict[str, Any]) -> TrainingSpec:
        return definition.training_spec(body, region=self.ctx.settings.region)


def _run_key(name: str) -> str:
    return f"{KIND.name}/{name}/run"


def _transition_into(body: dict[str, Any], target: Secondary, now: float, message: str) -> None:
    transitions = body.setdefault("SecondaryStatusTransitions", [])
    if transitions:
        current = Secondary(body["SecondaryStatus"])
        if current != target:
            check_transition(current, target)
        transitions[-1]["EndTime"] = now
    transitions.append({"Status": str(target), "StartTime": now, "StatusMessage": message})
    body["SecondaryStatus"] = str(target)
    body["TrainingJobStatus"] = target.primary


def _restart(body: dict[str, Any], now: float) -> None:
    if body["SecondaryStatus"] != Secondary.STARTING:
        _transition_into(body, Secondary.RESTARTING, now,
                         "The opensage server restarted; the job is being run again")
