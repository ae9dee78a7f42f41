"""Processing jobs: CreateProcessingJob, DescribeProcessingJob, ListProcessingJobs,
StopProcessingJob.

The job is validated (``definition``) and stored ``InProgress``, then handed to the local
executor (``runner.local``, its own job slots and directory), which reports back here as it
does to the training service: log lines (``/aws/sagemaker/ProcessingJobs``, stream
``<job>/algo-N-<epoch>``), whether the row asks it to stop, and how the job ended.

Every status change is one compare-and-set through ``ResourceStore.transition``. A server
runs a job only while it holds the job's run lease (``store.leases``): a restarted server
re-runs its jobs left ``InProgress`` from the start (outputs are uploaded whole at the end),
ends those left ``Stopping`` as ``Stopped``, and never runs a job another live server runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from opensage.errors import ValidationException
from opensage.runner.executor import Executor
from opensage.runner.local import Outcome, TrainingEvents
from opensage.runner.processing import LOG_GROUP
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, create, load, summaries
from opensage.services.events import JobCreated, JobEnded, Listeners
from opensage.services.processing import definition
from opensage.services.processing.states import ACTIVE, ProcessingJobStatus, outcome, sources
from opensage.store.leases import LeaseKeeper, Leases, server_owner
from opensage.store.resources import Resource, StatusConflict

log = logging.getLogger(__name__)

__all__ = ["ProcessingService"]

KIND = kinds.PROCESSING_JOB
Status = ProcessingJobStatus
Body = dict[str, Any]
_RESULTS = {"Completed": Status.COMPLETED, "Stopped": Status.STOPPED}


class ProcessingService:
    def __init__(self, ctx: Context, executor: Callable[[TrainingEvents], Executor]) -> None:
        """``executor`` builds the executor that runs the jobs, given where it reports."""
        self.ctx = ctx
        self.executor = executor(self)
        self.job_created: Listeners[JobCreated] = Listeners("ProcessingJobCreated")
        self.job_ended: Listeners[JobEnded] = Listeners("ProcessingJobEnded")
        self._runs = LeaseKeeper(Leases(ctx.db), server_owner(ctx.settings.data_dir),
                                 ctx.settings.lease_ttl_seconds, on_lost=self._lost)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.executor.start()
        self.recover()

    def recover(self, *, adopting: bool = False) -> None:
        """Run again every job a previous server left ``InProgress``; ``Stopping`` ones end
        ``Stopped``. Each only if its run lease is free or this server's; ``adopting``: only
        the jobs of a server that died (their leases expired)."""
        take = partial(self._runs.take_over, orphans=True) if adopting else self._runs.claim
        for row in self.ctx.resources.scan(KIND.name, statuses=ACTIVE):
            if not take(_run_key(row.name)):
                continue  # another server runs it
            if row.status == Status.STOPPING:
                self.finished(row.name, Outcome("Stopped"))
                continue
            self.logs(row.name, f"{row.name}/system", [(
                int(self.ctx.now() * 1000),
                "The opensage server restarted: the processing job runs again from the start.")])
            self.executor.submit(definition.spec(row.body, region=self.ctx.settings.region))

    def cancel_all(self) -> None:
        self.executor.cancel_all()
        self._runs.forget_all()  # the leases are about to be wiped

    def close(self) -> None:
        """Kill running jobs (their rows stay InProgress and run again on the next start)."""
        self.executor.shutdown()
        self._runs.close()

    # -- API -------------------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> str:
        name = params["ProcessingJobName"]
        definition.validate(params, self.ctx.containers)
        arn = arn_of(self.ctx, KIND, name)
        body = definition.describe_body(params, arn, self.ctx.now())
        create(self.ctx, KIND, name, body, params.get("Tags") or [], noun="processing job",
               status=Status.IN_PROGRESS)
        self.job_created.publish(JobCreated(name))  # in the request: tracked at once
        self._runs.claim(_run_key(name))
        self.executor.submit(definition.spec(body, region=self.ctx.settings.region))
        return arn

    def describe(self, name: str) -> Body:
        return load(self.ctx, KIND, name).body

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        return summaries(self.ctx, KIND, params, key="ProcessingJobSummaries", fields={
            f: f for f in ("ProcessingJobName", "ProcessingJobArn", "CreationTime",
                           "ProcessingEndTime", "LastModifiedTime", "ProcessingJobStatus",
                           "FailureReason", "ExitMessage")})

    def stop(self, name: str) -> None:
        """InProgress -> Stopping as one compare-and-set; the run (here, or on the server
        that runs it, which polls the row) ends with SIGTERM, then SIGKILL."""
        job = load(self.ctx, KIND, name)
        now = self.ctx.now()
        try:
            self.ctx.resources.transition(
                KIND.name, job.name, sources(Status.STOPPING, Status.IN_PROGRESS),
                Status.STOPPING, lambda body: body.update(
                    ProcessingJobStatus=Status.STOPPING, LastModifiedTime=now), now=now)
        except StatusConflict as conflict:
            raise ValidationException(
                f"The processing job {job.name} is in status {conflict.current}: only an "
                "InProgress job can be stopped.") from None
        self.executor.stop(job.name)

    # -- what the executor reports (TrainingEvents) ----------------------------------------
    def advance(self, name: str, status: str, message: str | None = None) -> None:
        """The hosts start (``Processing``): ``ProcessingStartTime``. Processing jobs have no
        secondary status."""
        now = self.ctx.now()
        try:
            self.ctx.resources.edit(KIND.name, name, ACTIVE, lambda body: body.update(
                ProcessingStartTime=now, LastModifiedTime=now), now=now)
        except StatusConflict:
            pass  # ended or wiped meanwhile

    def logs(self, name: str, stream: str, events: Sequence[tuple[int, str]]) -> None:
        self.ctx.logs.append(LOG_GROUP, stream, events)

    def metrics(self, name: str, values: Sequence[tuple[str, float, float]]) -> None:
        """Processing jobs define no metrics."""

    def stop_requested(self, name: str) -> bool:
        job = self.ctx.resources.get(KIND.name, name)
        return job is not None and job.status == Status.STOPPING

    def finished(self, name: str, result: Outcome) -> None:
        """Record how the job ended: InProgress -> its outcome, or Stopping -> Stopped (or
        Failed). A job already ended, or wiped by a reset, is left as it is; so is a job
        whose run lease another server holds now (it took the job over: its end is its)."""
        key = _run_key(name)
        if not self._runs.may_record_end(key, f"processing job {name}", result.status):
            return
        try:
            recorded = self._record_end(name, result)
        finally:
            self._runs.release(key)
        if recorded:
            self.job_ended.publish(JobEnded(name))  # listeners read the row

    # -- fencing ---------------------------------------------------------------------------
    def _lost(self, key: str) -> None:
        """Another server took over a job this one runs: killed here, its end not recorded."""
        self.executor.abandon(_name_of(key))

    # -- helpers ---------------------------------------------------------------------------
    def _record_end(self, name: str, result: Outcome) -> bool:
        """True when this call ended the job."""
        reported = _RESULTS.get(result.status, Status.FAILED)
        while True:
            job: Resource | None = self.ctx.resources.get(KIND.name, name)
            if job is None or job.status not in ACTIVE:
                return False
            current = Status(job.status)
            target = outcome(current, reported)
            now = self.ctx.now()

            def change(body: Body, target: Status = target, now: float = now) -> None:
                body.update(ProcessingJobStatus=target, ProcessingEndTime=now,
                            LastModifiedTime=now)
                body.setdefault("ProcessingStartTime", result.training_start or now)
                if target is Status.FAILED:
                    body["FailureReason"] = (result.failure_reason or "InternalServerError")[
                        :1024]
                if result.exit_message:
                    body["ExitMessage"] = result.exit_message

            try:
                self.ctx.resources.transition(KIND.name, name, sources(target, current),
                                              target, change, now=now)
                return True
            except StatusConflict:
                continue  # stopped meanwhile: decide again on the fresh row


def _run_key(name: str) -> str:
    return f"{KIND.name}/{name}/run"


def _name_of(run_key: str) -> str:
    return run_key.removeprefix(f"{KIND.name}/").removesuffix("/run")
