"""Automatic model tuning operations: each takes validated params and calls the tuning service."""

from __future__ import annotations

from typing import Any

from opensage.services.wiring import Services

Params = dict[str, Any]


def create_hyper_parameter_tuning_job(services: Services, params: Params) -> Params:
    return {"HyperParameterTuningJobArn": services.tuning.create(params)}


def describe_hyper_parameter_tuning_job(services: Services, params: Params) -> Params:
    return services.tuning.describe(params["HyperParameterTuningJobName"])


def list_hyper_parameter_tuning_jobs(services: Services, params: Params) -> Params:
    return services.tuning.list(params)


def stop_hyper_parameter_tuning_job(services: Services, params: Params) -> None:
    services.tuning.stop(params["HyperParameterTuningJobName"])


def list_training_jobs_for_hyper_parameter_tuning_job(services: Services, params: Params) -> Params:
    return services.tuning.training_jobs(params)
