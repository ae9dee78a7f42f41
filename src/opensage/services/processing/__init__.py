"""Processing jobs: CreateProcessingJob and friends (``service``), their lifecycle
(``states``), and what a request may ask for here (``definition``)."""

from opensage.services.processing.service import ProcessingService

__all__ = ["ProcessingService"]
