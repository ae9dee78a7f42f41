"""The pipeline engine: a reconcile loop that drives every unfinished execution.

An execution is a row (kind ``pipeline-execution``: the DescribePipelineExecution document,
plus its internal state: the definition it runs, its parameter values and one record per
step). One ``advance`` of an execution, taken only by the server holding the execution's
reconcile lease (several servers may share a database), looks at the stored step records
and the children they point to, and moves each step on:

1. a step whose child (job, tuning job) has ended succeeds (its properties are the child's
   Describe answer), fails, or, when a retry policy matches the failure, waits for its next
   attempt; a Callback step waits for SendPipelineExecutionStep{Success,Failure};
2. if the execution is Stopping, running children are stopped, waiting steps end Stopped,
   and once no step runs the execution is Stopped;
3. otherwise (and while no step has failed) each step whose dependencies have succeeded, and
   whose Condition branch was taken, starts, at most ``MaxParallelExecutionSteps`` at once:
   its arguments are evaluated; a cache hit (``CacheConfig``) reuses an earlier execution's
   step; else its child is created under a name derived from (execution, step, attempt).
   The step's record (with the child's name) is stored *before* the child is created, so a
   server that restarts between the two finds that name and adopts the child if it exists,
   or creates it then: never a second one;
4. once no step runs or can start, the execution ends Succeeded, or Failed if a step failed.

Every change is a compare-and-set of the execution row (``ResourceStore.edit`` /
``transition``), merged into the fresh row, so an API call racing a step (Stop, Retry,
SendPipelineExecutionStepSuccess) is never lost. The loop wakes when a child job ends (the
wiring subscribes it to the job services' events), when an API call changes an execution,
and polls while executions run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opensage.errors import AwsError, NoSuchBucket, NoSuchKey
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.pipelines import definition as definitions
from opensage.services.pipelines.children import (
    FAILED,
    JOBS,
    STOPPED,
    SUCCEEDED,
    Collaborators,
    JobKind,
    create_failure_type,
    job_failure_type,
)
from opensage.services.pipelines.definition import UNSUPPORTED, Definition, Step
from opensage.services.pipelines.expressions import (
    ExpressionError,
    Scope,
    evaluate,
    lookup,
    outcome,
)
from opensage.services.pipelines.states import (
    ACTIVE,
    EXECUTION,
    STEP,
    STEP_ACTIVE,
    ExecutionStatus,
    StepStatus,
)
from opensage.store.leases import Leases, server_owner
from opensage.store.resources import Resource, StatusConflict

log = logging.getLogger(__name__)
EXECUTION_KIND = kinds.PIPELINE_EXECUTION
POLL = 0.1  # seconds between advances while a step waits on a child that reports no event
PIPELINE_EXECUTION_TAG = "sagemaker:pipeline-execution-arn"
TUNING_NAME_LIMIT = 32  # HyperParameterTuningJobName's length limit
STEP_FAILURE = "Step failure: One or multiple steps failed."
_SYMBOLIC = ("PipelineExecutionId", "PipelineExecutionArn", "StartDateTime", "CurrentDateTime")
Record = dict[str, Any]


class Conflict(Exception):
    """A step record was not in the status a change expected (changed meanwhile)."""


class PipelineEngine:
    def __init__(self, ctx: Context, children: Collaborators, *, interval: float = 1.0,
                 owner: str | None = None) -> None:
        self.ctx = ctx
        self.children = children
        self.interval = interval
        self.lock = threading.RLock()  # one advance at a time; a reset holds it
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._leases = Leases(ctx.db)
        self._owner = owner or server_owner(ctx.settings.data_dir)
        self._held: dict[str, float] = {}
        self._wait = interval  # until the next advance when nothing wakes the loop
        self._definitions: dict[str, Definition] = {}  # parsed, by definition text hash

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="opensage-pipelines",
                                        daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def wake(self, *_: Any) -> None:
        self._wake.set()

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self.lock:
            yield
            self._held.clear()

    def _loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(self._wait)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                self.reconcile()
            except Exception:
                log.exception("pipeline reconcile failed")

    def reconcile(self) -> None:
        """Advance every execution this server holds. The loop then sleeps until an event
        wakes it (a child job ended, an API call), the earliest retry is due, or ``POLL``
        while a step waits on a child that reports no event (a tuning job); ``interval``
        at most (a child run by another server sharing the database)."""
        wait = self.interval
        for row in self.ctx.resources.scan(EXECUTION_KIND.name, statuses=ACTIVE):
            try:
                if not self._hold(row.name):
                    continue
                with self.lock:
                    self.advance(row.name)
                fresh = self._reload(row.name)
                if fresh is not None and fresh.status in ACTIVE:
                    wait = min(wait, self._next_look(fresh))
            except Exception:
                log.exception("pipeline execution %s: advance failed", row.name)
        self._wait = wait

    def _next_look(self, row: Resource) -> float:
        """How soon this execution needs an advance that no event announces."""
        wait = self.interval
        for record in row.internal.get("Steps", {}).values():
            if record.get("Status") not in STEP_ACTIVE:
                continue
            if record.get("RetryAt") is not None:
                wait = min(wait, max(0.0, float(record["RetryAt"]) - self.ctx.now()))
            elif record.get("Status") == StepStatus.STARTING or (
                    record.get("Type") not in ("Training", "Processing", "Transform",
                                                "Callback")):
                wait = min(wait, POLL)  # a tuning job (no event) or a step being created
        return wait

    def _hold(self, name: str) -> bool:
        now = time.time()
        ttl = self.ctx.settings.lease_ttl_seconds
        if self._held.get(name, 0.0) - now > ttl / 2:
            return True
        if not self._leases.claim(_lease_key(name), self._owner,
                                  ttl, now=now):
            self._held.pop(name, None)
            return False
        self._held[name] = now + ttl
        return True

    # -- one advance -----------------------------------------------------------------------
    def definition_of(self, row: Resource) -> Definition:
        text = row.internal["Definition"]
        key = hashlib.sha256(text.encode()).hexdigest()
        found = self._definitions.get(key)
        if found is None:
            found = definitions.parse(text)
            if len(self._definitions) > 256:
                self._definitions.clear()
            self._definitions[key] = found
        return found

    def advance(self, execution_id: str) -> None:
        row = self.ctx.resources.get(EXECUTION_KIND.name, execution_id)
        if row is None or row.status not in ACTIVE:
            return
        pipeline = self.definition_of(row)
        records: dict[str, Record] = row.internal.get("Steps", {})
        stopping = row.status == ExecutionStatus.STOPPING
        for name, record in list(records.items()):
            if record.get("Status") in STEP_ACTIVE:
                self._observe(row, pipeline.steps[name], record, stopping)
        row = self._reload(execution_id)
        if row is None or row.status not in ACTIVE:
            return
        records = row.internal.get("Steps", {})
        if row.status == ExecutionStatus.STOPPING:
            if not any(r.get("Status") in STEP_ACTIVE for r in records.values()):
                self._end(row, ExecutionStatus.STOPPED)
            return
        failed = any(r.get("Status") in (StepStatus.FAILED, StepStatus.STOPPED)
                     for r in records.values())
        if not failed:
            limit = self._parallelism(row)
            running = sum(1 for r in records.values() if r.get("Status") in STEP_ACTIVE)
            for step in pipeline.steps.values():
                if running >= limit:
                    break
                if step.name in records or not _ready(step, records):
                    continue
                self._start(row, pipeline, step)
                running += 1
                fresh = self._reload(execution_id)
                if fresh is None or fresh.status not in ACTIVE:
                    return
                row, records = fresh, fresh.internal.get("Steps", {})
        if any(r.get("Status") in STEP_ACTIVE for r in records.values()):
            return
        if any(r.get("Status") in (StepStatus.FAILED, StepStatus.STOPPED)
               for r in records.values()):
            self._end(row, ExecutionStatus.FAILED, STEP_FAILURE)
        elif not any(_ready(s, records) and s.name not in records
                     for s in pipeline.steps.values()):
            self._end(row, ExecutionStatus.SUCCEEDED)

    def _parallelism(self, row: Resource) -> int:
        config = row.body.get("ParallelismConfiguration") or row.internal.get(
            "PipelineParallelism") or {}
        return int(config.get("MaxParallelExecutionSteps") or 50)

    def _reload(self, execution_id: str) -> Resource | None:
        return self.ctx.resources.get(EXECUTION_KIND.name, execution_id)

    # -- starting a step -------------------------------------------------------------------
    def _start(self, row: Resource, pipeline: Definition, step: Step) -> None:
        now = self.ctx.now()
        record: Record = {"Status": StepStatus.STARTING, "StartTime": now, "AttemptCount": 1,
                          "Type": step.type, "Sequence": len(row.internal.get("Steps", {}))}
        try:
            self._write_step(row.name, step.name, record, expect=(None,))
        except Conflict:
            return
        self._attempt(self._reload(row.name) or row, pipeline, step)

    def _attempt(self, row: Resource, pipeline: Definition, step: Step) -> None:
        """Start (or start again) the step's work: evaluate, look up the cache, create."""
        record = row.internal["Steps"][step.name]
        scope = self.scope(row, pipeline)
        try:
            if step.type == "Condition":
                result = outcome(step.arguments.get("Conditions") or [], scope)
                self._succeed(row.name, step.name, {"Outcome": result},
                              {"Condition": {"Outcome": "True" if result else "False"}})
                return
            if step.type == "Fail":
                message = evaluate(step.arguments.get("ErrorMessage", ""), scope)
                message = "" if message is None else str(message)
                self._fail(row.name, step.name, message, {"Fail": {"ErrorMessage": message}})
                return
            if step.type in UNSUPPORTED:
                self._fail(row.name, step.name,
                           f"Step type {step.type} needs {UNSUPPORTED[step.type]}, which "
                           "opensage does not provide.")
                return
            arguments = evaluate(step.arguments, scope)
            if step.type == "Callback":
                self._callback(row, step, arguments)
                return
            if step.type in JOBS and self._cache_hit(row, pipeline, step, scope):
                return
        except ExpressionError as err:
            self._fail(row.name, step.name, str(err))
            return
        child = record.get("Child") or child_name(
            row.name, step.name, record.get("AttemptCount", 1), row.internal.get("Round", 0),
            limit=TUNING_NAME_LIMIT if step.type == "Tuning" else 63)
        if record.get("Child") != child:
            self._write_step(row.name, step.name, {"Child": child}, expect=STEP_ACTIVE)
        if step.type in JOBS:
            self._create_job(row, step, JOBS[step.type], child, arguments)
        elif step.type in ("Model", "CreateModel"):
            self._create_model(row, step, child, arguments)
        elif step.type == "RegisterModel":
            self._register(row, step, child, arguments)

    def _create_job(self, row: Resource, step: Step, kind: JobKind, child: str,
                    arguments: dict[str, Any]) -> None:
        service = getattr(self.children, kind.service)
        params = {**arguments, kind.name_field: child,
                  "Tags": [*(arguments.get("Tags") or []), *execution_tags(row)]}
        if step.type != "Tuning":
            experiment = _experiment_config(row, arguments.get("ExperimentConfig"))
            params.pop("ExperimentConfig", None)
            if experiment:
                params["ExperimentConfig"] = experiment
        try:
            body = service.describe(child)  # created before a restart: adopt it
        except AwsError:
            try:
                arn = service.create(params)
            except Exception as err:  # noqa: BLE001 (a refusal or a bug: the step fails)
                self._creation_failed(row, step, err)
                return
        else:
            arn = body[kind.arn_field]
        self._write_step(row.name, step.name, {
            "Status": StepStatus.EXECUTING, "ChildArn": arn,
            "Metadata": {kind.metadata_key: {"Arn": arn}}},
            expect=(StepStatus.STARTING, StepStatus.EXECUTING))

    def _create_model(self, row: Resource, step: Step, child: str,
                      arguments: dict[str, Any]) -> None:
        body = self.children.describe_model(child)
        if body is None:
            try:
                body = self.children.create_model({**arguments, "ModelName": child})
            except Exception as err:  # noqa: BLE001 (a refusal or a bug: the step fails)
                self._creation_failed(row, step, err)
                return
        self._succeed(row.name, step.name, body, {"Model": {"Arn": body["ModelArn"]}})

    def _register(self, row: Resource, step: Step, child: str,
                  arguments: dict[str, Any]) -> None:
        if self.children.registry is None:
            self._fail(row.name, step.name, "Step type RegisterModel needs the model "
                       "registry (CreateModelPackage), which this opensage server does not "
                       "provide yet.")
            return
        tags = [*(arguments.get("Tags") or []), *execution_tags(row)]
        try:
            body = self.children.registry.register({**arguments, "Tags": tags}, child)
        except Exception as err:  # noqa: BLE001 (a refusal or a bug: the step fails)
            self._creation_failed(row, step, err)
            return
        self._succeed(row.name, step.name, body,
                      {"RegisterModel": {"Arn": body["ModelPackageArn"]}})

    def _creation_failed(self, row: Resource, step: Step, err: Exception) -> None:
        if not isinstance(err, AwsError):
            log.exception("pipeline step %s: creating its child failed", step.name)
        reason = str(err) if isinstance(err, AwsError) else \
            f"InternalServerError: {type(err).__name__}: {err}"
        self._failed_attempt(row, step, reason, create_failure_type(err))

    def _callback(self, row: Resource, step: Step, arguments: Any) -> None:
        token = secrets.token_hex(5)  # 10 characters, as AWS's callback tokens
        self._write_step(row.name, step.name, {
            "Status": StepStatus.EXECUTING, "CallbackToken": token, "Arguments": arguments,
            "Metadata": {"Callback": {"CallbackToken": token,
                                      "SqsQueueUrl": step.raw.get("SqsQueueUrl", ""),
                                      "OutputParameters": []}}},
            expect=(StepStatus.STARTING,))

    # -- the cache -------------------------------------------------------------------------
    def _cache_hit(self, row: Resource, pipeline: Definition, step: Step,
                   scope: Scope) -> bool:
        config = step.raw.get("CacheConfig") or {}
        if not config.get("Enabled"):
            return False
        key = self.cache_key(step, scope)
        self._write_step(row.name, step.name, {"CacheKey": key}, expect=STEP_ACTIVE)
        expire = config.get("ExpireAfter")
        oldest = (self.ctx.now() - definitions.duration_seconds(str(expire), where=step.name)
                  if expire else 0.0)
        source: tuple[float, Resource, Record] | None = None
        pipeline_name = row.internal["PipelineName"]
        for other in self.ctx.resources.scan(EXECUTION_KIND.name):
            if other.name == row.name or other.internal.get("PipelineName") != pipeline_name:
                continue
            found = other.internal.get("Steps", {}).get(step.name)
            if (found and found.get("Status") == StepStatus.SUCCEEDED
                    and found.get("CacheKey") == key and found.get("StartTime", 0) >= oldest
                    and (source is None or found["StartTime"] > source[0])):
                source = (found["StartTime"], other, found)
        if source is None:
            return False
        _, other, found = source
        origin = (found.get("CacheHitResult") or {}).get(
            "SourcePipelineExecutionArn", other.arn)
        self._succeed(row.name, step.name, found.get("Properties") or {},
                      found.get("Metadata") or {},
                      extra={"CacheHitResult": {"SourcePipelineExecutionArn": origin},
                             "ChildArn": found.get("ChildArn")})
        return True

    def cache_key(self, step: Step, scope: Scope) -> str:
        """The step's arguments, evaluated with the execution's own variables left as
        references (an output path holding the execution id is the same step), hashed."""
        symbolic = Scope(parameters=scope.parameters,
                         execution={**scope.execution, **{
                             v: f"{{Execution.{v}}}" for v in _SYMBOLIC}},
                         experiment={k: f"{{PipelineExperimentConfig.{k}}}"
                                     for k in scope.experiment},
                         properties=scope.properties, property_file=scope.property_file,
                         read_json=scope.read_json, step_names=scope.step_names)
        arguments = evaluate(step.arguments, symbolic)
        text = json.dumps([step.type, arguments], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    # -- observing a running step ----------------------------------------------------------
    def _observe(self, row: Resource, step: Step, record: Record, stopping: bool) -> None:
        if step.type == "Callback":
            if stopping:
                self._write_step(row.name, step.name, {
                    "Status": StepStatus.STOPPED, "EndTime": self.ctx.now()},
                    expect=STEP_ACTIVE)
            return
        kind = JOBS.get(step.type)
        if record.get("RetryAt") is not None and not record.get("ChildArn"):
            if stopping:
                self._write_step(row.name, step.name, {
                    "Status": StepStatus.STOPPED, "EndTime": self.ctx.now(),
                    "RetryAt": None}, expect=STEP_ACTIVE)
            elif self.ctx.now() >= record["RetryAt"]:
                self._write_step(row.name, step.name, {"RetryAt": None}, expect=STEP_ACTIVE)
                fresh = self._reload(row.name)
                if fresh is not None:
                    self._attempt(fresh, self.definition_of(fresh), step)
            return
        if record.get("Status") == StepStatus.STARTING or kind is None:
            # stored before its child was created (a restart in between): create it now
            if not stopping:
                self._attempt(row, self.definition_of(row), step)
            else:
                self._write_step(row.name, step.name, {
                    "Status": StepStatus.STOPPED, "EndTime": self.ctx.now()},
                    expect=STEP_ACTIVE)
            return
        service = getattr(self.children, kind.service)
        try:
            body = service.describe(record["Child"])
        except AwsError:
            self._fail(row.name, step.name, f"The {kind.metadata_key} {record['Child']} of "
                       "this step no longer exists.")
            return
        status = body.get(kind.status_field)
        if status in SUCCEEDED:
            properties = dict(body)
            if step.type == "Tuning":
                properties["TrainingJobSummaries"] = self.children.tuning_children(
                    record["Child"])
            self._succeed(row.name, step.name, properties, record.get("Metadata") or {})
        elif status in STOPPED:
            self._write_step(row.name, step.name, {
                "Status": StepStatus.STOPPED, "EndTime": self.ctx.now(),
                "FailureReason": f"The {kind.metadata_key} was stopped."},
                expect=STEP_ACTIVE)
        elif status in FAILED:
            reason = str(body.get("FailureReason") or f"The {kind.metadata_key} failed.")
            self._failed_attempt(row, step, reason, job_failure_type(reason))
        elif stopping and record.get("Status") != StepStatus.STOPPING:
            try:
                service.stop(record["Child"])
            except AwsError:
                pass  # it ended meanwhile: the next advance reads how
            self._write_step(row.name, step.name, {"Status": StepStatus.STOPPING},
                             expect=(StepStatus.EXECUTING,))

    def _failed_attempt(self, row: Resource, step: Step, reason: str,
                        failure_type: str | None) -> None:
        """A child failed: another attempt if a retry policy matches, else the step fails."""
        record = (self._reload(row.name) or row).internal["Steps"][step.name]
        policy = _matching_policy(step, failure_type)
        attempts = int(record.get("AttemptCount", 1))
        if policy is not None and row.status == ExecutionStatus.EXECUTING:
            retries = attempts  # retries so far + 1
            allowed = (retries <= int(policy["MaxAttempts"]) if "MaxAttempts" in policy else
                       self.ctx.now() - record["StartTime"] < 60 * float(
                           policy["ExpireAfterMin"]))
            if allowed:
                interval = float(policy.get("IntervalSeconds", 1)) * float(
                    policy.get("BackoffRate", 2.0)) ** (attempts - 1)
                self._write_step(row.name, step.name, {
                    "Status": StepStatus.EXECUTING, "AttemptCount": attempts + 1,
                    "Child": None, "ChildArn": None, "LastFailure": reason,
                    "RetryAt": self.ctx.now() + interval}, expect=STEP_ACTIVE)
                return
        self._fail(row.name, step.name, reason)

    # -- recording -------------------------------------------------------------------------
    def _succeed(self, execution_id: str, step: str, properties: dict[str, Any],
                 metadata: dict[str, Any], *, extra: Record | None = None) -> None:
        self._write_step(execution_id, step, {
            "Status": StepStatus.SUCCEEDED, "EndTime": self.ctx.now(),
            "Properties": properties, "Metadata": metadata, "FailureReason": None,
            **(extra or {})}, expect=STEP_ACTIVE)

    def _fail(self, execution_id: str, step: str, reason: str,
              metadata: dict[str, Any] | None = None) -> None:
        changes: Record = {"Status": StepStatus.FAILED, "EndTime": self.ctx.now(),
                           "FailureReason": reason[:1024]}
        if metadata is not None:
            changes["Metadata"] = metadata
        self._write_step(execution_id, step, changes, expect=STEP_ACTIVE)

    def _write_step(self, execution_id: str, step: str, changes: Record,
                    expect: tuple[str | None, ...] | frozenset[StepStatus]) -> None:
        """Merge ``changes`` into the step's record, if its status is one of ``expect``
        (None: no record yet); ``Conflict`` otherwise. One compare-and-set of the row."""
        now = self.ctx.now()

        def change(internal: dict[str, Any]) -> None:
            steps = internal.setdefault("Steps", {})
            current = steps.get(step)
            status = None if current is None else current.get("Status")
            if status not in expect:
                raise Conflict(step)
            target = changes.get("Status")
            if status is not None and target is not None and target != status:
                STEP.check(StepStatus(status), StepStatus(target))
            merged = {**(current or {}), **changes}
            steps[step] = {k: v for k, v in merged.items() if v is not None}

        self.ctx.resources.edit(EXECUTION_KIND.name, execution_id, ACTIVE,
                                lambda body: body.update(LastModifiedTime=now), now=now,
                                change_internal=change)

    def _end(self, row: Resource, target: ExecutionStatus, reason: str | None = None) -> None:
        now = self.ctx.now()

        def change(body: dict[str, Any]) -> None:
            body.update(PipelineExecutionStatus=target, LastModifiedTime=now)
            if reason:
                body["FailureReason"] = reason
            else:
                body.pop("FailureReason", None)

        current = ExecutionStatus(str(row.status))
        try:
            self.ctx.resources.transition(EXECUTION_KIND.name, row.name,
                                          EXECUTION.sources(target, current), target, change,
                                          now=now)
        except StatusConflict:
            return  # stopped meanwhile: the next advance decides again
        self._held.pop(row.name, None)  # ended: its lease is no longer needed
        self._leases.release(_lease_key(row.name), self._owner)

    # -- what expressions see --------------------------------------------------------------
    def scope(self, row: Resource, pipeline: Definition) -> Scope:
        records: dict[str, Record] = row.internal.get("Steps", {})
        execution = {
            "PipelineExecutionId": row.name, "PipelineExecutionArn": row.arn,
            "PipelineName": row.internal["PipelineName"],
            "PipelineArn": row.body["PipelineArn"],
            "StartDateTime": _iso(row.creation_time), "CurrentDateTime": _iso(self.ctx.now()),
        }

        def properties(step: str) -> dict[str, Any] | None:
            record = records.get(step)
            if record is None or record.get("Status") != StepStatus.SUCCEEDED:
                return None
            props: dict[str, Any] = record.get("Properties") or {}
            return props

        def property_file(step: str, name: str) -> Any:
            props = properties(step)
            if props is None:
                raise ExpressionError(f"Step '{step}' has no property files: it did not "
                                      "succeed")
            files = {f.get("PropertyFileName"): f for f in
                     pipeline.steps[step].raw.get("PropertyFiles") or []}
            if name not in files:
                raise ExpressionError(f"Step '{step}' has no property file {name!r}")
            spec = files[name]
            base = lookup(props, f"ProcessingOutputConfig.Outputs['{spec['OutputName']}']"
                          ".S3Output.S3Uri", what=f"Property file {name} of step '{step}'")
            return self.read_json(str(base).rstrip("/") + "/" + str(spec["FilePath"]))

        values = row.internal.get("Values", {})
        scope = Scope(parameters=values, execution=execution, properties=properties,
                      property_file=property_file, read_json=self.read_json,
                      step_names=pipeline.names)
        scope.experiment = row.body.get("PipelineExperimentConfig") or {}
        return scope

    def read_json(self, uri: str) -> Any:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise ExpressionError(f"Std:JsonGet: {uri!r} is not an s3:// object URI")
        bucket, key = uri[5:].split("/", 1)
        try:
            data = self.ctx.objects.read_object(bucket, key)
        except (NoSuchBucket, NoSuchKey):
            raise ExpressionError(f"Std:JsonGet: the file {uri} does not exist") from None
        try:
            return json.loads(data)
        except ValueError as err:
            raise ExpressionError(f"Std:JsonGet: the file {uri} is not JSON ({err})") \
                from None


def execution_tags(row: Resource) -> list[dict[str, str]]:
    """The tag AWS puts on what a pipeline step creates (the SDK's lineage classes read it to
    find the execution behind a job or a model)."""
    return [{"Key": PIPELINE_EXECUTION_TAG, "Value": row.arn}]


def _experiment_config(row: Resource, given: Any) -> dict[str, Any]:
    """A step job's ExperimentConfig: the execution's trial in the pipeline's experiment
    (``PipelineExperimentConfig``, when the pipeline has one), and the step's own
    ``TrialComponentDisplayName``."""
    config: dict[str, Any] = {}
    if isinstance(given, dict) and given.get("TrialComponentDisplayName"):
        config["TrialComponentDisplayName"] = given["TrialComponentDisplayName"]
    pipeline = row.body.get("PipelineExperimentConfig") or {}
    if pipeline.get("ExperimentName"):
        config["ExperimentName"] = pipeline["ExperimentName"]
        if pipeline.get("TrialName"):
            config["TrialName"] = pipeline["TrialName"]
    return config


def _ready(step: Step, records: dict[str, Record]) -> bool:
    """Every dependency succeeded, and the Condition branch holding the step was taken."""
    for dep in step.depends_on:
        record = records.get(dep)
        if record is None or record.get("Status") != StepStatus.SUCCEEDED:
            return False
    if step.branch is not None:
        condition, wanted = step.branch
        taken = (records[condition].get("Properties") or {}).get("Outcome")
        return bool(taken == wanted)
    return True


def _matching_policy(step: Step, failure_type: str | None) -> dict[str, Any] | None:
    if failure_type is None:
        return None
    for policy in step.raw.get("RetryPolicies") or []:
        if failure_type in (policy.get("ExceptionType") or []):
            return dict(policy)
    return None


def _lease_key(execution_id: str) -> str:
    return f"{EXECUTION_KIND.name}/{execution_id}/advance"


def child_name(execution_id: str, step: str, attempt: int, round_: int, *,
               limit: int = 63) -> str:
    """``pipelines-<execution id>-<step>-<10 characters>``, as AWS names a step's job: the
    same for the same (execution, step, attempt, retry round), at most ``limit`` characters
    (63; a tuning job's name has 32 at most: ``<execution id>-<step>-<10 characters>``)."""
    digest = hashlib.sha256(f"{execution_id}/{step}/{attempt}/{round_}".encode()).digest()
    suffix = "".join("abcdefghijklmnopqrstuvwxyz0123456789"[b % 36] for b in digest[:10])
    cleaned = "".join(c if c.isalnum() else "-" for c in step.lower()).strip("-") or "step"
    prefix = "pipelines-" if limit >= 63 else ""
    room = limit - len(prefix) - len(execution_id) - 2 - len(suffix)
    cleaned = cleaned[:max(room, 1)].rstrip("-") or "s"
    return f"{prefix}{execution_id}-{cleaned}-{suffix}"


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_execution_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


__all__ = ["PipelineEngine", "child_name", "new_execution_id"]
