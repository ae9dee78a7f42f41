"""Cross-service reactions as typed listeners: a publisher owns one :class:`Listeners` per
event type; the wiring subscribes the services that react. No global bus: who listens to
what is written in one place (``services.wiring``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
E = TypeVar("E")


class Listeners(Generic[E]):
    def __init__(self, event: str) -> None:
        self.event = event  # for the log, when a listener fails
        self._listeners: list[Callable[[E], None]] = []

    def subscribe(self, listener: Callable[[E], None]) -> None:
        self._listeners.append(listener)

    def publish(self, event: E) -> None:
        """Call every listener; one that raises is logged and does not stop the others, nor
        the publisher (often a job's own thread, which must go on recording the job)."""
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a listener of %s failed", self.event)


@dataclass(frozen=True)
class JobCreated:
    """A processing or transform job's row was written (InProgress), before it runs:
    experiment tracking makes its trial component and lineage now."""

    name: str


@dataclass(frozen=True)
class JobEnded:
    """A processing or transform job reached Completed, Failed or Stopped (its row says
    which): a pipeline step waiting on it moves on, its trial component ends."""

    name: str
