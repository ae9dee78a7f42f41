"""Replacing instances that died.

An instance whose process exits unexpectedly (a crash, a kill -9) is replaced: the watcher
(woken by the exit, and looking every ``WATCH_SECONDS`` anyway) starts a new worker in the
variant's fleet and swaps it in once it passes ``/ping``; meanwhile the router skips the dead
one (the runtime retries a request whose instance vanished on another healthy one, or waits
briefly for the replacement). A replacement that does not come up is retried with back-off.
"""

from __future__ import annotations

import itertools
import logging
import threading

from opensage.services.endpoints.live import Hosting, LiveEndpoint, ServedVariant
from opensage.serving.fleet import WorkerFailed
from opensage.serving.process import Worker

WATCH_SECONDS = 1.0
REPLACE_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
log = logging.getLogger(__name__)


class Watcher:
    def __init__(self, hosting: Hosting) -> None:
        self.hosting = hosting
        self._replacing: set[str] = set()  # keys of dead workers being replaced
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="endpoint-watch")
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        hosting = self.hosting
        while not hosting.closing.is_set():
            hosting.wake.wait(WATCH_SECONDS)
            hosting.wake.clear()
            if hosting.closing.is_set():
                return
            try:
                self.check()
            except Exception:
                log.exception("checking endpoint instances failed")

    def check(self) -> None:
        with self.hosting.lock:
            lives = list(self.hosting.live.values())
        for live in lives:
            for served in list(live.variants.values()):
                for dead in served.fleet.dead():
                    if dead.key in self._replacing:
                        continue
                    self._replacing.add(dead.key)
                    threading.Thread(target=self._replace, args=(live, served, dead),
                                     daemon=True, name=f"replace-{live.name}").start()

    def _replace(self, live: LiveEndpoint, served: ServedVariant, dead: Worker) -> None:
        """Start a new instance for ``dead`` and swap it into the router once it is up."""
        hosting = self.hosting
        code = dead.proc.returncode if dead.proc is not None else None
        hosting.log(live.name, f"{served.name}/{dead.instance_id}",
                    f"The instance exited unexpectedly (exit status {code}); replacing it.")
        log.warning("endpoint %s: instance %s of variant %s exited (%s); replacing it",
                    live.name, dead.instance_id, served.name, code)
        try:
            for attempt in itertools.count():
                if hosting.closing.is_set() or not self._serving(live):
                    return
                try:
                    [worker] = served.fleet.start(1)
                except WorkerFailed as e:
                    hosting.log(live.name, f"{served.name}/{dead.instance_id}",
                                f"The replacement instance did not pass the ping health "
                                f"check: {e}")
                    backoff = REPLACE_BACKOFF_SECONDS
                    if hosting.closing.wait(backoff[min(attempt, len(backoff) - 1)]):
                        return
                    continue
                with hosting.lock:
                    swapped = self._serving(live) and served.fleet.swap(dead, worker)
                    if swapped:
                        live.reroute()
                if not swapped:  # deleted, redeployed or resized meanwhile
                    worker.stop(1.0)
                return
        except Exception:
            log.exception("replacing instance %s of endpoint %s failed", dead.instance_id,
                          live.name)
        finally:
            self._replacing.discard(dead.key)

    def _serving(self, live: LiveEndpoint) -> bool:
        return self.hosting.live.get(live.name.lower()) is live
