"""SageMaker processing job handlers: CreateProcessingJob, DescribeProcessingJob,
ListProcessingJobs, StopProcessingJob (the service is ``services.processing``)."""

from __future__ import annotations

from typing import Any

from opensage.services.wiring import Services

Params = dict[str, Any]


def create_processing_job(services: Services, params: Params) -> Params:
    return {"ProcessingJobArn": services.processing.create(params)}


def describe_processing_job(services: Services, params: Params) -> Params:
    return services.processing.describe(params["ProcessingJobName"])


def list_processing_jobs(services: Services, params: Params) -> Params:
    return services.processing.list(params)


def stop_processing_job(services: Services, params: Params) -> None:
    services.processing.stop(params["ProcessingJobName"])
