"""SageMaker batch transform handlers: CreateTransformJob, DescribeTransformJob,
ListTransformJobs, StopTransformJob (the service is ``services.transform``)."""

from __future__ import annotations

from typing import Any

from opensage.services.wiring import Services

Params = dict[str, Any]


def create_transform_job(services: Services, params: Params) -> Params:
    return {"TransformJobArn": services.transform.create(params)}


def describe_transform_job(services: Services, params: Params) -> Params:
    return services.transform.describe(params["TransformJobName"])


def list_transform_jobs(services: Services, params: Params) -> Params:
    return services.transform.list(params)


def stop_transform_job(services: Services, params: Params) -> None:
    services.transform.stop(params["TransformJobName"])
