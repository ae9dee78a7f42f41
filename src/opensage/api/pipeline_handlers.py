"""SageMaker Pipelines handlers (the service is ``services.pipelines``)."""

from __future__ import annotations

from typing import Any

from opensage.services.wiring import Services

Params = dict[str, Any]


def create_pipeline(services: Services, params: Params) -> Params:
    return {"PipelineArn": services.pipelines.create(params)}


def update_pipeline(services: Services, params: Params) -> Params:
    return services.pipelines.update(params)


def describe_pipeline(services: Services, params: Params) -> Params:
    return services.pipelines.describe(params)


def list_pipelines(services: Services, params: Params) -> Params:
    return services.pipelines.list(params)


def delete_pipeline(services: Services, params: Params) -> Params:
    return services.pipelines.delete(params)


def list_pipeline_versions(services: Services, params: Params) -> Params:
    return services.pipelines.versions(params)


def update_pipeline_version(services: Services, params: Params) -> Params:
    return services.pipelines.update_version(params)


def start_pipeline_execution(services: Services, params: Params) -> Params:
    return {"PipelineExecutionArn": services.pipelines.start_execution(params)}


def describe_pipeline_execution(services: Services, params: Params) -> Params:
    return services.pipelines.describe_execution(params["PipelineExecutionArn"])


def describe_pipeline_definition_for_execution(services: Services, params: Params) -> Params:
    return services.pipelines.definition_for_execution(params["PipelineExecutionArn"])


def list_pipeline_executions(services: Services, params: Params) -> Params:
    return services.pipelines.list_executions(params)


def list_pipeline_execution_steps(services: Services, params: Params) -> Params:
    return services.pipelines.list_steps(params)


def list_pipeline_parameters_for_execution(services: Services, params: Params) -> Params:
    return services.pipelines.list_parameters(params)


def stop_pipeline_execution(services: Services, params: Params) -> Params:
    return services.pipelines.stop_execution(params)


def retry_pipeline_execution(services: Services, params: Params) -> Params:
    return services.pipelines.retry_execution(params)


def update_pipeline_execution(services: Services, params: Params) -> Params:
    return services.pipelines.update_execution(params)


def send_pipeline_execution_step_success(services: Services, params: Params) -> Params:
    return services.pipelines.callback(params, success=True)


def send_pipeline_execution_step_failure(services: Services, params: Params) -> Params:
    return services.pipelines.callback(params, success=False)
