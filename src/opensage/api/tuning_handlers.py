"""Automatic model tuning operations: each takes validated params and calls the tuning service."""

from __future__ import annotations

from typing import Any

from opensage.services.backend import Backend

Params = dict[str, Any]


def create_hyper_parameter_tuning_job(backend: Backend, params: Params) -> Params:
    return {"HyperParameterTuningJobArn": backend.tuning.create(params)}


def describe_hyper_parameter_tuning_job(backend: Backend, params: Params) -> Params:
    return backend.tuning.describe(params["HyperParameterTuningJobName"])


def list_hyper_parameter_tuning_jobs(backend: Backend, params: Params) -> Params:
    return backend.tuning.list(params)


def stop_hyper_parameter_tuning_job(backend: Backend, params: Params) -> None:
    backend.tuning.stop(params["HyperParameterTuningJobName"])


def list_training_jobs_for_hyper_parameter_tuning_job(backend: Backend, params: Params) -> Params:
    return backend.tuning.training_jobs(params)
