"""SageMaker training job handlers: CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs,
StopTrainingJob, UpdateTrainingJob (the service is ``services.training``)."""

from __future__ import annotations

from typing import Any

from opensage.services.wiring import Services

Params = dict[str, Any]


def create_training_job(services: Services, params: Params) -> Params:
    return {"TrainingJobArn": services.training.create(params)}


def describe_training_job(services: Services, params: Params) -> Params:
    return services.training.describe(params["TrainingJobName"])


def list_training_jobs(services: Services, params: Params) -> Params:
    return services.training.list(params)


def stop_training_job(services: Services, params: Params) -> None:
    services.training.stop(params["TrainingJobName"])


def update_training_job(services: Services, params: Params) -> Params:
    return {"TrainingJobArn": services.training.update(params)}
