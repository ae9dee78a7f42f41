"""SageMaker endpoint handlers: CreateEndpoint, DescribeEndpoint, ListEndpoints,
UpdateEndpoint, DeleteEndpoint (the service is ``backend.endpoints``)."""

from __future__ import annotations

from typing import Any

from opensage.services.backend import Backend

Params = dict[str, Any]


def create_endpoint(backend: Backend, params: Params) -> Params:
    return {"EndpointArn": backend.endpoints.create(params)}


def describe_endpoint(backend: Backend, params: Params) -> Params:
    return backend.endpoints.describe(params["EndpointName"])


def list_endpoints(backend: Backend, params: Params) -> Params:
    return backend.endpoints.list(params)


def update_endpoint(backend: Backend, params: Params) -> Params:
    return {"EndpointArn": backend.endpoints.update(params)}


def delete_endpoint(backend: Backend, params: Params) -> None:
    backend.endpoints.delete(params["EndpointName"])


# -- UpdateEndpointWeightsAndCapacities (added with autoscaling) ---------------------------
def update_endpoint_weights_and_capacities(backend: Backend, params: Params) -> Params:
    arn, _ = backend.endpoints.set_capacities(params["EndpointName"],
                                              params["DesiredWeightsAndCapacities"])
    return {"EndpointArn": arn}
