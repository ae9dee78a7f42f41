"""Application Auto Scaling handlers (the service is ``services.autoscaling``)."""

from __future__ import annotations

from typing import Any

from opensage.services.wiring import Services

Params = dict[str, Any]


def register_scalable_target(services: Services, params: Params) -> Params:
    return {"ScalableTargetARN": services.autoscaling.register(params)}


def describe_scalable_targets(services: Services, params: Params) -> Params:
    return services.autoscaling.describe_targets(params)


def deregister_scalable_target(services: Services, params: Params) -> None:
    services.autoscaling.deregister(params)


def put_scaling_policy(services: Services, params: Params) -> Params:
    return services.autoscaling.put_policy(params)


def describe_scaling_policies(services: Services, params: Params) -> Params:
    return services.autoscaling.describe_policies(params)


def delete_scaling_policy(services: Services, params: Params) -> None:
    services.autoscaling.delete_policy(params)


def describe_scaling_activities(services: Services, params: Params) -> Params:
    return services.autoscaling.describe_activities(params)
