"""Application Auto Scaling handlers (the service is ``backend.autoscaling``)."""

from __future__ import annotations

from typing import Any

from opensage.services.backend import Backend

Params = dict[str, Any]


def register_scalable_target(backend: Backend, params: Params) -> Params:
    return {"ScalableTargetARN": backend.autoscaling.register(params)}


def describe_scalable_targets(backend: Backend, params: Params) -> Params:
    return backend.autoscaling.describe_targets(params)


def deregister_scalable_target(backend: Backend, params: Params) -> None:
    backend.autoscaling.deregister(params)


def put_scaling_policy(backend: Backend, params: Params) -> Params:
    return backend.autoscaling.put_policy(params)


def describe_scaling_policies(backend: Backend, params: Params) -> Params:
    return backend.autoscaling.describe_policies(params)


def delete_scaling_policy(backend: Backend, params: Params) -> None:
    backend.autoscaling.delete_policy(params)


def describe_scaling_activities(backend: Backend, params: Params) -> Params:
    return backend.autoscaling.describe_activities(params)
