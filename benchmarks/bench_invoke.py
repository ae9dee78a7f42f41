"""InvokeEndpoint through the whole stack versus ``mlflow models serve``, on one small XGBoost
model (10 features, 50 trees of depth 6).

* opensage: ``opensage server`` subprocess, the built-in XGBoost image, one ``ml.m5.large``
  instance (one worker process); requests are ``POST /endpoints/<name>/invocations`` with a
  one-row ``text/csv`` body and a SigV4-shaped (unsigned) Authorization header, as boto3's
  would route.
* mlflow: the same booster saved with ``mlflow.xgboost.save_model`` and served by
  ``mlflow models serve --env-manager local`` on 127.0.0.1; the same row as
  ``{"inputs": [[...]]}``. mlflow is never a dependency of opensage: it runs from a throwaway
  virtual environment (``--mlflow-python``, or one made with uv in ``/tmp/mlflow-venv``).

The load is a small asyncio client in its own process: ``--connections`` keep-alive
connections in a closed loop. The overhead is the p50 of one connection's sequential
requests minus the model time, measured in-process on the same payload (parse the CSV row,
``DMatrix``, ``booster.predict``, encode: what the worker's handler does).

Run: ``.venv/bin/python -m benchmarks.bench_invoke [--seconds 5] [--connections 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

BUCKET = "bench"
ROLE = "arn:aws:iam::123456789012:role/bench"
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
AUTH = ("AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/sagemaker/aws4_request, "
        "SignedHeaders=host, Signature=0")
MLFLOW_VENV = Path("/tmp/mlflow-venv")


# -- a model ----------------------------------------------------------------------------------
def train_booster(features: int = 10, rows: int = 2000, rounds: int = 50, seed: int = 0) -> Any:
    import xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    y = x @ rng.normal(size=features) + rng.normal(scale=0.1, size=rows)
    return xgboost.train({"max_depth": 6, "eta": 0.3, "nthread": 1},
                         xgboost.DMatrix(x, label=y), rounds)


def model_tar_gz(booster: Any) -> bytes:
    raw = bytes(booster.save_raw("ubj"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def clients(url: str) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "k",
              "aws_secret_access_key": "s", "config": Config(retries={"max_attempts": 1})}
    return {name: boto3.client(name, **kwargs)
            for name in ("sagemaker", "s3", "sagemaker-runtime")}


def create_model(c: dict[str, Any], booster: Any, name: str = "bench-xgb") -> str:
    c["s3"].create_bucket(Bucket=BUCKET)
    c["s3"].put_object(Bucket=BUCKET, Key=f"{name}/model.tar.gz", Body=model_tar_gz(booster))
    c["sagemaker"].create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{name}/model.tar.gz"})
    c["sagemaker"].create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    return name


def wait_in_service(sm: Any, name: str, poll: float = 0.01, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
        if status == "InService":
            return
        if status == "Failed" or time.monotonic() > deadline:
            raise RuntimeError(f"endpoint {name} is {status}")
        time.sleep(poll)


@contextmanager
def opensage(data_dir: Path) -> Any:
    from opensage.testing import server_process

    with server_process(data_dir) as (url, proc):
        yield url, proc


# -- load -------------------------------------------------------------------------------------
async def _connection(port: int, request: bytes, end: float, latencies: list[float],
                      errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    clock = time.perf_counter
    while True:
        start = clock()
        if start >= end:
            break
        writer.write(request)
        status = int((await reader.readline()).split(None, 2)[1])
        length = 0
        chunked = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await reader.readexactly(length)
        latencies.append(clock() - start)
        if status >= 300:
            errors[0] += 1
    writer.close()


def _load_process(port: int, request: bytes, seconds: float, connections: int,
                  queue: Any) -> None:
    latencies: list[float] = []
    errors = [0]

    async def main() -> None:
        end = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, request, end, latencies, errors)
                               for _ in range(connections)))

    started = time.perf_counter()
    asyncio.run(main())
    queue.put((latencies, errors[0], time.perf_counter() - started))


def http_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def run_load(port: int, request: bytes, seconds: float, connections: int) -> dict[str, float]:
    queue: Any = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=_load_process,
                                           args=(port, request, seconds, connections, queue))
    proc.start()
    latencies, errors, elapsed = queue.get()
    proc.join()
    latencies.sort()

    def pick(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)

    return {"connections": connections, "requests": len(latencies), "errors": errors,
            "req_per_s": round(len(latencies) / elapsed, 1), "p50_ms": pick(0.5),
            "p99_ms": pick(0.99), "mean_ms": round(statistics.fmean(latencies) * 1000, 3)}


def model_time(booster: Any, payload: bytes, n: int = 3000) -> dict[str, float]:
    """What the worker does with one request, in-process: (parse, DMatrix, predict, encode)
    and ``booster.predict`` alone; medians in ms."""
    import xgboost

    from opensage.algorithms.xgboost.serve import encode, parse_csv

    booster.set_param({"nthread": 1})
    handler, predict = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        matrix = xgboost.DMatrix(parse_csv(payload), nthread=1)
        t1 = time.perf_counter()
        out = booster.predict(matrix, validate_features=False)
        t2 = time.perf_counter()
        encode(out, "text/csv")
        t3 = time.perf_counter()
        handler.append(t3 - t0)
        predict.append(t2 - t1)
    return {"handler_ms": round(statistics.median(handler) * 1000, 4),
            "predict_ms": round(statistics.median(predict) * 1000, 4)}


# -- mlflow -----------------------------------------------------------------------------------
def mlflow_python(given: str | None) -> Path:
    if given:
        return Path(given)
    python = MLFLOW_VENV / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import mlflow, xgboost"],
                           check=False, capture_output=True) if python.exists() else None
    if probe is None or probe.returncode != 0:
        uv = shutil.which("uv") or "uv"
        log(f"creating {MLFLOW_VENV} with mlflow (a throwaway venv, not a dependency)")
        subprocess.run([uv, "venv", "--python", f"{sys.version_info[0]}.{sys.version_info[1]}",
                        str(MLFLOW_VENV)], check=True)
        subprocess.run([uv, "pip", "install", "--python", str(python), "mlflow",
                        "xgboost==" + __import__("xgboost").__version__], check=True)
    return python


@contextmanager
def mlflow_server(python: Path, booster: Any, work: Path, workers: int) -> Any:
    model_file = work / "booster.ubj"
    booster.save_model(str(model_file))
    model_dir = work / f"mlflow-model-{workers}"
    if not model_dir.exists():
        subprocess.run([str(python), "-c", (
            "import sys, xgboost, mlflow.xgboost\n"
            "b = xgboost.Booster(); b.load_model(sys.argv[1])\n"
            "mlflow.xgboost.save_model(b, sys.argv[2])\n"), str(model_file), str(model_dir)],
            check=True, capture_output=True)
    port = free_port()
    errors = open(work / "mlflow.log", "w")  # noqa: SIM115 - closed below
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{work}/mlruns",
           "PATH": f"{python.parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(python.parent / "mlflow"), "models", "serve", "-m",
                             str(model_dir), "--env-manager", "local", "-h", "127.0.0.1",
                             "-p", str(port), "-w", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=errors,
                            env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b" 200 " in s.recv(100):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow models serve did not start: "
                                   + (work / "mlflow.log").read_text()[-2000:])
            time.sleep(0.2)
        yield port, proc
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)
        errors.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of a process and of its children (the workers), apart."""
    import psutil

    def of(proc: Any) -> float:
        times = proc.cpu_times()
        return times.user + times.system

    root = psutil.Process(pid)
    children = 0.0
    for child in root.children(recursive=True):
        try:
            children += of(child)
        except psutil.Error:
            pass
    return {"server": of(root), "children": children}


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return round(total / 2**20, 1)


# -- main -------------------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "load_avg": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--mlflow-python", help="a python with mlflow and xgboost installed")
    parser.add_argument("--mlflow-workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    booster = train_booster()
    row = np.random.default_rng(1).normal(size=(1, 10)).astype(np.float32)
    csv = ",".join(f"{v:.6f}" for v in row[0]).encode()
    results: dict[str, Any] = {"machine": machine(), "model": model_time(booster, csv)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        with opensage(work / "data") as (url, proc):
            c = clients(url)
            name = create_model(c, booster)
            c["sagemaker"].create_endpoint(EndpointName=name, EndpointConfigName=name)
            wait_in_service(c["sagemaker"], name)
            port = int(url.rsplit(":", 1)[1])
            request = http_request(port, f"/endpoints/{name}/invocations", csv,
                                   {"Content-Type": "text/csv", "Authorization": AUTH})
            check = c["sagemaker-runtime"].invoke_endpoint(
                EndpointName=name, ContentType="text/csv", Body=csv)["Body"].read()
            assert abs(float(check) - float(booster.predict(
                __import__("xgboost").DMatrix(row))[0])) < 1e-5, check
            log("opensage: warm-up, then load")
            run_load(port, request, 1.0, args.connections)
            before = cpu_seconds(proc.pid)
            results["opensage"] = run_load(port, request, args.seconds, args.connections)
            after = cpu_seconds(proc.pid)
            count = results["opensage"]["requests"]
            results["opensage_cpu_us_per_request"] = {
                k: round((after[k] - before[k]) / count * 1e6, 1) for k in before}
            results["opensage_1conn"] = run_load(port, request, args.seconds, 1)
            results["opensage_rss_mb"] = rss_mb(proc.pid)

        python = mlflow_python(args.mlflow_python)
        body = json.dumps({"inputs": row.tolist()}).encode()
        for workers in args.mlflow_workers:
            with mlflow_server(python, booster, work, workers) as (port, proc):
                request = http_request(port, "/invocations", body,
                                       {"Content-Type": "application/json"})
                log(f"mlflow ({workers} worker(s)): warm-up, then load")
                run_load(port, request, 1.0, args.connections)
                before = cpu_seconds(proc.pid)
                results[f"mlflow_w{workers}"] = run_load(port, request, args.seconds,
                                                         args.connections)
                after = cpu_seconds(proc.pid)
                count = results[f"mlflow_w{workers}"]["requests"]
                results[f"mlflow_w{workers}_cpu_us_per_request"] = round(
                    sum(after[k] - before[k] for k in before) / count * 1e6, 1)
                results[f"mlflow_w{workers}_1conn"] = run_load(port, request, args.seconds, 1)
                results[f"mlflow_w{workers}_rss_mb"] = rss_mb(proc.pid)

    handler = results["model"]["handler_ms"]
    summary: dict[str, Any] = {
        "opensage_req_per_s": results["opensage"]["req_per_s"],
        "opensage_p50_overhead_ms": round(results["opensage_1conn"]["p50_ms"] - handler, 3),
        "opensage_p50_overhead_vs_predict_only_ms": round(
            results["opensage_1conn"]["p50_ms"] - results["model"]["predict_ms"], 3)}
    for workers in args.mlflow_workers:
        mlflow_rate = results[f"mlflow_w{workers}"]["req_per_s"]
        summary[f"ratio_vs_mlflow_w{workers}"] = round(
            results["opensage"]["req_per_s"] / mlflow_rate, 2) if mlflow_rate else None
    results["summary"] = summary
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
