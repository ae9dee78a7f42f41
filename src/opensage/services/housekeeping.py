"""Housekeeping: one background thread that deletes what has outlived its retention.

Log events older than their group's ``retentionInDays``, audit events older than
``audit_retention_days``, metric points older than
``metric_retention_days`` (0: kept forever) and scaling activities older than six weeks.
``step`` is one pass at an explicit time (tests call it with a fake clock); the thread runs it
at start and then every ``housekeeping_interval_seconds``, off every request path. Each purge
deletes in small transactions, so writers never wait long behind it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from opensage.services.logs import LogService
from opensage.services.metrics import MetricStore
from opensage.settings import Settings

__all__ = ["Housekeeping"]

DAY_SECONDS = 86_400.0
log = logging.getLogger(__name__)


class Housekeeping:
    def __init__(self, settings: Settings, logs: LogService, metrics: MetricStore,
                 purge_activities: Callable[[float], int],
                 purge_audit: Callable[[float], int] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.logs, self.metrics = settings, logs, metrics
        self.purge_activities = purge_activities
        self.purge_audit = purge_audit
        self.clock = clock
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self, now: float | None = None) -> dict[str, int]:
        """Purge everything expired at ``now`` (epoch seconds); how many of each were."""
        at = self.clock() if now is None else now
        purges: dict[str, Callable[[], int]] = {
            "log events": lambda: self.logs.purge_expired(int(at * 1000)),
            "scaling activities": lambda: self.purge_activities(at)}
        if self.purge_audit is not None:  # older than audit_retention_days
            purge_audit = self.purge_audit
            purges["audit events"] = lambda: purge_audit(at)
        days = self.settings.metric_retention_days
        if days > 0:
            purges["metric points"] = lambda: self.metrics.purge_before(at - days * DAY_SECONDS)
        counts: dict[str, int] = {}
        for what, purge in purges.items():
            try:  # one failing purge (a locked database) must not stop the others
                counts[what] = purge()
            except Exception:
                log.exception("housekeeping: purging expired %s failed", what)
        if any(counts.values()):
            log.info("housekeeping purged %s", ", ".join(
                f"{n} {what}" for what, n in counts.items() if n))
        return counts

    def start(self) -> None:
        self._closing.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="housekeeping")
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            self.step()
            if self._closing.wait(self.settings.housekeeping_interval_seconds):
                return
