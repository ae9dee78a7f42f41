"""SageMaker operation handlers: each takes validated params, calls a service, returns a dict.

Registered by name (``create_model`` serves ``CreateModel``); operations with no function
here answer ``NotImplementedException`` naming the operation.
"""

from __future__ import annotations

from typing import Any

from opensage.services import hosting, kinds, tagging
from opensage.services import search as search_service
from opensage.services.backend import Backend

Params = dict[str, Any]


# -- models ---------------------------------------------------------------------------------
def create_model(backend: Backend, params: Params) -> Params:
    return {"ModelArn": hosting.create_model(backend, params).arn}


def describe_model(backend: Backend, params: Params) -> Params:
    return hosting.load(backend, kinds.MODEL, params["ModelName"]).body


def delete_model(backend: Backend, params: Params) -> None:
    hosting.remove(backend, kinds.MODEL, params["ModelName"])


def list_models(backend: Backend, params: Params) -> Params:
    return hosting.summaries(backend, kinds.MODEL, params, key="Models", fields={
        "ModelName": "ModelName", "ModelArn": "ModelArn", "CreationTime": "CreationTime"})


# -- endpoint configurations -----------------------------------------------------------------
def create_endpoint_config(backend: Backend, params: Params) -> Params:
    return {"EndpointConfigArn": hosting.create_endpoint_config(backend, params).arn}


def describe_endpoint_config(backend: Backend, params: Params) -> Params:
    return hosting.load(backend, kinds.ENDPOINT_CONFIG, params["EndpointConfigName"]).body


def delete_endpoint_config(backend: Backend, params: Params) -> None:
    hosting.remove(backend, kinds.ENDPOINT_CONFIG, params["EndpointConfigName"])


def list_endpoint_configs(backend: Backend, params: Params) -> Params:
    return hosting.summaries(backend, kinds.ENDPOINT_CONFIG, params, key="EndpointConfigs",
                             fields={"EndpointConfigName": "EndpointConfigName",
                                     "EndpointConfigArn": "EndpointConfigArn",
                                     "CreationTime": "CreationTime"})


# -- tags -----------------------------------------------------------------------------------
def add_tags(backend: Backend, params: Params) -> Params:
    return {"Tags": tagging.add_tags(backend, params["ResourceArn"], params["Tags"])}


def list_tags(backend: Backend, params: Params) -> Params:
    return tagging.list_tags(backend, params)


def delete_tags(backend: Backend, params: Params) -> None:
    tagging.delete_tags(backend, params["ResourceArn"], params["TagKeys"])


# -- training jobs --------------------------------------------------------------------------
def create_training_job(backend: Backend, params: Params) -> Params:
    return {"TrainingJobArn": backend.training.create(params)}


def describe_training_job(backend: Backend, params: Params) -> Params:
    return backend.training.describe(params["TrainingJobName"])


def list_training_jobs(backend: Backend, params: Params) -> Params:
    return backend.training.list(params)


def stop_training_job(backend: Backend, params: Params) -> None:
    backend.training.stop(params["TrainingJobName"])


def update_training_job(backend: Backend, params: Params) -> Params:
    return {"TrainingJobArn": backend.training.update(params)}


# -- search ---------------------------------------------------------------------------------
def search(backend: Backend, params: Params) -> Params:
    return search_service.search(backend, params)
