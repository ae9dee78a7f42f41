"""Batch transform (see ``service``)."""

from opensage.services.transform.service import TransformService

__all__ = ["TransformService"]
