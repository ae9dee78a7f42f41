"""Real-time endpoints (see ``service``)."""

from opensage.services.endpoints.service import EndpointService

__all__ = ["EndpointService"]
