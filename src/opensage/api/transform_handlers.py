"""SageMaker batch transform handlers: CreateTransformJob, DescribeTransformJob,
ListTransformJobs, StopTransformJob (the service is ``backend.transform``)."""

from __future__ import annotations

from typing import Any

from opensage.services.backend import Backend

Params = dict[str, Any]


def create_transform_job(backend: Backend, params: Params) -> Params:
    return {"TransformJobArn": backend.transform.create(params)}


def describe_transform_job(backend: Backend, params: Params) -> Params:
    return backend.transform.describe(params["TransformJobName"])


def list_transform_jobs(backend: Backend, params: Params) -> Params:
    return backend.transform.list(params)


def stop_transform_job(backend: Backend, params: Params) -> None:
    backend.transform.stop(params["TransformJobName"])
