"""The tuning service: a tuning job is a row whose body holds its trials; a reconcile loop
drives every unfinished tuning job towards its end.

One step of the loop, for one tuning job (``_step``), under the service's lock:

1. record what each running child job has become (status, objective from its
   ``FinalMetricDataList``);
2. if the job is stopping, stop the running children; once none runs it is ``Stopped``;
3. if a completion criterion (``TuningJobCompletionCriteria``, see ``completion``) is met or
   ``ResourceLimits.MaxRuntimeInSeconds`` has passed, the search ends: the running children
   are stopped, no new one starts, and once none runs the job ends as in 5;
4. otherwise a child that failed with an internal error is retried once (a new trial with
   its hyperparameters), and the search is asked for new points while fewer than
   ``MaxParallelTrainingJobs`` run and fewer than ``MaxNumberOfTrainingJobs`` exist (a
   retried trial counts once; with ``TrainingJobDefinitions`` the definitions take turns,
   each with its own search): each trial is written to the row *before* its child job is
   created, so a restart between the two creates the child then, and never a second one;
5. once every trial has ended and no more may start, the job is ``Completed`` (``Failed``
   when no child produced an objective).

The loop wakes when a training job ends (``child_changed`` listens to the training service),
when a tuning job is created or stopped, and at least every ``interval`` seconds. After a
restart it simply carries on: the trials are in the store and the sampler is rebuilt from
them on every ask.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opensage.errors import AwsError, ResourceInUse, ValidationException
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, load
from opensage.services.listing import list_query
from opensage.services.metrics import TRAINING_NAMESPACE, dimension_key
from opensage.services.training.events import TrainingJobEnded, WatchedMetricsReported
from opensage.services.training.jobs import TrainingService
from opensage.services.tuning import completion, plans, validation
from opensage.services.tuning.strategies import (
    Peer,
    Search,
    Trial,
    bracket_of,
    bracket_weights,
    hyperband_brackets,
    median_rule,
    running_averages,
    walk_rungs,
)
from opensage.store import pagination
from opensage.store.resources import AlreadyExists, Resource

log = logging.getLogger(__name__)
KIND = kinds.TUNING_JOB
ACTIVE = ("InProgress", "Stopping")
_CHILD_TERMINAL = ("Completed", "Failed", "Stopped")
# A search that has produced no objective after this many failed children gives up.
MAX_FAILURES_WITHOUT_SUCCESS = 3
# Early stopping (Auto): the median rule needs this many ended trials that reached a step
# before it stops anything at that step; while a child it may stop runs, the loop steps
# every EARLY_STOPPING_POLL seconds instead of every ``interval``.
EARLY_STOPPING_MIN_TRIALS = 2
EARLY_STOPPING_POLL = 0.2


class TuningService:
    def __init__(self, ctx: Context, training: TrainingService, *,
                 interval: float = 1.0) -> None:
        self.ctx = ctx
        self.training = training  # creates and stops the children
        self.interval = interval
        self.lock = threading.RLock()  # one step at a time; a reset holds it (``paused``)
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        # Running averages of the objective of ended children, by job name: derived from the
        # metrics store (never state of its own), kept because an ended series cannot change.
        self._curves: dict[str, list[float]] = {}
        self._watching = False  # a child that early stopping may stop is running
        # Hyperband: the objective series of ended children, by job name (an ended series
        # cannot change; derived from the metrics store like ``_curves``).
        self._ended: dict[str, list[float]] = {}

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

    # -- API -------------------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> str:
        name = params["HyperParameterTuningJobName"]
        arn = arn_of(self.ctx, KIND, name)
        if self.ctx.resources.get(KIND.name, name) is not None:
            raise ResourceInUse(f"Hyperparameter tuning job names must be unique within an AWS "
                                f"account and region; {arn} already exists.")
        plan = validation.check(self.ctx, params)
        now = self.ctx.now()
        body: dict[str, Any] = {k: v for k, v in params.items() if k != "Tags"}
        config = body["HyperParameterTuningJobConfig"]
        config.setdefault("Strategy", "Bayesian")
        config.setdefault("TrainingJobEarlyStoppingType", "Off")
        if plan.definitions:
            body["TrainingJobDefinitions"] = [
                _described(job, sub) for job, sub in zip(body["TrainingJobDefinitions"],
                                                         plan.definitions, strict=True)]
        else:
            body["TrainingJobDefinition"] = _described(body["TrainingJobDefinition"], plan)
        body.update({"HyperParameterTuningJobArn": arn, "HyperParameterTuningJobStatus":
                     "InProgress", "CreationTime": now, "LastModifiedTime": now,
                     "OpensageTuning": {"MaxJobs": plan.max_jobs, "Seed": plan.seed,
                                        "Trials": [],
                                        # a warm start's parent trials, as they ended
                                        "ParentTrials": list(plan.parent_trials)}})
        if plan.hyperband() is not None:
            body["OpensageTuning"]["Hyperband"] = plan.hyperband()
        _summarise(body, now)
        try:
            self.ctx.resources.create(KIND.name, name, arn, body, now=now,
                                      status="InProgress", tag_list=params.get("Tags") or [])
        except AlreadyExists:
            raise ResourceInUse(f"Hyperparameter tuning job names must be unique within an "
                                f"AWS account and region; {arn} already exists.") from None
        self.wake()
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        body = dict(load(self.ctx, KIND, name).body)
        _summarise(body, self.ctx.now())
        return body

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        rows, token = self.ctx.resources.list(KIND.name, list_query(params))
        summaries = []
        for row in rows:
            body = row.body
            config = body["HyperParameterTuningJobConfig"]
            summaries.append({
                **{k: body.get(k) for k in (
                    "HyperParameterTuningJobName", "HyperParameterTuningJobArn",
                    "HyperParameterTuningJobStatus", "CreationTime", "HyperParameterTuningEndTime",
                    "LastModifiedTime", "TrainingJobStatusCounters", "ObjectiveStatusCounters")},
                "Strategy": config.get("Strategy", "Bayesian"),
                "ResourceLimits": config.get("ResourceLimits")})
        return {"HyperParameterTuningJobSummaries": summaries, "NextToken": token}

    def stop(self, name: str) -> None:
        with self.lock:
            job = load(self.ctx, KIND, name)
            if job.status != "InProgress":
                raise ValidationException(
                    f"The request was rejected because the tuning job is in status "
                    f"{job.status}.")
            body = dict(job.body)
            body["HyperParameterTuningJobStatus"] = "Stopping"
            self._write(job.name, body)
        self.wake()

    def training_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListTrainingJobsForHyperParameterTuningJob: the trials, sorted and paged."""
        job = load(self.ctx, KIND, params["HyperParameterTuningJobName"])
        return training_job_summaries(job.name, job.body, params)

    # -- the reconcile loop ----------------------------------------------------------------
    def _loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(EARLY_STOPPING_POLL if self._watching else self.interval)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                self.reconcile()
            except Exception:  # never let the loop die
                log.exception("tuning reconcile failed")

    def reconcile(self) -> None:
        self._watching = False
        for row in self.ctx.resources.scan(KIND.name, statuses=ACTIVE):
            try:
                with self.lock:
                    self._step(row.name)
            except Exception:
                log.exception("tuning job %s: reconcile step failed", row.name)

    def _step(self, name: str) -> None:
        row = self.ctx.resources.get(KIND.name, name)
        if row is None or row.status not in ACTIVE:
            return
        body = _copy(row.body)
        trials: list[dict[str, Any]] = body["OpensageTuning"]["Trials"]
        plan = plans.plan_of(body)
        children = self.ctx.resources.get_many(kinds.TRAINING_JOB.name, [
            t["TrainingJobName"] for t in trials
            if t["Launched"] and t["TrainingJobStatus"] not in _CHILD_TERMINAL])
        for trial in trials:
            self._observe(trial, _plan_of(plan, trial).objective_metric,
                          children.get(trial["TrainingJobName"]))
        stopping = body["HyperParameterTuningJobStatus"] == "Stopping"
        running = [t for t in trials if t["TrainingJobStatus"] not in _CHILD_TERMINAL]
        if stopping:
            for trial in running:
                self._stop_child(trial)
            if not running:
                self._end(body, "Stopped")
            self._write(name, body)
            return
        stored = body["OpensageTuning"]
        if not stored.get("Ending"):
            stored["Ending"] = self._ending(body, plan, trials)
        if stored.get("Ending"):
            # A completion criterion or MaxRuntimeInSeconds ended the search: no new child,
            # the running ones are stopped, then the job ends as if every trial had run.
            for trial in running:
                self._stop_child(trial)
            if not running:
                self._finish(body, plan, trials)
            self._write(name, body)
            return
        if self._retry(body, trials):
            self._write(name, body)  # the retry is stored before its job exists
        if body["HyperParameterTuningJobConfig"].get("TrainingJobEarlyStoppingType") == "Auto":
            for sub, group in _groups(plan, trials):
                self._early_stop(group, sub)
        if plan.strategy == "Hyperband":
            self._hyperband(trials, plan)
        self._launch_pending(body, trials)
        while (not _give_up(trials, plan.max_jobs) and len(_counted(trials)) < plan.max_jobs
               and _running(trials) < plan.max_parallel):
            trial = self._new_trial(name, body, plan, trials)
            trials.append(trial)
            self._write(name, body)  # the trial is stored before its job exists
            self._launch(body, trial)
        if not _running(trials) and (_give_up(trials, plan.max_jobs)
                                     or len(_counted(trials)) >= plan.max_jobs):
            self._finish(body, plan, trials)
        if body != row.body:  # a step that changed nothing (most wakes) writes nothing
            self._write(name, body)

    def _finish(self, body: dict[str, Any], plan: plans.Plan,
                trials: list[dict[str, Any]]) -> None:
        if any(t["ObjectiveStatus"] == "Succeeded" for t in trials):
            self._end(body, "Completed")
        else:
            self._end(body, "Failed", "No training job of the tuning job produced the "
                                      f"objective metric {plan.objective_metric}: "
                                      f"{_first_failure(trials)}")

    def _runtime(self, body: dict[str, Any]) -> float:
        """Seconds since the tuning job was created (what MaxRuntimeInSeconds limits)."""
        return self.ctx.now() - body["CreationTime"]

    def _ending(self, body: dict[str, Any], plan: plans.Plan,
                trials: list[dict[str, Any]]) -> str | None:
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
        found = completion.reason(_scored(trials), plan.objective_type, criteria,
                                  plan.max_jobs)
        if found == "ConvergenceDetected":
            body["OpensageTuning"]["ConvergenceDetectedTime"] = self.ctx.now()
        return found

    def _new_trial(self, name: str, body: dict[str, Any], plan: plans.Plan,
                   trials: list[dict[str, Any]]) -> dict[str, Any]:
        counted = _counted(trials)
        sub = plan
        if plan.definitions:  # the definitions take turns; each has its own search
            sub = plan.definitions[len(counted) % len(plan.definitions)]
            counted = [t for t in counted
                       if t.get("TrainingJobDefinitionName") == sub.definition_name]
        search = Search(plan.strategy, sub.ranges, plan.objective_type, sub.seed,
                        plan.max_jobs)
        tuned = search.ask([Trial(t["TunedHyperParameters"], t.get("Objective"),
                                  t["TrainingJobStatus"] not in _CHILD_TERMINAL)
                            for t in counted], prior=parent_points(body))
        number = len(trials) + 1
        extra: dict[str, Any] = {}
        if sub.definition_name:
            extra["TrainingJobDefinitionName"] = sub.definition_name
        if plan.strategy == "Hyperband":
            brackets = hyperband_brackets(plan.min_resource, plan.max_resource)
            extra["Bracket"] = bracket_of(len(counted), bracket_weights(brackets))
        return self._trial(name, number, tuned, extra)

    def _trial(self, name: str, number: int, tuned: dict[str, str],
               extra: dict[str, Any]) -> dict[str, Any]:
        child = f"{name}-{number:03d}-{uuid.uuid4().hex[:8]}"
        return {**extra, "TrainingJobName": child, "TrainingJobArn": arn_of(
                    self.ctx, kinds.TRAINING_JOB, child),
                "TunedHyperParameters": tuned, "TrainingJobStatus": "InProgress",
                "ObjectiveStatus": "Pending", "Launched": False,
                "CreationTime": self.ctx.now()}

    def _retry(self, body: dict[str, Any], trials: list[dict[str, Any]]) -> bool:
        """A child that failed for an internal reason (``RetryableError``) is run once more
        with the same hyperparameters, as a new trial; a retry is not retried again. Failures
        of the client's making (``ClientError``, ``AlgorithmError``) are not retried."""
        added = False
        for trial in list(trials):
            if (trial["TrainingJobStatus"] == "Failed" and retryable(trial)
                    and not trial.get("Retried") and not trial.get("RetryOf")):
                trial["Retried"] = True
                extra = {k: trial[k] for k in ("TrainingJobDefinitionName", "Bracket")
                         if k in trial}
                retry = self._trial(body["HyperParameterTuningJobName"], len(trials) + 1,
                                    dict(trial["TunedHyperParameters"]),
                                    {**extra, "RetryOf": trial["TrainingJobName"]})
                log.info("tuning child %s failed with an internal error: retried as %s",
                         trial["TrainingJobName"], retry["TrainingJobName"])
                trials.append(retry)
                added = True
        return added

    def _launch_pending(self, body: dict[str, Any], trials: list[dict[str, Any]]) -> None:
        """Trials stored but whose job was never created (a restart in between)."""
        for trial in trials:
            if not trial["Launched"] and trial["TrainingJobStatus"] not in _CHILD_TERMINAL:
                self._launch(body, trial)

    def _launch(self, body: dict[str, Any], trial: dict[str, Any]) -> None:
        definition = definition_of(body, trial)
        params = {"HyperParameterTuningJobName": body["HyperParameterTuningJobName"],
                  "TrainingJobDefinition": definition}
        hyperband = body["OpensageTuning"].get("Hyperband")
        if hyperband:  # every Hyperband child gets MaxResource; the rungs stop the weak ones
            params = plans.with_resource(params, hyperband["ResourceHyperParameter"],
                                              hyperband["MaxResource"])
        metric = objective_of(body, trial)["MetricName"]
        tags, _ = self.ctx.resources.list_tags(body["HyperParameterTuningJobArn"])
        params["Tags"] = tags
        config = body["HyperParameterTuningJobConfig"]
        watched = bool(hyperband) or config.get("TrainingJobEarlyStoppingType") == "Auto"
        request = plans.child_request(params, trial["TrainingJobName"],
                                           trial["TunedHyperParameters"], metric,
                                           tuning_arn=body["HyperParameterTuningJobArn"],
                                           watched=watched)
        try:
            self.training.create(request)
        except ResourceInUse:
            pass  # created before a restart: it is the trial's job
        except AwsError as err:  # refused: the trial fails, the search goes on
            self._not_created(trial, err.message)
        except Exception as err:  # a bug: the same, logged with its traceback
            log.exception("tuning child %s not created", trial["TrainingJobName"])
            self._not_created(trial, f"InternalServerError: {type(err).__name__}: {err}")
        trial["Launched"] = True

    def _not_created(self, trial: dict[str, Any], reason: str) -> None:
        trial.update(TrainingJobStatus="Failed", ObjectiveStatus="Failed", FailureReason=reason,
                     TrainingEndTime=self.ctx.now())

    def _observe(self, trial: dict[str, Any], metric: str, child: Resource | None) -> None:
        if not trial["Launched"] or trial["TrainingJobStatus"] in _CHILD_TERMINAL:
            return
        if child is None:
            return
        job = child.body
        trial["TrainingJobStatus"] = job["TrainingJobStatus"]
        for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
            if job.get(key) is not None:
                trial[key] = job[key]
        if job["TrainingJobStatus"] not in _CHILD_TERMINAL:
            return
        final = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList") or []}
        value = final.get(metric)
        if value is not None and math.isfinite(value) and job["TrainingJobStatus"] != "Failed":
            trial["Objective"] = float(value)
            trial["ObjectiveStatus"] = "Succeeded"
        else:
            trial["ObjectiveStatus"] = "Failed"

    # -- early stopping ---------------------------------------------------------------------
    def _early_stop(self, trials: list[dict[str, Any]], plan: plans.Plan) -> None:
        """The median rule on the running children's intermediate objective values (the
        metric series their logs produce, one value per round or epoch); a child it stops
        ends ``Stopped`` and its last value is its objective (``_observe``)."""
        candidates = [t for t in trials if t["Launched"] and not t.get("StopRequested")
                      and t["TrainingJobStatus"] not in _CHILD_TERMINAL]
        if not candidates:
            return
        self._watching = True
        done = [t["TrainingJobName"] for t in trials
                if t["TrainingJobStatus"] in ("Completed", "Stopped")
                and t["ObjectiveStatus"] == "Succeeded"]
        if len(done) < EARLY_STOPPING_MIN_TRIALS:
            return
        series = self._series([*(job for job in done if job not in self._curves),
                               *(t["TrainingJobName"] for t in candidates)],
                              plan.objective_metric)
        prior = [self._curve(job, series) for job in done]
        for trial in candidates:
            values = series[trial["TrainingJobName"]]
            if median_rule(values, prior, plan.objective_type, EARLY_STOPPING_MIN_TRIALS):
                log.info("tuning child %s stopped early at step %d", trial["TrainingJobName"],
                         len(values))
                trial["EarlyStopped"] = True
                self._stop_child(trial)

    # -- Hyperband -------------------------------------------------------------------------
    def _hyperband(self, trials: list[dict[str, Any]], plan: plans.Plan) -> None:
        """Asynchronous successive halving: each child runs with MaxResource as its budget;
        when its objective series reaches a rung of its bracket it goes on only while it is
        among the best 1/eta of the values recorded at that step (its bracket's, and at the
        first rung also those of the less aggressive brackets: ``walk_rungs``), else it is
        stopped (``Stopped``, its last value its objective, as early stopping does). A trial
        stopped at rung k counts at the rungs up to k only. With no resource hyperparameter
        (a user's image) a child is also stopped once it reports MaxResource values."""
        candidates = [t for t in trials if t["Launched"] and not t.get("StopRequested")
                      and t["TrainingJobStatus"] not in _CHILD_TERMINAL]
        if not candidates:
            return
        self._watching = True
        brackets = hyperband_brackets(plan.min_resource, plan.max_resource)
        series = self._hyperband_series([t for t in trials if t["Launched"] and "Bracket" in t],
                                        plan.objective_metric)
        for trial in candidates:
            name = trial["TrainingJobName"]
            values = series.get(name, [])
            bracket = trial.get("Bracket", 0)
            others = [t for t in trials if t is not trial and t["TrainingJobName"] in series]
            peers = [Peer(series[t["TrainingJobName"]], t.get("StoppedAtRung")) for t in others
                     if t.get("Bracket", 0) == bracket]
            newcomers = [series[t["TrainingJobName"]] for t in others
                         if t.get("Bracket", 0) > bracket]
            rungs = brackets[bracket]
            passed, stop = walk_rungs(values, rungs, trial.get("Rung", 0), peers,
                                      plan.objective_type, newcomers)
            if stop:
                log.info("tuning child %s stopped by Hyperband at rung %d (step %d of %d)",
                         name, passed, rungs[passed], plan.max_resource)
                trial.update(EarlyStopped=True, StoppedAtRung=passed)
                self._stop_child(trial)
            trial["Rung"] = passed
            if (not trial.get("StopRequested") and plan.resource_key is None
                    and len(values) >= plan.max_resource):
                self._stop_child(trial)  # its budget is spent

    def _hyperband_series(self, trials: list[dict[str, Any]],
                          metric: str) -> dict[str, list[float]]:
        """Each trial's series: an ended one's from the cache, the others' in one query."""
        fresh = self._series([t["TrainingJobName"] for t in trials
                              if t["TrainingJobName"] not in self._ended], metric)
        series: dict[str, list[float]] = {}
        for trial in trials:
            name = trial["TrainingJobName"]
            series[name] = values = self._ended.get(name, fresh.get(name, []))
            if trial["TrainingJobStatus"] in _CHILD_TERMINAL and name not in self._ended:
                self._ended[name] = values
                if len(self._ended) > 10_000:  # bounded: drop the oldest
                    self._ended.pop(next(iter(self._ended)))
        return series

    def _series(self, jobs: list[str], metric: str) -> dict[str, list[float]]:
        """The metric's series of every job in ``jobs``, read in one query."""
        points = self.ctx.metrics.series_of(
            TRAINING_NAMESPACE, metric, [{"TrainingJobName": job} for job in jobs], 0.0,
            self.ctx.now() + 3600)
        return {job: [p.value for p in points[dimension_key({"TrainingJobName": job})]]
                for job in jobs}

    def _curve(self, job: str, series: dict[str, list[float]]) -> list[float]:
        """A finished job's running averages, cached (its series no longer changes)."""
        curve = self._curves.get(job)
        if curve is None:
            curve = self._curves[job] = running_averages(series[job])
            if len(self._curves) > 10_000:  # bounded: drop the oldest
                self._curves.pop(next(iter(self._curves)))
        return curve

    def _stop_child(self, trial: dict[str, Any]) -> None:
        if trial.get("StopRequested") or not trial["Launched"]:
            if not trial["Launched"]:
                trial.update(TrainingJobStatus="Stopped", ObjectiveStatus="Failed")
            return
        try:
            self.training.stop(trial["TrainingJobName"])
        except AwsError:
            pass  # it ended meanwhile; the next step observes how
        trial["StopRequested"] = True

    def _end(self, body: dict[str, Any], status: str, reason: str | None = None) -> None:
        body["HyperParameterTuningJobStatus"] = status
        body["HyperParameterTuningEndTime"] = self.ctx.now()
        if reason:
            body["FailureReason"] = reason

    def _write(self, name: str, body: dict[str, Any]) -> None:
        now = self.ctx.now()
        body["LastModifiedTime"] = now
        _summarise(body, now)
        self.ctx.resources.update(KIND.name, name, body, now=now,
                                  status=body["HyperParameterTuningJobStatus"])

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No step runs inside (used while the state is wiped)."""
        with self.lock:
            yield


# -- derived fields ----------------------------------------------------------------------------
def _running(trials: list[dict[str, Any]]) -> int:
    return sum(t["TrainingJobStatus"] not in _CHILD_TERMINAL for t in trials)


def _give_up(trials: list[dict[str, Any]], max_jobs: int) -> bool:
    """No objective yet and too many failures: the definition itself is broken."""
    if any(t["ObjectiveStatus"] == "Succeeded" for t in trials):
        return False
    failed = sum(t["ObjectiveStatus"] == "Failed" for t in _counted(trials))
    return failed >= min(MAX_FAILURES_WITHOUT_SUCCESS, max_jobs)


def _counted(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trials that count against MaxNumberOfTrainingJobs: a retried trial's point counts
    once (its retry)."""
    return [t for t in trials if not t.get("Retried")]


def retryable(trial: dict[str, Any]) -> bool:
    """AWS: "A failed training job can be retried only if it failed because an internal
    service error occurred" (opensage's ``InternalServerError: ...`` reasons: the runner or
    the server failed, not the job's definition, data or code)."""
    return (trial["TrainingJobStatus"] == "Failed"
            and (trial.get("FailureReason") or "").startswith("InternalServerError"))


def _scored(trials: list[dict[str, Any]]) -> list[float]:
    """The objective values of the scored trials, in the order they ended."""
    scored = [t for t in trials if t["ObjectiveStatus"] == "Succeeded"]
    scored.sort(key=lambda t: (t.get("TrainingEndTime") or 0.0, t["TrainingJobName"]))
    return [t["Objective"] for t in scored]


def _plan_of(plan: plans.Plan, trial: dict[str, Any]) -> plans.Plan:
    return plan.for_definition(trial.get("TrainingJobDefinitionName"))


def _groups(plan: plans.Plan, trials: list[dict[str, Any]]
            ) -> list[tuple[plans.Plan, list[dict[str, Any]]]]:
    """The trials of each definition, with its plan (one group without definitions)."""
    if not plan.definitions:
        return [(plan, trials)]
    return [(sub, [t for t in trials if t.get("TrainingJobDefinitionName") ==
                   sub.definition_name]) for sub in plan.definitions]


def definition_of(body: dict[str, Any], trial: dict[str, Any]) -> dict[str, Any]:
    """The (described) training job definition a trial's child was made from."""
    name = trial.get("TrainingJobDefinitionName")
    for job in body.get("TrainingJobDefinitions") or []:
        if job.get("DefinitionName") == name:
            return job
    return body["TrainingJobDefinition"]


def objective_of(body: dict[str, Any], trial: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trial's objective: its definition's TuningObjective, else the tuning job's."""
    config_objective = body["HyperParameterTuningJobConfig"].get(
        "HyperParameterTuningJobObjective")
    definitions = body.get("TrainingJobDefinitions") or []
    if trial is not None and definitions and trial.get("TrainingJobDefinitionName"):
        found = definition_of(body, trial).get("TuningObjective")
        if found:
            return found
    if config_objective:
        return config_objective
    return definitions[0].get("TuningObjective") or {}


def _described(job: dict[str, Any], plan: plans.Plan) -> dict[str, Any]:
    """A training job definition as AWS describes it: the objective metric among the static
    hyperparameters (the SDK's HyperparameterTuner.attach deletes this key), the metric
    definitions the children use, and ResourceConfig even when the request sent
    HyperParameterTuningResourceConfig (the SDK's attach reads it)."""
    job = dict(job)
    job["StaticHyperParameters"] = {**(job.get("StaticHyperParameters") or {}),
                                    "_tuning_objective_metric": plan.objective_metric}
    job["AlgorithmSpecification"] = {**job["AlgorithmSpecification"],
                                     "MetricDefinitions": list(plan.metric_definitions)}
    job.setdefault("ResourceConfig", plans.child_request(
        {"TrainingJobDefinition": job}, "resources", {}, plan.objective_metric,
        tuning_arn="")["ResourceConfig"])
    return job


def _copy(body: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(body)


def _summarise(body: dict[str, Any], now: float) -> None:
    """Counters, best job and consumed time, derived from the trials (stored with the row
    so that List and Search see them too)."""
    trials = body["OpensageTuning"]["Trials"]
    status = [t["TrainingJobStatus"] for t in trials]
    retryable_errors = sum(retryable(t) for t in trials)
    body["TrainingJobStatusCounters"] = {
        "Completed": status.count("Completed"),
        "InProgress": sum(s not in _CHILD_TERMINAL for s in status),
        "RetryableError": retryable_errors,
        "NonRetryableError": status.count("Failed") - retryable_errors,
        "Stopped": status.count("Stopped")}
    objective = [t["ObjectiveStatus"] for t in trials]
    body["ObjectiveStatusCounters"] = {k: objective.count(k)
                                       for k in ("Succeeded", "Pending", "Failed")}
    best = best_trial(body)
    if best is not None:
        body["BestTrainingJob"] = training_job_summary(body, best)
    if body.get("WarmStartConfig"):
        overall = best_trial(body, body["OpensageTuning"].get("ParentTrials") or [])
        if overall is not None:
            body["OverallBestTrainingJob"] = training_job_summary(body, overall)
    scored = _scored(trials)
    details: dict[str, Any] = {}
    if scored:
        details["NumberOfTrainingJobsObjectiveNotImproving"] = completion.not_improving(
            scored, objective_of(body).get("Type", "Minimize"))
    if body["OpensageTuning"].get("ConvergenceDetectedTime"):
        details["ConvergenceDetectedTime"] = body["OpensageTuning"]["ConvergenceDetectedTime"]
    if details:
        body["TuningJobCompletionDetails"] = details
    end = body.get("HyperParameterTuningEndTime") or now
    body["ConsumedResources"] = {"RuntimeInSeconds": max(0, round(end - body["CreationTime"]))}


def parent_points(body: dict[str, Any]) -> list[Trial]:
    """A warm start's parent trials that lie in this job's ranges, as the sampler sees them."""
    return [Trial(t["Point"], t["Objective"], running=False)
            for t in body["OpensageTuning"].get("ParentTrials") or []
            if t.get("Point") is not None and t.get("Objective") is not None]


def best_trial(body: dict[str, Any],
               more: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The best of the trials (and of ``more``: a warm start's parent trials)."""
    scored = [t for t in [*body["OpensageTuning"]["Trials"], *(more or [])]
              if t["ObjectiveStatus"] == "Succeeded"]
    if not scored:
        return None
    sign = -1 if objective_of(body)["Type"] == "Maximize" else 1
    return min(scored, key=lambda t: sign * t["Objective"])


def training_job_summary(body: dict[str, Any], trial: dict[str, Any]) -> dict[str, Any]:
    """A ``HyperParameterTrainingJobSummary`` (the shape of BestTrainingJob too)."""
    objective = objective_of(body, trial)
    summary = {k: trial.get(k) for k in (
        "TrainingJobDefinitionName", "TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingStartTime",
        "TrainingEndTime", "TrainingJobStatus", "TunedHyperParameters", "FailureReason",
        "ObjectiveStatus")}
    summary["TuningJobName"] = trial.get("TuningJobName") or body["HyperParameterTuningJobName"]
    if trial.get("Objective") is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective["Type"], "MetricName": objective["MetricName"],
            "Value": trial["Objective"]}
    return summary


def _first_failure(trials: list[dict[str, Any]]) -> str:
    for trial in trials:
        if trial.get("FailureReason"):
            return f"{trial['TrainingJobName']}: {trial['FailureReason']}"
    return "no child job reported it"


# -- ListTrainingJobsForHyperParameterTuningJob ------------------------------------------------
_SORT_KEYS = {"Name": "TrainingJobName", "CreationTime": "CreationTime",
              "Status": "TrainingJobStatus", "FinalObjectiveMetricValue": "Objective"}
DEFAULT_MAX_RESULTS = 10


def training_job_summaries(name: str, body: dict[str, Any],
                           params: dict[str, Any]) -> dict[str, Any]:
    """The trials as summaries: status filter, sort (Name by default, Ascending), keyset pages
    whose opaque token carries the last row's sort key and name."""
    sort_by = params.get("SortBy") or "Name"
    descending = (params.get("SortOrder") or "Ascending") == "Descending"
    status = params.get("StatusEquals")
    key = _SORT_KEYS[sort_by]
    trials = [t for t in body["OpensageTuning"]["Trials"]
              if (status is None or t["TrainingJobStatus"] == status) and t.get(key) is not None]
    keyed = sorted(((t[key], t["TrainingJobName"], t) for t in trials),
                   key=lambda k: (k[0], k[1]), reverse=descending)
    page, token = pagination.page(
        keyed, lambda k: (k[0], k[1]), token=params.get("NextToken"),
        query=("TrainingJobsForTuningJob", name.lower(), sort_by, descending, status or ""),
        limit=params.get("MaxResults") or DEFAULT_MAX_RESULTS, descending=descending)
    return {"TrainingJobSummaries": [training_job_summary(body, t) for _, _, t in page],
            "NextToken": token}
