"""SageMaker endpoint handlers: CreateEndpoint, DescribeEndpoint, ListEndpoints,
UpdateEndpoint, DeleteEndpoint (the service is ``services.endpoints``)."""

from __future__ import annotations

from typing import Any

from opensage.services.wiring import Services

Params = dict[str, Any]


def create_endpoint(services: Services, params: Params) -> Params:
    return {"EndpointArn": services.endpoints.create(params)}


def describe_endpoint(services: Services, params: Params) -> Params:
    return services.endpoints.describe(params["EndpointName"])


def list_endpoints(services: Services, params: Params) -> Params:
    return services.endpoints.list(params)


def update_endpoint(services: Services, params: Params) -> Params:
    return {"EndpointArn": services.endpoints.update(params)}


def delete_endpoint(services: Services, params: Params) -> None:
    services.endpoints.delete(params["EndpointName"])


# -- UpdateEndpointWeightsAndCapacities (added with autoscaling) ---------------------------
def update_endpoint_weights_and_capacities(services: Services, params: Params) -> Params:
    arn, _ = services.endpoints.set_capacities(params["EndpointName"],
                                               params["DesiredWeightsAndCapacities"])
    return {"EndpointArn": arn}
