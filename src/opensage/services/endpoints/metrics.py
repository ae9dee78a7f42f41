"""Invocation metrics: each InvokeEndpoint's outcome is recorded on the invocation path
(an append, no store access) and written to the metric store in batches, once a second,
as the ``AWS/SageMaker`` metrics AWS publishes per endpoint and variant."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from opensage.services.metrics import MetricStore

NAMESPACE = "AWS/SageMaker"
FLUSH_SECONDS = 1.0
log = logging.getLogger(__name__)
# endpoint, variant, HTTP status, model latency (µs), overhead latency (µs)
Sample = tuple[str, str, int, float, float]


class InvocationMetrics:
    def __init__(self, metrics: MetricStore, instances: Callable[[str, str], int]) -> None:
        """``instances(endpoint, variant)``: how many instances serve it now."""
        self.metrics = metrics
        self.instances = instances
        self._samples: collections.deque[Sample] = collections.deque()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, sample: Sample) -> None:
        self._samples.append(sample)

    def start(self) -> None:
        self._closing.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="endpoint-metrics")
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def clear(self) -> None:
        self._samples.clear()

    def _loop(self) -> None:
        while not self._closing.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:
                log.exception("writing endpoint metrics failed")

    def flush(self) -> None:
        samples = []
        while self._samples:
            samples.append(self._samples.popleft())
        if not samples:
            return
        totals: dict[tuple[str, str], list[float]] = {}
        for endpoint, variant, status, model_us, overhead_us in samples:
            t = totals.setdefault((endpoint, variant), [0, 0, 0, 0.0, 0.0, 0])
            t[0] += 1
            t[1] += 400 <= status < 500
            t[2] += status >= 500
            if status < 400:
                t[3] += model_us
                t[5] += 1
            t[4] += overhead_us
        now = time.time()
        points = []
        for (endpoint, variant), (count, e4, e5, model, overhead, ok) in totals.items():
            dims = {"EndpointName": endpoint, "VariantName": variant}
            instances = self.instances(endpoint, variant) or 1
            points += [("Invocations", dims, now, count, "None"),
                       ("InvocationsPerInstance", dims, now, count / instances, "None"),
                       ("Invocation4XXErrors", dims, now, e4, "None"),
                       ("Invocation5XXErrors", dims, now, e5, "None"),
                       # one point per flush: the interval's mean latency
                       ("OverheadLatency", dims, now, overhead / count, "Microseconds")]
            if ok:
                points.append(("ModelLatency", dims, now, model / ok, "Microseconds"))
        self.metrics.put(NAMESPACE, points)
