"""SageMaker model, endpoint configuration, tag and search handlers: each takes validated
params, calls a service, returns a dict.

Registered by name (``create_model`` serves ``CreateModel``); operations with no function
here answer ``NotImplementedException`` naming the operation.
"""

from __future__ import annotations

from typing import Any

from opensage.services import crud, kinds, models, tagging
from opensage.services import search as search_service
from opensage.services.wiring import Services

Params = dict[str, Any]


# -- models ---------------------------------------------------------------------------------
def create_model(services: Services, params: Params) -> Params:
    return {"ModelArn": models.create_model(services.context, params).arn}


def describe_model(services: Services, params: Params) -> Params:
    return crud.load(services.context, kinds.MODEL, params["ModelName"]).body


def delete_model(services: Services, params: Params) -> None:
    crud.remove(services.context, kinds.MODEL, params["ModelName"])


def list_models(services: Services, params: Params) -> Params:
    return crud.summaries(services.context, kinds.MODEL, params, key="Models", fields={
        "ModelName": "ModelName", "ModelArn": "ModelArn", "CreationTime": "CreationTime"})


# -- endpoint configurations -----------------------------------------------------------------
def create_endpoint_config(services: Services, params: Params) -> Params:
    return {"EndpointConfigArn": models.create_endpoint_config(services.context, params).arn}


def describe_endpoint_config(services: Services, params: Params) -> Params:
    return crud.load(services.context, kinds.ENDPOINT_CONFIG, params["EndpointConfigName"]).body


def delete_endpoint_config(services: Services, params: Params) -> None:
    crud.remove(services.context, kinds.ENDPOINT_CONFIG, params["EndpointConfigName"])


def list_endpoint_configs(services: Services, params: Params) -> Params:
    return crud.summaries(services.context, kinds.ENDPOINT_CONFIG, params, key="EndpointConfigs",
                          fields={"EndpointConfigName": "EndpointConfigName",
                                     "EndpointConfigArn": "EndpointConfigArn",
                                     "CreationTime": "CreationTime"})


# -- tags -----------------------------------------------------------------------------------
def add_tags(services: Services, params: Params) -> Params:
    return {"Tags": tagging.add_tags(services.context, params["ResourceArn"], params["Tags"])}


def list_tags(services: Services, params: Params) -> Params:
    return tagging.list_tags(services.context, params)


def delete_tags(services: Services, params: Params) -> None:
    tagging.delete_tags(services.context, params["ResourceArn"], params["TagKeys"])


# -- search ---------------------------------------------------------------------------------
def search(services: Services, params: Params) -> Params:
    return search_service.search(services.context, params)
