"""SageMaker Pipelines: pipelines (with versions), executions and the engine that runs them."""

from opensage.services.pipelines.service import PipelineService

__all__ = ["PipelineService"]
