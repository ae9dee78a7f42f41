"""Application Auto Scaling for SageMaker endpoint variants: the service (``service``) and
the lifecycle of its scaling activities (``states``)."""

from opensage.services.autoscaling.service import AutoscalingService, ObjectNotFoundException

__all__ = ["AutoscalingService", "ObjectNotFoundException"]
