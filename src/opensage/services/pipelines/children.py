"""What a pipeline step asks of the services that do its work: one :class:`ChildKind` per
step type that creates a child resource (a job, a model, a model package).

The services are collaborators handed over by the wiring (``services.wiring``); the engine
never reaches into them otherwise. A child is created under a name derived from the
execution, the step and the attempt, so a step started again after a restart finds the
child it created before instead of creating a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from opensage.errors import AwsError

Body = dict[str, Any]


class JobService(Protocol):
    """Training, processing, tuning and transform services, as pipelines use them."""

    def create(self, params: dict[str, Any]) -> str: ...

    def describe(self, name: str) -> Body: ...

    def stop(self, name: str) -> None: ...


class Registry(Protocol):
    """The model registry, as a RegisterModel step uses it."""

    def register(self, params: dict[str, Any], token: str) -> Body:
        """CreateModelPackage (creating the group when missing), or the package registered
        earlier with ``token``; the package's Describe answer."""
        ...


@dataclass(frozen=True)
class Collaborators:
    training: JobService
    processing: JobService
    tuning: JobService
    transform: JobService
    create_model: Callable[[dict[str, Any]], Body]  # CreateModel -> DescribeModel answer
    describe_model: Callable[[str], Body | None]
    registry: Registry | None = None  # None: the model registry is not available
    # ListTrainingJobsForHyperParameterTuningJob (a Tuning step's TrainingJobSummaries)
    tuning_children: Callable[[str], list[Body]] = lambda name: []


@dataclass(frozen=True)
class JobKind:
    """A step type whose child is a job that runs: how to name, create, read and stop it."""

    step_type: str
    metadata_key: str  # the key of ListPipelineExecutionSteps' Metadata
    name_field: str  # e.g. TrainingJobName
    arn_field: str
    status_field: str
    service: str  # attribute of Collaborators


JOBS = {
    "Training": JobKind("Training", "TrainingJob", "TrainingJobName", "TrainingJobArn",
                        "TrainingJobStatus", "training"),
    "Processing": JobKind("Processing", "ProcessingJob", "ProcessingJobName",
                          "ProcessingJobArn", "ProcessingJobStatus", "processing"),
    "Transform": JobKind("Transform", "TransformJob", "TransformJobName", "TransformJobArn",
                         "TransformJobStatus", "transform"),
    "Tuning": JobKind("Tuning", "TuningJob", "HyperParameterTuningJobName",
                      "HyperParameterTuningJobArn", "HyperParameterTuningJobStatus",
                      "tuning"),
}
SUCCEEDED = {"Completed"}
FAILED = {"Failed"}
STOPPED = {"Stopped"}

# RetryPolicies' ExceptionType values, and how a failure is recognised as one of them
SERVICE_FAULT = "Step.SERVICE_FAULT"
THROTTLING = "Step.THROTTLING"
JOB_INTERNAL_ERROR = "SageMaker.JOB_INTERNAL_ERROR"
CAPACITY_ERROR = "SageMaker.CAPACITY_ERROR"
RESOURCE_LIMIT = "SageMaker.RESOURCE_LIMIT"


def job_failure_type(reason: str) -> str | None:
    """The retry exception type of a child job's FailureReason (None: not retryable)."""
    if "CapacityError" in reason:
        return CAPACITY_ERROR
    if reason.startswith("InternalServerError") or "InternalServerError" in reason[:64]:
        return JOB_INTERNAL_ERROR
    return None


def create_failure_type(error: Exception) -> str | None:
    """The retry exception type of an error the service answered a create with."""
    if isinstance(error, AwsError):
        code = error.code
        if code == "ResourceLimitExceeded":
            return RESOURCE_LIMIT
        if code in ("ThrottlingException", "Throttling"):
            return THROTTLING
        if error.status >= 500:
            return SERVICE_FAULT
        return None
    return SERVICE_FAULT  # an unexpected error of the service itself
