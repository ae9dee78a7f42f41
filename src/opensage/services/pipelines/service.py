"""The Pipelines API: pipelines (each update a new version), executions and their steps.

A pipeline is a row of kind ``pipeline`` (the DescribePipeline document; its versions, each
with its definition, in the internal state). An execution is a row of kind
``pipeline-execution`` named by its 12-character id, with the ARN AWS gives it
(``pipeline/<name>/execution/<id>``); its internal state holds the definition it runs, its
parameter values and its step records, which ``engine.PipelineEngine`` advances.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opensage.errors import NoSuchBucket, NoSuchKey, ResourceNotFound, ValidationException
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, create, load
from opensage.services.pipelines import definition as definitions
from opensage.services.pipelines.children import Collaborators
from opensage.services.pipelines.engine import PipelineEngine, new_execution_id
from opensage.services.pipelines.expressions import Scope, evaluate
from opensage.services.pipelines.states import (
    ACTIVE,
    EXECUTION,
    STEP,
    ExecutionStatus,
    PipelineStatus,
    StepStatus,
)
from opensage.store import pagination
from opensage.store.resources import Resource, StatusConflict

PIPELINE = kinds.PIPELINE
EXECUTION_KIND = kinds.PIPELINE_EXECUTION
Body = dict[str, Any]
_PIPELINE_SUMMARY = ("PipelineArn", "PipelineName", "PipelineDisplayName",
                     "PipelineDescription", "RoleArn", "CreationTime", "LastModifiedTime")


class PipelineService:
    def __init__(self, ctx: Context, children: Collaborators) -> None:
        self.ctx = ctx
        self.engine = PipelineEngine(ctx, children)

    def start(self) -> None:
        self.engine.start()  # it also resumes the executions a previous run left

    def close(self) -> None:
        self.engine.shutdown()

    def child_ended(self, event: object) -> None:
        self.engine.wake()

    # -- pipelines -------------------------------------------------------------------------
    def create(self, params: Body) -> str:
        name = params["PipelineName"]
        arn = arn_of(self.ctx, PIPELINE, name)
        token = params.get("ClientRequestToken")
        existing = self.ctx.resources.get(PIPELINE.name, name)
        if existing is not None and token and existing.internal.get("ClientRequestToken") \
                == token:
            return existing.arn  # the same request again
        text = self._definition_text(params)
        definitions.parse(text)
        now = self.ctx.now()
        body: Body = {
            "PipelineArn": arn, "PipelineName": name,
            "PipelineDisplayName": params.get("PipelineDisplayName") or name,
            "PipelineDefinition": text, "RoleArn": params["RoleArn"],
            "PipelineStatus": PipelineStatus.ACTIVE, "CreationTime": now,
            "LastModifiedTime": now, "CreatedBy": {}, "LastModifiedBy": {}}
        for key in ("PipelineDescription", "ParallelismConfiguration"):
            if params.get(key) is not None:
                body[key] = params[key]
        version = {"PipelineVersionId": 1, "CreationTime": now, "Definition": text}
        if existing is not None:
            raise ValidationException(
                "Pipeline names must be unique within an AWS account and region. Pipeline "
                f"with name ({name}) already exists.")
        try:
            create(self.ctx, PIPELINE, name, body, params.get("Tags") or [], noun="pipeline",
                   status=PipelineStatus.ACTIVE,
                   internal={"Versions": [version], "ClientRequestToken": token})
        except ValidationException:
            raise ValidationException(
                "Pipeline names must be unique within an AWS account and region. Pipeline "
                f"with name ({name}) already exists.") from None
        return arn

    def update(self, params: Body) -> Body:
        row = self._pipeline(params["PipelineName"])
        text = self._definition_text(params) if (
            params.get("PipelineDefinition") or params.get("PipelineDefinitionS3Location")) \
            else None
        if text is not None:
            definitions.parse(text)
        now = self.ctx.now()
        number: list[int] = []

        def change(body: Body) -> None:
            for key in ("PipelineDisplayName", "PipelineDescription", "RoleArn",
                        "ParallelismConfiguration"):
                if params.get(key) is not None:
                    body[key] = params[key]
            if text is not None:
                body["PipelineDefinition"] = text
            body["LastModifiedTime"] = now

        def change_internal(internal: Body) -> None:
            versions = internal.setdefault("Versions", [])
            if text is not None:
                versions.append({"PipelineVersionId": len(versions) + 1, "CreationTime": now,
                                 "Definition": text})
            number.append(len(versions))

        self.ctx.resources.edit(PIPELINE.name, row.name, [PipelineStatus.ACTIVE], change,
                                now=now, change_internal=change_internal)
        return {"PipelineArn": row.arn, "PipelineVersionId": number[0]}

    def describe(self, params: Body) -> Body:
        row = self._pipeline(params["PipelineName"])
        body = dict(row.body)
        version_id = params.get("PipelineVersionId")
        if version_id is not None:
            version = self._version(row, version_id)
            body["PipelineDefinition"] = version["Definition"]
            for key in ("PipelineVersionDisplayName", "PipelineVersionDescription"):
                if key in version:
                    body[key] = version[key]
        return body

    def list(self, params: Body) -> Body:
        prefix = params.get("PipelineNamePrefix") or ""
        rows = [r for r in self.ctx.resources.scan(PIPELINE.name)
                if r.name.startswith(prefix) and _created_in(r.creation_time, params)]
        sort_by = params.get("SortBy") or "CreationTime"
        key: Callable[[Resource], tuple[Any, ...]] = (
            (lambda r: (r.name, r.row_id)) if sort_by == "Name"
            else (lambda r: (r.creation_time, r.row_id)))
        descending = (params.get("SortOrder") or "Descending") == "Descending"
        rows.sort(key=key, reverse=descending)
        taken, token = pagination.page(
            rows, key, query=("pipelines", prefix, sort_by, descending),
            token=params.get("NextToken"), limit=params.get("MaxResults") or 10,
            descending=descending)
        summaries = []
        for row in taken:
            summary = {k: row.body[k] for k in _PIPELINE_SUMMARY if k in row.body}
            if "LastRunTime" in row.body:
                summary["LastExecutionTime"] = row.body["LastRunTime"]
            summaries.append(summary)
        return {"PipelineSummaries": summaries, "NextToken": token}

    def delete(self, params: Body) -> Body:
        row = self._pipeline(params["PipelineName"])
        for execution in self.ctx.resources.scan(EXECUTION_KIND.name, statuses=ACTIVE):
            if execution.internal.get("PipelineName") == row.name:
                self._stop(execution)
        self.ctx.resources.delete(PIPELINE.name, row.name)
        self.engine.wake()
        return {"PipelineArn": row.arn}

    def versions(self, params: Body) -> Body:
        row = self._pipeline(params["PipelineName"])
        versions = [v for v in row.internal.get("Versions", [])
                    if _created_in(v["CreationTime"], params, after="CreatedAfter",
                                   before="CreatedBefore")]
        descending = (params.get("SortOrder") or "Descending") == "Descending"
        versions.sort(key=lambda v: v["PipelineVersionId"], reverse=descending)
        taken, token = pagination.page(
            versions, lambda v: (v["PipelineVersionId"],),
            query=("pipeline-versions", row.name, descending), token=params.get("NextToken"),
            limit=params.get("MaxResults") or 10, descending=descending)
        return {"PipelineVersionSummaries": [
            {"PipelineArn": row.arn, **{k: v[k] for k in (
                "PipelineVersionId", "CreationTime", "PipelineVersionDescription",
                "PipelineVersionDisplayName", "LastExecutionPipelineExecutionArn") if k in v}}
            for v in taken], "NextToken": token}

    def update_version(self, params: Body) -> Body:
        row = self._pipeline(params["PipelineArn"])
        version_id = params["PipelineVersionId"]
        self._version(row, version_id)

        def change_internal(internal: Body) -> None:
            for version in internal.get("Versions", []):
                if version["PipelineVersionId"] == version_id:
                    for key in ("PipelineVersionDisplayName", "PipelineVersionDescription"):
                        if params.get(key) is not None:
                            version[key] = params[key]

        self.ctx.resources.edit(PIPELINE.name, row.name, [PipelineStatus.ACTIVE],
                                now=self.ctx.now(), change_internal=change_internal)
        return {"PipelineArn": row.arn, "PipelineVersionId": version_id}

    # -- executions ------------------------------------------------------------------------
    def start_execution(self, params: Body) -> str:
        row = self._pipeline(params["PipelineName"])
        token = params.get("ClientRequestToken")
        if token:
            for other in self.ctx.resources.scan(EXECUTION_KIND.name):
                if other.internal.get("PipelineName") == row.name and other.internal.get(
                        "ClientRequestToken") == token:
                    return other.arn  # the same request again
        if params.get("SelectiveExecutionConfig"):
            raise ValidationException(
                "SelectiveExecutionConfig is not supported by opensage: start a full "
                "execution, or RetryPipelineExecution to re-run from the failed steps.")
        versions = row.internal.get("Versions", [])
        version = (self._version(row, params["PipelineVersionId"])
                   if params.get("PipelineVersionId") is not None else versions[-1])
        text = version["Definition"]
        pipeline = definitions.parse(text)
        given = params.get("PipelineParameters") or []
        values = definitions.resolve_parameters(pipeline, given)
        execution_id = new_execution_id()
        arn = f"{row.arn}/execution/{execution_id}"
        now = self.ctx.now()
        body: Body = {
            "PipelineArn": row.arn, "PipelineExecutionArn": arn,
            "PipelineExecutionDisplayName": params.get("PipelineExecutionDisplayName")
            or f"execution-{int(now * 1000)}",
            "PipelineExecutionStatus": ExecutionStatus.EXECUTING, "CreationTime": now,
            "LastModifiedTime": now, "CreatedBy": {}, "LastModifiedBy": {},
            "PipelineVersionId": version["PipelineVersionId"]}
        if params.get("PipelineExecutionDescription"):
            body["PipelineExecutionDescription"] = params["PipelineExecutionDescription"]
        parallelism = params.get("ParallelismConfiguration")
        if parallelism:
            body["ParallelismConfiguration"] = parallelism
        experiment = pipeline.document.get("PipelineExperimentConfig")
        if isinstance(experiment, dict):
            scope = Scope(parameters=values, execution={
                "PipelineExecutionId": execution_id, "PipelineExecutionArn": arn,
                "PipelineName": row.name, "PipelineArn": row.arn})
            body["PipelineExperimentConfig"] = {k: str(v) for k, v in evaluate(
                experiment, scope).items() if v is not None}
        shown = {p["Name"]: p.get("Value", "") for p in given}
        internal = {
            "PipelineName": row.name, "Definition": text, "Values": values,
            "Parameters": [{"Name": name, "Value": shown.get(name, _text(value))}
                           for name, value in values.items()],
            "ClientRequestToken": token, "Steps": {}, "Round": 0,
            "PipelineParallelism": row.body.get("ParallelismConfiguration")}
        self.ctx.resources.create(EXECUTION_KIND.name, execution_id, arn, body, now=now,
                                  status=ExecutionStatus.EXECUTING, internal=internal)

        def ran(body: Body) -> None:
            body["LastRunTime"] = now

        def ran_version(internal: Body) -> None:
            for v in internal.get("Versions", []):
                if v["PipelineVersionId"] == version["PipelineVersionId"]:
                    v["LastExecutionPipelineExecutionArn"] = arn

        try:
            self.ctx.resources.edit(PIPELINE.name, row.name, [PipelineStatus.ACTIVE], ran,
                                    now=now, change_internal=ran_version)
        except StatusConflict:
            pass  # deleted meanwhile: the execution runs what it was given
        self.engine.wake()
        return arn

    def describe_execution(self, arn: str) -> Body:
        return self._execution(arn).body

    def definition_for_execution(self, arn: str) -> Body:
        row = self._execution(arn)
        return {"PipelineDefinition": row.internal["Definition"],
                "CreationTime": row.creation_time}

    def list_executions(self, params: Body) -> Body:
        pipeline = self._pipeline(params["PipelineName"])
        rows = [r for r in self.ctx.resources.scan(EXECUTION_KIND.name)
                if r.internal.get("PipelineName") == pipeline.name
                and _created_in(r.creation_time, params)]
        sort_by = params.get("SortBy") or "CreationTime"
        key: Callable[[Resource], tuple[Any, ...]] = (
            (lambda r: (r.arn, r.row_id)) if sort_by == "PipelineExecutionArn"
            else (lambda r: (r.creation_time, r.row_id)))
        descending = (params.get("SortOrder") or "Descending") == "Descending"
        rows.sort(key=key, reverse=descending)
        taken, token = pagination.page(
            rows, key, query=("pipeline-executions", pipeline.name, sort_by, descending),
            token=params.get("NextToken"), limit=params.get("MaxResults") or 10,
            descending=descending)
        summaries = []
        for row in taken:
            summary: Body = {"PipelineExecutionArn": row.arn, "StartTime": row.creation_time,
                             "PipelineExecutionStatus": row.status}
            for key_out, key_in in (("PipelineExecutionDescription",
                                     "PipelineExecutionDescription"),
                                    ("PipelineExecutionDisplayName",
                                     "PipelineExecutionDisplayName"),
                                    ("PipelineExecutionFailureReason", "FailureReason")):
                if key_in in row.body:
                    summary[key_out] = row.body[key_in]
            summaries.append(summary)
        return {"PipelineExecutionSummaries": summaries, "NextToken": token}

    def list_steps(self, params: Body) -> Body:
        if not params.get("PipelineExecutionArn"):  # optional in the model; AWS needs it
            raise ValidationException("PipelineExecutionArn is required.")
        row = self._execution(params["PipelineExecutionArn"])
        pipeline = self.engine.definition_of(row)
        records = row.internal.get("Steps", {})
        descending = (params.get("SortOrder") or "Descending") == "Descending"
        ordered = sorted(records.items(), key=lambda kv: (kv[1].get("StartTime", 0),
                                                         kv[1].get("Sequence", 0)),
                         reverse=descending)
        items = []
        for name, record in ordered:
            raw = pipeline.steps[name].raw if name in pipeline.steps else {}
            item: Body = {"StepName": name, "StepStatus": record["Status"],
                          "AttemptCount": record.get("AttemptCount", 1),
                          "Metadata": record.get("Metadata") or {}}
            for key_out, value in (("StepDisplayName", raw.get("DisplayName")),
                                   ("StepDescription", raw.get("Description")),
                                   ("StartTime", record.get("StartTime")),
                                   ("EndTime", record.get("EndTime")),
                                   ("FailureReason", record.get("FailureReason")),
                                   ("CacheHitResult", record.get("CacheHitResult"))):
                if value is not None:
                    item[key_out] = value
            items.append((item, record.get("StartTime", 0), record.get("Sequence", 0)))
        taken, token = pagination.page(
            items, lambda i: (i[1], i[2]), query=("steps", row.arn, descending),
            token=params.get("NextToken"), limit=params.get("MaxResults") or 50,
            descending=descending)
        return {"PipelineExecutionSteps": [i[0] for i in taken], "NextToken": token}

    def list_parameters(self, params: Body) -> Body:
        row = self._execution(params["PipelineExecutionArn"])
        values = list(enumerate(row.internal.get("Parameters", [])))
        taken, token = pagination.page(
            values, lambda v: (v[0],), query=("parameters", row.arn),
            token=params.get("NextToken"), limit=params.get("MaxResults") or 50)
        return {"PipelineParameters": [v for _, v in taken], "NextToken": token}

    def stop_execution(self, params: Body) -> Body:
        row = self._execution(params["PipelineExecutionArn"])
        if row.status == ExecutionStatus.STOPPING:
            return {"PipelineExecutionArn": row.arn}
        if row.status != ExecutionStatus.EXECUTING:
            raise ValidationException(
                f"Pipeline execution {row.arn} is in status {row.status}: only an Executing "
                "execution can be stopped.")
        self._stop(row)
        self.engine.wake()
        return {"PipelineExecutionArn": row.arn}

    def _stop(self, row: Resource) -> None:
        now = self.ctx.now()
        try:
            self.ctx.resources.transition(
                EXECUTION_KIND.name, row.name,
                EXECUTION.sources(ExecutionStatus.STOPPING, ExecutionStatus.EXECUTING),
                ExecutionStatus.STOPPING, lambda body: body.update(
                    PipelineExecutionStatus=ExecutionStatus.STOPPING, LastModifiedTime=now),
                now=now)
        except StatusConflict as conflict:
            if conflict.current != ExecutionStatus.STOPPING:
                raise ValidationException(
                    f"Pipeline execution {row.arn} is in status {conflict.current}: only an "
                    "Executing execution can be stopped.") from None

    def retry_execution(self, params: Body) -> Body:
        """Run a Failed (or Stopped) execution again from its failed and stopped steps; the
        steps that succeeded keep their results."""
        row = self._execution(params["PipelineExecutionArn"])
        now = self.ctx.now()
        parallelism = params.get("ParallelismConfiguration")

        def change(body: Body) -> None:
            body.update(PipelineExecutionStatus=ExecutionStatus.EXECUTING, LastModifiedTime=now)
            body.pop("FailureReason", None)
            if parallelism:
                body["ParallelismConfiguration"] = parallelism

        def change_internal(internal: Body) -> None:
            steps = internal.get("Steps", {})
            for name in [n for n, r in steps.items() if r.get("Status") in (
                    StepStatus.FAILED, StepStatus.STOPPED)]:
                STEP.check(StepStatus(steps[name]["Status"]), StepStatus.STARTING)
                del steps[name]  # it starts again, with children of the new round
            internal["Round"] = int(internal.get("Round", 0)) + 1

        current = ExecutionStatus(str(row.status))
        if current not in (ExecutionStatus.FAILED, ExecutionStatus.STOPPED):
            raise ValidationException(
                f"Pipeline execution {row.arn} is in status {row.status}: only a Failed or "
                "Stopped execution can be retried.")
        try:
            self.ctx.resources.transition(
                EXECUTION_KIND.name, row.name,
                EXECUTION.sources(ExecutionStatus.EXECUTING, current),
                ExecutionStatus.EXECUTING, change, now=now, change_internal=change_internal)
        except StatusConflict as conflict:
            raise ValidationException(
                f"Pipeline execution {row.arn} is in status {conflict.current}: only a Failed "
                "or Stopped execution can be retried.") from None
        self.engine.wake()
        return {"PipelineExecutionArn": row.arn}

    def update_execution(self, params: Body) -> Body:
        row = self._execution(params["PipelineExecutionArn"])
        now = self.ctx.now()

        def change(body: Body) -> None:
            for key in ("PipelineExecutionDescription", "PipelineExecutionDisplayName",
                        "ParallelismConfiguration"):
                if params.get(key) is not None:
                    body[key] = params[key]
            body["LastModifiedTime"] = now

        # whatever its status (it may end meanwhile): a change of description only
        self.ctx.resources.edit(EXECUTION_KIND.name, row.name, list(ExecutionStatus), change,
                                now=now)
        self.engine.wake()
        return {"PipelineExecutionArn": row.arn}

    def callback(self, params: Body, *, success: bool) -> Body:
        """SendPipelineExecutionStepSuccess / Failure: the Callback step waiting on the
        token ends Succeeded (with its output parameters) or Failed."""
        token = params["CallbackToken"]
        for row in self.ctx.resources.scan(EXECUTION_KIND.name, statuses=ACTIVE):
            for name, record in row.internal.get("Steps", {}).items():
                if record.get("CallbackToken") == token:
                    self._complete_callback(row, name, record, params, success)
                    self.engine.wake()
                    return {"PipelineExecutionArn": row.arn}
        raise ResourceNotFound(f"No pipeline execution step waits for the callback token "
                               f"{token}.")

    def _complete_callback(self, row: Resource, name: str, record: Body, params: Body,
                           success: bool) -> None:
        now = self.ctx.now()
        if record.get("Status") != StepStatus.EXECUTING:
            raise ValidationException(f"The step {name} waiting for this token is in status "
                                      f"{record.get('Status')}.")
        outputs = params.get("OutputParameters") or []

        def change_internal(internal: Body) -> None:
            step = internal["Steps"][name]
            if step.get("Status") != StepStatus.EXECUTING or step.get("CallbackToken") != \
                    params["CallbackToken"]:
                raise ValidationException(f"The step {name} no longer waits for this token.")
            target = StepStatus.SUCCEEDED if success else StepStatus.FAILED
            STEP.check(StepStatus.EXECUTING, target)
            step.update(Status=target, EndTime=now)
            metadata = step.setdefault("Metadata", {}).setdefault("Callback", {})
            if success:
                metadata["OutputParameters"] = outputs
                step["Properties"] = {"OutputParameters": {
                    o["Name"]: o["Value"] for o in outputs}}
            else:
                step["FailureReason"] = (params.get("FailureReason") or "")[:1024] or \
                    "The callback reported a failure."

        self.ctx.resources.edit(EXECUTION_KIND.name, row.name, ACTIVE,
                                lambda body: body.update(LastModifiedTime=now), now=now,
                                change_internal=change_internal)

    # -- helpers ---------------------------------------------------------------------------
    def _definition_text(self, params: Body) -> str:
        text = params.get("PipelineDefinition")
        location = params.get("PipelineDefinitionS3Location")
        if text and location:
            raise ValidationException(
                "Specify either PipelineDefinition or PipelineDefinitionS3Location, not both.")
        if location:
            try:
                data = self.ctx.objects.read_object(location["Bucket"], location["ObjectKey"])
            except (NoSuchBucket, NoSuchKey):
                raise ValidationException(
                    f"Could not read the pipeline definition at s3://{location['Bucket']}/"
                    f"{location['ObjectKey']}.") from None
            return data.decode("utf-8", "replace")
        if not text:
            raise ValidationException(
                "A pipeline needs a PipelineDefinition or a PipelineDefinitionS3Location.")
        return str(text)

    def _pipeline(self, name_or_arn: str) -> Resource:
        name = name_or_arn
        prefix = self.ctx.arn("pipeline/")
        if name.startswith(prefix):
            found = self.ctx.resources.get_by_arn(name)
            if found is not None and found.kind == PIPELINE.name:
                return found
            name = name[len(prefix):]
        return load(self.ctx, PIPELINE, name)

    def _version(self, row: Resource, version_id: int) -> Body:
        for version in row.internal.get("Versions", []):
            if version["PipelineVersionId"] == version_id:
                return dict(version)
        raise ResourceNotFound(f"Pipeline version {version_id} of pipeline {row.arn} does "
                               "not exist.")

    def _execution(self, arn: str) -> Resource:
        row = self.ctx.resources.get_by_arn(arn)
        if row is None or row.kind != EXECUTION_KIND.name:
            raise EXECUTION_KIND.not_found(arn, arn)
        return row


def _created_in(created: float, params: Body, *, after: str = "CreatedAfter",
                before: str = "CreatedBefore") -> bool:
    low, high = params.get(after), params.get(before)
    if low is not None and created <= low.timestamp():
        return False
    return not (high is not None and created >= high.timestamp())


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
