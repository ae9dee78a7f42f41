"""The resource kinds the console shows: one entry each, built on the service operations the
API calls (``List*``, ``Describe*``, ``Stop*``).

A new resource gets its pages by adding one :class:`ResourcePage` here: a list page with
status/name/date filters, sort and keyset paging, a detail page of its Describe document,
its counts and recent activity on the home page, and a Stop action if it has one. A kind that
needs more (charts, a leaderboard) names its own detail template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opensage.console.access import Caller
from opensage.services import crud
from opensage.services import kinds as service_kinds
from opensage.services.kinds import Kind
from opensage.services.wiring import Services

Params = dict[str, Any]
JOB_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
ENDPOINT_STATUSES = ("Creating", "Updating", "InService", "RollingBack", "SystemUpdating",
                     "Deleting", "OutOfService", "Failed", "UpdateRollbackFailed")
# Statuses a resource does not leave by itself: a page showing only these stops polling.
SETTLED = frozenset({"Completed", "Failed", "Stopped", "InService", "OutOfService",
                     "UpdateRollbackFailed"})


@dataclass(frozen=True)
class Column:
    label: str
    field: str
    format: str = "text"  # text | time | status | link (to the row's page)


@dataclass(frozen=True)
class ResourcePage:
    slug: str  # the URL segment: /_console/<slug>/<name>
    title: str  # "Transform jobs"
    singular: str  # "transform job"
    kind: Kind
    lister: Callable[[Services, Params], Params]  # the List* operation
    items: str  # the List* answer's member holding the summaries
    name_field: str
    status_field: str | None
    describe: Callable[[Services, str], Params]  # the Describe* operation
    columns: tuple[Column, ...]
    statuses: tuple[str, ...] = ()  # what the status filter offers
    stop: Callable[[Services, str], None] | None = None
    template: str = "resource.html"  # the detail page
    sorts: tuple[str, ...] = ("CreationTime", "Name", "Status")
    extra: dict[str, Any] = field(default_factory=dict)
    noun: str = ""  # the API's: List<noun>s, Describe<noun>, Stop<noun>

    # What the caller may do is asked here, where a page names the operation it calls.
    @property
    def list_action(self) -> str:
        return f"sagemaker:List{self.noun}s"

    def summaries(self, caller: Caller, params: Params) -> tuple[list[Params], str | None]:
        caller.require(self.list_action)
        answer = self.lister(caller.services, params)
        return list(answer.get(self.items) or []), answer.get("NextToken")

    def document(self, caller: Caller, name: str) -> Params:
        caller.require(f"sagemaker:Describe{self.noun}",
                       caller.sagemaker_arn(self.kind.name, name))
        return self.describe(caller.services, name)

    def halt(self, caller: Caller, name: str) -> None:
        assert self.stop is not None
        caller.require(f"sagemaker:Stop{self.noun}", caller.sagemaker_arn(self.kind.name, name))
        self.stop(caller.services, name)


def _columns(name: str, status: str | None, *times: tuple[str, str]) -> tuple[Column, ...]:
    cols = [Column("Name", name, "link")]
    if status:
        cols.append(Column("Status", status, "status"))
    cols += [Column(label, f, "time") for label, f in times]
    return tuple(cols)


def _list_models(services: Services, params: Params) -> Params:
    return crud.summaries(services.context, service_kinds.MODEL, params, key="Models", fields={
        "ModelName": "ModelName", "ModelArn": "ModelArn", "CreationTime": "CreationTime"})


def _list_endpoint_configs(services: Services, params: Params) -> Params:
    return crud.summaries(services.context, service_kinds.ENDPOINT_CONFIG, params,
                          key="EndpointConfigs", fields={
                              "EndpointConfigName": "EndpointConfigName",
                              "EndpointConfigArn": "EndpointConfigArn",
                              "CreationTime": "CreationTime"})


PAGES: tuple[ResourcePage, ...] = (
    ResourcePage(
        "training-jobs", "Training jobs", "training job", service_kinds.TRAINING_JOB,
        lambda s, p: s.training.list(p), "TrainingJobSummaries", "TrainingJobName",
        "TrainingJobStatus", lambda s, n: s.training.describe(n),
        (*_columns("TrainingJobName", "TrainingJobStatus"),
         Column("Secondary status", "SecondaryStatus"),
         Column("Created", "CreationTime", "time"), Column("Ended", "TrainingEndTime", "time")),
        JOB_STATUSES, lambda s, n: s.training.stop(n), "training_job.html",
        noun="TrainingJob"),
    ResourcePage(
        "tuning-jobs", "Tuning jobs", "tuning job", service_kinds.TUNING_JOB,
        lambda s, p: s.tuning.list(p), "HyperParameterTuningJobSummaries",
        "HyperParameterTuningJobName", "HyperParameterTuningJobStatus",
        lambda s, n: s.tuning.describe(n),
        (*_columns("HyperParameterTuningJobName", "HyperParameterTuningJobStatus",
                   ("Created", "CreationTime"), ("Ended", "HyperParameterTuningEndTime")),
         Column("Strategy", "Strategy")),
        JOB_STATUSES, lambda s, n: s.tuning.stop(n), "tuning_job.html",
        noun="HyperParameterTuningJob"),
    ResourcePage(
        "endpoints", "Endpoints", "endpoint", service_kinds.ENDPOINT,
        lambda s, p: s.endpoints.list(p), "Endpoints", "EndpointName", "EndpointStatus",
        lambda s, n: s.endpoints.describe(n),
        _columns("EndpointName", "EndpointStatus", ("Created", "CreationTime"),
                 ("Modified", "LastModifiedTime")),
        ENDPOINT_STATUSES, None, "endpoint.html", noun="Endpoint"),
    ResourcePage(
        "transform-jobs", "Batch transform", "transform job", service_kinds.TRANSFORM_JOB,
        lambda s, p: s.transform.list(p), "TransformJobSummaries", "TransformJobName",
        "TransformJobStatus", lambda s, n: s.transform.describe(n),
        (*_columns("TransformJobName", "TransformJobStatus", ("Created", "CreationTime"),
                   ("Ended", "TransformEndTime")), Column("Failure", "FailureReason")),
        JOB_STATUSES, lambda s, n: s.transform.stop(n), noun="TransformJob"),
    ResourcePage(
        "processing-jobs", "Processing jobs", "processing job", service_kinds.PROCESSING_JOB,
        lambda s, p: s.processing.list(p), "ProcessingJobSummaries", "ProcessingJobName",
        "ProcessingJobStatus", lambda s, n: s.processing.describe(n),
        (*_columns("ProcessingJobName", "ProcessingJobStatus", ("Created", "CreationTime"),
                   ("Ended", "ProcessingEndTime")), Column("Failure", "FailureReason")),
        JOB_STATUSES, lambda s, n: s.processing.stop(n), noun="ProcessingJob"),
    ResourcePage(
        "models", "Models", "model", service_kinds.MODEL, _list_models, "Models", "ModelName",
        None, lambda s, n: crud.load(s.context, service_kinds.MODEL, n).body,
        _columns("ModelName", None, ("Created", "CreationTime")), sorts=("CreationTime", "Name"),
        noun="Model"),
    ResourcePage(
        "endpoint-configs", "Endpoint configs", "endpoint configuration",
        service_kinds.ENDPOINT_CONFIG, _list_endpoint_configs, "EndpointConfigs",
        "EndpointConfigName", None,
        lambda s, n: crud.load(s.context, service_kinds.ENDPOINT_CONFIG, n).body,
        _columns("EndpointConfigName", None, ("Created", "CreationTime")),
        sorts=("CreationTime", "Name"), noun="EndpointConfig"),
    ResourcePage(
        "experiments", "Experiments", "experiment", service_kinds.EXPERIMENT,
        lambda s, p: s.experiments.list_experiments(p), "ExperimentSummaries",
        "ExperimentName", None, lambda s, n: s.experiments.describe_experiment(n),
        (*_columns("ExperimentName", None, ("Created", "CreationTime")),
         Column("Display name", "DisplayName")), (), None, "experiment.html",
        sorts=("CreationTime", "Name"), noun="Experiment"),
    ResourcePage(
        "trial-components", "Runs (trial components)", "run", service_kinds.TRIAL_COMPONENT,
        lambda s, p: s.experiments.list_trial_components(p), "TrialComponentSummaries",
        "TrialComponentName", None, lambda s, n: s.experiments.describe_trial_component(n),
        (*_columns("TrialComponentName", None, ("Created", "CreationTime")),
         Column("Display name", "DisplayName")), (), None, "trial_component.html",
        sorts=("CreationTime", "Name"), noun="TrialComponent"),
)
BY_SLUG = {page.slug: page for page in PAGES}


def settled(status: Any) -> bool:
    """Whether a status (a string, or a trial component's ``{"PrimaryStatus": ...}``) is one
    the resource stays in without an action: pages showing only such rows stop polling."""
    if isinstance(status, dict):
        status = status.get("PrimaryStatus")
    return status is None or status in SETTLED
