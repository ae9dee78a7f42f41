"""Several servers on one database: a live server takes over the work of one that died.

Every server holds a lease on each job it runs and each endpoint it serves, renewed while it
lives (``store.leases``). This loop looks every third of a lease's time to live for leases
that expired (their holder was killed) and takes that work over: training, processing and
transform jobs run again (from their checkpoints where they have them), endpoints are
deployed here. ``Leases.take_over`` is a compare-and-set, so exactly one server adopts each.
Tuning jobs and pipeline executions need no help: their reconcile loops claim lapsed leases.
The server that lost the work (it was only cut off, or stalled) learns it at its lease
keeper's next beat and stops it there, recording nothing of it (fencing: ``store.leases``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


class Takeover:
    def __init__(self, interval: float, adopters: Sequence[Callable[[], object]]) -> None:
        self.interval = interval
        self.adopters = adopters
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._closing.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="takeover")
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._closing.wait(self.interval):
            for adopt in self.adopters:
                try:
                    adopt()
                except Exception:  # a database hiccup: the next pass looks again
                    log.exception("taking over the work of a dead server failed")
