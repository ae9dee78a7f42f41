"""The tuning service: a tuning job is a row (its API document, plus its internal state in
``internal["OpensageTuning"]``) and its trials (``store.trials``, one row each); a reconcile
loop drives every unfinished tuning job towards its end.

One step of the loop, for one tuning job (``_step``), taken only by the server that holds the
job's reconcile lease (several servers may share one database):

1. record what each running child job has become (status, objective from its
   ``FinalMetricDataList``);
2. if the job is stopping, stop the running children; once none runs it is ``Stopped``;
3. if a completion criterion (``TuningJobCompletionCriteria``, see ``completion``) is met or
   ``ResourceLimits.MaxRuntimeInSeconds`` has passed, the search ends: the running children
   are stopped, no new one starts, and once none runs the job ends as in 5;
4. otherwise a child that failed with an internal error is retried once (a new trial with
   its hyperparameters), the job's pruners (``pruners``: early stopping, Hyperband) stop the
   running children they judge weak, and the search is asked for new points while fewer than
   ``MaxParallelTrainingJobs`` run and fewer than ``MaxNumberOfTrainingJobs`` exist (a
   retried trial counts once; with ``TrainingJobDefinitions`` the definitions take turns,
   each with its own search): each trial is stored *before* its child job is created, so a
   restart between the two creates the child then, and never a second one;
5. once every trial has ended and no more may start, the job is ``Completed`` (``Failed``
   when no child produced an objective).

Each change of a trial writes that trial's row; the job's status moves by compare-and-set
(``ResourceStore.transition``), so a ``StopHyperParameterTuningJob`` racing a step is never
lost. The loop wakes when a training job ends (``child_changed`` listens to the training
service), when a tuning job is created or stopped, and at least every ``interval`` seconds.
After a restart it simply carries on: the trials are in the store and the sampler is rebuilt
from them on every ask.
"""

from __future__ import annotations

import builtins
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Protocol

from opensage.errors import AwsError, ResourceInUse
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of
from opensage.services.training.events import TrainingJobEnded, WatchedMetricsReported
from opensage.services.tuning import api, completion, plans
from opensage.services.tuning.pruners import (
    Hyperband,
    IntermediateValues,
    MedianStopping,
    Pruner,
    Verdict,
    prunable,
)
from opensage.services.tuning.states import (
    ACTIVE,
    ObjectiveStatus,
    TrialStatus,
    TuningStatus,
    check_transition,
)
from opensage.services.tuning.strategies import (
    Search,
    Trial,
    bracket_of,
    bracket_weights,
    hyperband_brackets,
)
from opensage.services.tuning.summaries import (
    counted,
    definition_of,
    ended,
    first_failure,
    give_up,
    objective_of,
    retryable,
    running,
    scored,
    summarise,
    trial_document,
)
from opensage.store.leases import Leases, server_owner
from opensage.store.resources import Resource, StatusConflict
from opensage.store.trials import TrialStore, TuningTrial

log = logging.getLogger(__name__)
KIND = kinds.TUNING_JOB
# While a child a pruner may stop runs, the loop steps every PRUNING_POLL seconds instead of
# every ``interval``.
PRUNING_POLL = 0.2
# A server holds a tuning job's reconcile lease while it steps the job, renewed as it steps:
# another server takes the job over once the lease lapses (its holder died).
RECONCILE_LEASE_TTL = 60.0


class ChildJobs(Protocol):
    """What the tuning service asks of training: create and stop its child jobs."""

    def create(self, params: dict[str, Any]) -> str: ...

    def stop(self, name: str) -> None: ...


class TuningService:
    def __init__(self, ctx: Context, training: ChildJobs, *, interval: float = 1.0,
                 owner: str | None = None) -> None:
        self.ctx = ctx
        self.training = training  # creates and stops the children
        self.interval = interval
        self.trials = TrialStore(ctx.db)
        self.lock = threading.RLock()  # one step at a time; a reset holds it (``paused``)
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._leases = _ReconcileLeases(Leases(ctx.db),
                                        owner or server_owner(ctx.settings.data_dir),
                                        ctx.settings.lease_ttl_seconds)
        self._values = IntermediateValues(ctx.metrics, ctx.now)
        self._median = MedianStopping()
        self._hyperband = Hyperband()
        self._watching = False  # a child that a pruner may stop is running

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the reconcile loop (it also resumes the searches a previous run left)."""
        self._thread = threading.Thread(target=self._loop, name="opensage-tuning",
                                        daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def wake(self) -> None:
        self._wake.set()

    def child_changed(self, event: TrainingJobEnded | WatchedMetricsReported) -> None:
        """A training job ended, or reported metrics its tuner watches: step now (the step
        reads the rows) rather than at the next tick."""
        self.wake()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No step runs inside (used while the state is wiped, leases included)."""
        with self.lock:
            yield
            self._leases.forget()

    # -- API (the operations are in ``api``; the loop wakes for what they change) --------
    def create(self, params: dict[str, Any]) -> str:
        arn = api.create(self.ctx, params)
        self.wake()
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        return api.describe(self.ctx, self.trials, name)

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        return api.list_jobs(self.ctx, params)

    def stop(self, name: str) -> None:
        api.stop(self.ctx, name)
        self.wake()

    def training_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListTrainingJobsForHyperParameterTuningJob: the trials, sorted and paged."""
        return api.training_jobs(self.ctx, self.trials, params)

    # -- the reconcile loop ----------------------------------------------------------------
    def _loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(PRUNING_POLL if self._watching else self.interval)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                self.reconcile()
            except Exception:  # never let the loop die
                log.exception("tuning reconcile failed")

    def reconcile(self) -> None:
        """Step every unfinished tuning job whose reconcile lease this server holds or
        takes (another live server's jobs are its own to step)."""
        self._watching = False
        for row in self.ctx.resources.scan(KIND.name, statuses=ACTIVE):
            try:
                if not self._leases.hold(row.name):
                    continue
                with self.lock:
                    self._step(row.name)
            except Exception:
                log.exception("tuning job %s: reconcile step failed", row.name)

    def _step(self, name: str) -> None:
        row = self.ctx.resources.get(KIND.name, name)
        if row is None or row.status not in ACTIVE:
            return
        job = _Job(row, self.trials)
        plan = plans.plan_of(row.body, job.state)
        children = self.ctx.resources.get_many(kinds.TRAINING_JOB.name, [
            t.training_job_name for t in job.trials if t.launched and not ended(t)])
        for trial in job.trials:
            self._observe(job, trial, _plan_of(plan, trial).objective_metric,
                          children.get(trial.training_job_name))
        still = [t for t in job.trials if not ended(t)]
        if job.status == TuningStatus.STOPPING:
            for trial in still:
                self._stop_child(job, trial)
            if not still:
                self._end(job, TuningStatus.STOPPED)
            else:
                self._save(job)
            return
        if not job.state.get("Ending"):
            ending = self._ending(row.body, job, plan)
            if ending:
                job.state["Ending"] = ending
        if job.state.get("Ending"):
            # A completion criterion or MaxRuntimeInSeconds ended the search: no new child,
            # the running ones are stopped, then the job ends as if every trial had run.
            for trial in still:
                self._stop_child(job, trial)
            if not still:
                self._finish(job, plan)
            else:
                self._save(job)
            return
        self._retry(job)
        for pruner in self._pruners(row.body, plan):
            self._prune(job, plan, pruner)
        self._launch_pending(job, plan)
        while (not give_up(job.trials, plan.max_jobs)
               and len(counted(job.trials)) < plan.max_jobs
               and running(job.trials) < plan.max_parallel):
            trial = self._new_trial(job, plan)
            job.add(trial)  # the trial is stored before its job exists
            self._launch(job, plan, trial)
        if not running(job.trials) and (give_up(job.trials, plan.max_jobs)
                                        or len(counted(job.trials)) >= plan.max_jobs):
            self._finish(job, plan)
        else:
            self._save(job)

    def _finish(self, job: _Job, plan: plans.Plan) -> None:
        if any(t.objective_status == ObjectiveStatus.SUCCEEDED for t in job.trials):
            self._end(job, TuningStatus.COMPLETED)
        else:
            self._end(job, TuningStatus.FAILED,
                      f"No training job of the tuning job produced the objective metric "
                      f"{plan.objective_metric}: {first_failure(job.trials)}")

    def _runtime(self, body: dict[str, Any]) -> float:
        """Seconds since the tuning job was created (what MaxRuntimeInSeconds limits)."""
        return self.ctx.now() - float(body["CreationTime"])

    def _ending(self, body: dict[str, Any], job: _Job, plan: plans.Plan) -> str | None:
        """Why the search ends now, before MaxNumberOfTrainingJobs (None: it goes on).

        ``ResourceLimits.MaxRuntimeInSeconds``: AWS's guide ("Track and set completion
        criteria for your tuning job") lists it among the completion criteria, next to
        MaxNumberOfTrainingJobs and TuningJobCompletionCriteria: reaching it ends the tuning
        job ``Completed`` (``Failed`` only when no child produced the objective, as when the
        last child ends), its running children ``Stopped``."""
        config = body["HyperParameterTuningJobConfig"]
        limit = config["ResourceLimits"].get("MaxRuntimeInSeconds")
        if limit and self._runtime(body) >= limit:
            return "MaxRuntimeInSeconds"
        criteria = config.get("TuningJobCompletionCriteria")
        if not criteria:
            return None
        found = completion.reason(scored(job.trials), plan.objective_type, criteria,
                                  plan.max_jobs)
        if found == "ConvergenceDetected":
            job.state["ConvergenceDetectedTime"] = self.ctx.now()
        return found

    # -- trials ----------------------------------------------------------------------------
    def _new_trial(self, job: _Job, plan: plans.Plan) -> TuningTrial:
        earlier = counted(job.trials)
        sub = plan
        if plan.definitions:  # the definitions take turns; each has its own search
            sub = plan.definitions[len(earlier) % len(plan.definitions)]
            earlier = [t for t in earlier if t.definition_name == sub.definition_name]
        search = Search(plan.strategy, sub.ranges, plan.objective_type, sub.seed,
                        plan.max_jobs)
        tuned = search.ask([Trial(t.tuned_hyperparameters, t.objective, not ended(t))
                            for t in earlier], prior=_parent_points(job.state))
        bracket = None
        if plan.strategy == "Hyperband":
            brackets = hyperband_brackets(plan.min_resource, plan.max_resource)
            bracket = bracket_of(len(earlier), bracket_weights(brackets))
        return self._trial(job, tuned, definition_name=sub.definition_name, bracket=bracket)

    def _trial(self, job: _Job, tuned: dict[str, str], **extra: Any) -> TuningTrial:
        number = len(job.trials) + 1
        child = f"{job.name}-{number:03d}-{uuid.uuid4().hex[:8]}"
        return TuningTrial(job.name, number, child, arn_of(self.ctx, kinds.TRAINING_JOB, child),
                           self.ctx.now(), tuned, **extra)

    def _retry(self, job: _Job) -> None:
        """A child that failed for an internal reason (``RetryableError``) is run once more
        with the same hyperparameters, as a new trial; a retry is not retried again. Failures
        of the client's making (``ClientError``, ``AlgorithmError``) are not retried."""
        for trial in list(job.trials):
            if retryable(trial) and not trial.retried and not trial.retry_of:
                retry = self._trial(job, dict(trial.tuned_hyperparameters),
                                    definition_name=trial.definition_name,
                                    bracket=trial.bracket, retry_of=trial.training_job_name)
                log.info("tuning child %s failed with an internal error: retried as %s",
                         trial.training_job_name, retry.training_job_name)
                job.add(retry, replace(trial, retried=True))

    def _launch_pending(self, job: _Job, plan: plans.Plan) -> None:
        """Trials stored but whose job was never created (a restart in between)."""
        for trial in job.trials:
            if not trial.launched and not ended(trial):
                self._launch(job, plan, trial)

    def _launch(self, job: _Job, plan: plans.Plan, trial: TuningTrial) -> None:
        body = job.row.body
        document = trial_document(trial)
        params: dict[str, Any] = {"HyperParameterTuningJobName": job.name,
                  "TrainingJobDefinition": definition_of(body, document)}
        hyperband = job.state.get("Hyperband")
        if hyperband:  # every Hyperband child gets MaxResource; the rungs stop the weak ones
            params = plans.with_resource(params, hyperband["ResourceHyperParameter"],
                                         hyperband["MaxResource"])
        metric = objective_of(body, document)["MetricName"]
        tags, _ = self.ctx.resources.list_tags(body["HyperParameterTuningJobArn"])
        params["Tags"] = tags
        watched = bool(self._pruners(body, plan))  # the runner reports metrics promptly
        request = plans.child_request(params, trial.training_job_name,
                                      dict(trial.tuned_hyperparameters), metric,
                                      tuning_arn=body["HyperParameterTuningJobArn"],
                                      watched=watched)
        changes: dict[str, Any] = {"launched": True}
        try:
            self.training.create(request)
        except ResourceInUse:
            pass  # created before a restart: it is the trial's job
        except AwsError as err:  # refused: the trial fails, the search goes on
            changes.update(self._not_created(err.message))
        except Exception as err:  # a bug: the same, logged with its traceback
            log.exception("tuning child %s not created", trial.training_job_name)
            changes.update(self._not_created(
                f"InternalServerError: {type(err).__name__}: {err}"))
        job.change(trial, **changes)

    def _not_created(self, reason: str) -> dict[str, Any]:
        return {"status": TrialStatus.FAILED, "objective_status": ObjectiveStatus.FAILED,
                "failure_reason": reason, "training_end_time": self.ctx.now()}

    def _observe(self, job: _Job, trial: TuningTrial, metric: str,
                 child: Resource | None) -> None:
        if not trial.launched or ended(trial) or child is None:
            return
        found = child.body
        status = TrialStatus(found["TrainingJobStatus"])
        changes: dict[str, Any] = {"status": status}
        for key, field in (("TrainingStartTime", "training_start_time"),
                           ("TrainingEndTime", "training_end_time"),
                           ("FailureReason", "failure_reason")):
            if found.get(key) is not None:
                changes[field] = found[key]
        if status.is_terminal:
            final = {m["MetricName"]: m["Value"] for m in found.get("FinalMetricDataList") or []}
            value = final.get(metric)
            if value is not None and math.isfinite(value) and status != TrialStatus.FAILED:
                changes.update(objective=float(value),
                               objective_status=ObjectiveStatus.SUCCEEDED)
            else:
                changes["objective_status"] = ObjectiveStatus.FAILED
        job.change(trial, **changes)

    def _stop_child(self, job: _Job, trial: TuningTrial, **changes: Any) -> None:
        """Ask the trial's child to stop (``changes``: what else to store with the trial)."""
        if not trial.launched:
            changes.update(status=TrialStatus.STOPPED, objective_status=ObjectiveStatus.FAILED)
        elif not trial.stop_requested:
            try:
                self.training.stop(trial.training_job_name)
            except AwsError:
                pass  # it ended meanwhile; the next step observes how
            changes["stop_requested"] = True
        job.change(trial, **changes)

    # -- pruning ---------------------------------------------------------------------------
    def _pruners(self, body: dict[str, Any], plan: plans.Plan) -> Sequence[Pruner]:
        """The pruners of a tuning job: early stopping (``Auto``), Hyperband's rungs."""
        found: builtins.list[Pruner] = []
        config = body["HyperParameterTuningJobConfig"]
        if config.get("TrainingJobEarlyStoppingType") == "Auto":
            found.append(self._median)
        if plan.strategy == "Hyperband":
            found.append(self._hyperband)
        return found

    def _prune(self, job: _Job, plan: plans.Plan, pruner: Pruner) -> None:
        if not any(prunable(t) for t in job.trials):
            return
        self._watching = True
        for verdict in pruner.prune(job.trials, plan, self._values):
            trial = job.trial(verdict.number)
            changes = _verdict_changes(verdict)
            if verdict.stop and prunable(trial):
                self._stop_child(job, trial, **changes)
            else:
                job.change(trial, **changes)

    # -- the tuning job's row --------------------------------------------------------------
    def _save(self, job: _Job) -> None:
        """Store the summaries (and the internal state) a step changed; nothing when the
        step changed nothing (most wakes). A compare-and-set on the status: a stop that came
        meanwhile wins, and the next step writes the summaries again."""
        if not job.changed and job.state == plans.state_of(job.row):
            return
        now = self.ctx.now()
        body = dict(job.row.body)
        body["LastModifiedTime"] = now
        summarise(body, job.state, job.trials, now)
        self.ctx.resources.update(KIND.name, job.name, body, now=now,
                                  expected_status=str(job.status),
                                  internal={**job.row.internal, plans.STATE: job.state})

    def _end(self, job: _Job, target: TuningStatus, reason: str | None = None) -> None:
        check_transition(job.status, target)
        now = self.ctx.now()

        def change(body: dict[str, Any]) -> None:
            body.update(HyperParameterTuningJobStatus=str(target),
                        HyperParameterTuningEndTime=now, LastModifiedTime=now)
            if reason:
                body["FailureReason"] = reason
            summarise(body, job.state, job.trials, now)

        def change_internal(internal: dict[str, Any]) -> None:
            internal[plans.STATE] = job.state

        try:
            self.ctx.resources.transition(KIND.name, job.name, [str(job.status)], str(target),
                                          change, now=now, change_internal=change_internal)
        except StatusConflict as conflict:  # stopped meanwhile: the next step ends it so
            log.info("tuning job %s: not %s, it is %s now", job.name, target,
                     conflict.current)
            return
        self._leases.release(job.name)


class _Job:
    """A tuning job during one step: its row as read, its internal state (changed in
    place, stored with the row), and its trials; each trial change is written at once,
    that trial only."""

    def __init__(self, row: Resource, store: TrialStore) -> None:
        self.row = row
        self.name = row.name
        self.status = TuningStatus(str(row.status))
        self.state = plans.state_of(row)
        self.store = store
        self.trials: list[TuningTrial] = store.of(row.name)
        self.changed = False

    def trial(self, number: int) -> TuningTrial:
        return self.trials[number - 1]

    def change(self, trial: TuningTrial, **changes: Any) -> None:
        current = self.trial(trial.number)
        updated = replace(current, **changes)
        if updated != current:
            self.store.write(changed=[updated])
            self.trials[trial.number - 1] = updated
            self.changed = True

    def add(self, trial: TuningTrial, *changed: TuningTrial) -> None:
        """Store a new trial (and the trials it changes, in the same transaction)."""
        self.store.write(added=[trial], changed=changed)
        for other in changed:
            self.trials[other.number - 1] = other
        self.trials.append(trial)
        self.changed = True


class _ReconcileLeases:
    """The reconcile leases of one server: ``hold`` claims a tuning job's lease, or renews it
    once half its time to live has passed (a step every 0.2 s does not write every time)."""

    def __init__(self, leases: Leases, owner: str, ttl: float = RECONCILE_LEASE_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.leases = leases
        self.owner = owner
        self.ttl = ttl
        self.clock = clock
        self._until: dict[str, float] = {}  # lease held until (by our claim's clock)

    def hold(self, name: str) -> bool:
        now = self.clock()
        if self._until.get(name, 0.0) - now > self.ttl / 2:
            return True
        if not self.leases.claim(_lease_key(name), self.owner, self.ttl, now=now):
            self._until.pop(name, None)
            return False
        self._until[name] = now + self.ttl
        return True

    def forget(self) -> None:
        """Believe no lease held (the leases table was wiped): the next ``hold`` claims."""
        self._until.clear()

    def release(self, name: str) -> None:
        self._until.pop(name, None)
        self.leases.release(_lease_key(name), self.owner)


def _lease_key(name: str) -> str:
    return f"{KIND.name}/{name}/reconcile"


def _verdict_changes(verdict: Verdict) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if verdict.rung is not None:
        changes["rung"] = verdict.rung
    if verdict.stop and verdict.early_stopped:
        changes["early_stopped"] = True
    if verdict.stopped_at_rung is not None:
        changes["stopped_at_rung"] = verdict.stopped_at_rung
    return changes


def _plan_of(plan: plans.Plan, trial: TuningTrial) -> plans.Plan:
    return plan.for_definition(trial.definition_name)


def _parent_points(state: dict[str, Any]) -> Sequence[Trial]:
    """A warm start's parent trials that lie in this job's ranges, as the sampler sees them."""
    return [Trial(t["Point"], t["Objective"], running=False)
            for t in state.get("ParentTrials") or []
            if t.get("Point") is not None and t.get("Objective") is not None]




