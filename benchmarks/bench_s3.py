"""S3 GetObject of a 1 KiB object: request rate and latency against one server worker.

The server runs as a subprocess (``opensage server --port 0``); the client is a few threads,
each with its own keep-alive ``http.client`` connection, sending the GET that boto3 would
(path-style, with a SigV4-shaped Authorization header so that routing takes the same path).
Prints one JSON summary. Run: ``.venv/bin/python -m benchmarks.bench_s3 [--seconds 3]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64)


def start_server(data_dir: str) -> tuple[subprocess.Popen[str], int]:
    exe = Path(sys.executable).parent / "opensage"
    proc = subprocess.Popen([str(exe), "server", "--port", "0", "--data-dir", data_dir,
                             "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("PORT="):
            port = int(line.strip().split("=", 1)[1])
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
            return proc, port
    proc.kill()
    raise RuntimeError("the server did not print PORT=<n>")


def request(conn: http.client.HTTPConnection, method: str, path: str,
            body: bytes = b"") -> tuple[int, bytes]:
    conn.request(method, path, body=body or None,
                 headers={"Authorization": AUTH, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/_opensage/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker(port: int, path: str, stop_at: float, warm_until: float, out: list[float],
           errors: list[int], payload: bytes) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    local: list[float] = []
    while True:
        t0 = time.perf_counter()
        if t0 >= stop_at:
            break
        status, body = request(conn, "GET", path)
        t1 = time.perf_counter()
        if status != 200 or body != payload:
            errors.append(status)
        elif t0 >= warm_until:
            local.append(t1 - t0)
    conn.close()
    out.extend(local)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    payload = os.urandom(args.size)
    with tempfile.TemporaryDirectory(prefix="opensage-bench-") as data_dir:
        proc, port = start_server(data_dir)
        try:
            wait_ready(port)
            setup = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            assert request(setup, "PUT", "/bench")[0] == 200
            assert request(setup, "PUT", "/bench/obj-1k", payload)[0] == 200
            setup.close()
            latencies: list[float] = []
            errors: list[int] = []
            start = time.perf_counter()
            warm_until = start + 0.5
            cpu_timer = threading.Timer(0.5, lambda: cpu.append(cpu_seconds(proc.pid)))
            cpu: list[float | None] = []
            cpu_timer.start()
            stop_at = warm_until + args.seconds
            threads = [threading.Thread(target=worker, args=(port, "/bench/obj-1k", stop_at,
                                                             warm_until, latencies, errors,
                                                             payload))
                       for _ in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            cpu.append(cpu_seconds(proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    latencies.sort()
    n = len(latencies)
    summary = {
        "benchmark": "s3 GetObject",
        "object_bytes": args.size,
        "server_workers": 1,
        "client_threads": args.threads,
        "seconds": args.seconds,
        "requests": n,
        "errors": len(errors),
        "requests_per_s": round(n / args.seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3) if n else None,
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 3) if n else None,
        "server_cpu_us_per_request": (
            round((cpu[1] - cpu[0]) / n * 1e6, 1)
            if n and len(cpu) == 2 and None not in cpu else None),  # type: ignore[operator]
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
