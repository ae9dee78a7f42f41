"""A small closed-loop HTTP load generator: keep-alive connections in worker processes."""

from __future__ import annotations

import http.client
import multiprocessing as mp
import socket
import statistics
import time
from typing import Any
from urllib.parse import urlparse


def _worker(url: str, method: str, path: str, body: bytes, headers: dict[str, str],
            seconds: float, queue: Any) -> None:
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port)
    conn.connect()
    # As urllib3 (botocore) does: headers and body leave in separate writes, and Nagle plus
    # delayed ACKs would otherwise add 40 ms to every POST.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        if start >= end:
            break
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status >= 300:
            errors += 1
        latencies.append(time.perf_counter() - start)
    queue.put((latencies, errors))


def run_load(url: str, method: str, path: str, *, body: bytes = b"",
             headers: dict[str, str] | None = None, seconds: float = 5.0,
             clients: int = 2) -> dict[str, float]:
    """Requests per second and latency percentiles (ms) over ``seconds``."""
    queue: Any = mp.Queue()
    procs = [mp.Process(target=_worker, args=(url, method, path, body, headers or {}, seconds,
                                              queue)) for _ in range(clients)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    latencies = sorted(lat for lats, _ in results for lat in lats)
    errors = sum(e for _, e in results)
    return summarize(latencies, errors, min(elapsed, seconds + 0.5))


def summarize(latencies: list[float], errors: int, seconds: float) -> dict[str, float]:
    latencies = sorted(latencies)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return {"requests": len(latencies), "errors": errors,
            "req_per_s": round(len(latencies) / seconds, 1),
            "p50_ms": round(pick(0.50), 3), "p99_ms": round(pick(0.99), 3),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 3)}
