"""Script-mode serving: InvokeEndpoint of a scikit-learn model through the user's
``inference.py`` (``model_fn`` only; the container's default ``input_fn``/``predict_fn``/
``output_fn``) versus ``mlflow models serve`` of the same model, same run.

* opensage: ``opensage server`` subprocess, ``sagemaker-scikit-learn:1.2-1-cpu-py3``, one
  ``ml.m5.large`` instance (one ``framework_worker.py`` process in the sklearn 1.2-1
  environment); a one-row ``text/csv`` body, ``Accept: text/csv``.
* mlflow: the same pickled estimator loaded and saved with ``mlflow.sklearn.save_model``,
  served by ``mlflow models serve --env-manager local`` on 127.0.0.1, ``{"inputs": [[...]]}``;
  mlflow runs from a throwaway venv (``--mlflow-python``, or one made with uv in
  ``/tmp/mlflow-sk-venv`` with the environment's scikit-learn version), never a dependency.

The handler's own time is measured inside the sklearn environment: ``framework_worker``'s
``Handler.invoke`` on the same payload (decode, ``predict``, encode), median of many calls.
The p50 overhead is the 1-connection p50 through the whole stack minus that.

Run: ``.venv/bin/python -m benchmarks.bench_invoke_framework [--seconds 5] [--connections 8]``
(``OPENSAGE_FRAMEWORKS_DIR`` picks the environments' directory; default: the tests' shared one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_invoke import (
    AUTH,
    BUCKET,
    ROLE,
    clients,
    cpu_seconds,
    free_port,
    http_request,
    log,
    machine,
    opensage,
    rss_mb,
    run_load,
    wait_in_service,
)

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
MLFLOW_VENV = Path("/tmp/mlflow-sk-venv")
WORKER = Path(__file__).resolve().parents[1] / "src/opensage/serving/framework_worker.py"
INFERENCE = """
import os
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""
TRAIN = """
import json, sys, joblib, numpy as np
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
x = rng.normal(size=(2000, 10))
y = (x @ rng.normal(size=10) > 0).astype(int)
joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), sys.argv[1])
"""
HANDLER_TIME = """
import importlib.util, json, statistics, sys, time
spec = importlib.util.spec_from_file_location("framework_worker", sys.argv[1])
fw = importlib.util.module_from_spec(spec); spec.loader.exec_module(fw)
handler = fw.Handler("sklearn", sys.argv[2], sys.argv[3], {"SAGEMAKER_PROGRAM": "inference.py"})
body = sys.argv[4].encode()
times = []
for _ in range(5000):
    t0 = time.perf_counter()
    out, kind = handler.invoke(body, "text/csv", "text/csv")
    times.append(time.perf_counter() - t0)
x = fw.decode(body.decode(), "text/csv").astype("float32")
predict = []
for _ in range(5000):
    t0 = time.perf_counter()
    handler.model.predict(x)
    predict.append(time.perf_counter() - t0)
print(json.dumps({"handler_ms": round(statistics.median(times) * 1000, 4),
                  "predict_ms": round(statistics.median(predict) * 1000, 4),
                  "answer": out.decode()}))
"""


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def sklearn_python() -> Path:
    from opensage.runner.environments import Environments, framework_for_image

    framework = framework_for_image(IMAGE, script_mode=True)
    assert framework is not None
    from opensage.testing import wheelhouse_for_tests

    root = Path(os.environ["OPENSAGE_FRAMEWORKS_DIR"])
    return Environments(root, wheelhouse=wheelhouse_for_tests()).python(framework, log=log)


def mlflow_python(given: str | None, sklearn_version: str) -> Path:
    if given:
        return Path(given)
    python = MLFLOW_VENV / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import mlflow, sklearn"], check=False,
                           capture_output=True) if python.exists() else None
    if probe is None or probe.returncode != 0:
        log(f"creating {MLFLOW_VENV} with mlflow (a throwaway venv, not a dependency)")
        uv = [sys.executable, "-m", "uv"]
        subprocess.run([*uv, "venv", "--python", "python3", str(MLFLOW_VENV)], check=True)
        subprocess.run([*uv, "pip", "install", "--python", str(python), "mlflow",
                        f"scikit-learn=={sklearn_version}", "numpy<2"], check=True)
    return python


def mlflow_serve(python: Path, model_file: Path, work: Path, workers: int) -> Any:
    model_dir = work / f"mlflow-model-{workers}"
    subprocess.run([str(python), "-c", (
        "import sys, joblib, mlflow.sklearn\n"
        "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2])\n"),
        str(model_file), str(model_dir)], check=True, capture_output=True, env=clean_env())
    port = free_port()
    env = {**clean_env(), "MLFLOW_TRACKING_URI": f"file://{work}/mlruns",
           "PATH": f"{python.parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    errors = open(work / "mlflow.log", "w")  # noqa: SIM115 - closed by the caller's proc
    proc = subprocess.Popen([str(python.parent / "mlflow"), "models", "serve", "-m",
                             str(model_dir), "--env-manager", "local", "-h", "127.0.0.1",
                             "-p", str(port), "-w", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=errors, env=env,
                            start_new_session=True)
    import socket

    deadline = time.monotonic() + 180
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in s.recv(100):
                    return port, proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("mlflow models serve did not start: "
                               + (work / "mlflow.log").read_text()[-2000:])
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--mlflow-python", help="a python with mlflow and scikit-learn")
    parser.add_argument("--mlflow-workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    from opensage.testing import frameworks_dir_for_tests

    os.environ.setdefault("OPENSAGE_FRAMEWORKS_DIR", str(frameworks_dir_for_tests()))

    import io
    import tarfile

    import numpy as np

    python = sklearn_python()
    row = np.random.default_rng(1).normal(size=(1, 10))
    csv = ",".join(f"{v:.6f}" for v in row[0])
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_file = work / "model.joblib"
        subprocess.run([str(python), "-c", TRAIN, str(model_file)], check=True,
                       env=clean_env())
        code = work / "code"
        code.mkdir()
        (code / "inference.py").write_text(INFERENCE)
        measured = json.loads(subprocess.run(
            [str(python), "-c", HANDLER_TIME, str(WORKER), str(work), str(code), csv],
            check=True, capture_output=True, text=True, env=clean_env()).stdout)
        expected = measured.pop("answer").strip()
        results["model"] = measured
        sklearn_version = subprocess.run(
            [str(python), "-c", "import sklearn; print(sklearn.__version__)"], check=True,
            capture_output=True, text=True, env=clean_env()).stdout.strip()

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(model_file, "model.joblib")
            tar.add(code / "inference.py", "code/inference.py")
        (work / "data").mkdir()
        with opensage(work / "data") as (url, proc):
            c = clients(url)
            name = "bench-sklearn"
            c["s3"].create_bucket(Bucket=BUCKET)
            c["s3"].put_object(Bucket=BUCKET, Key=f"{name}/model.tar.gz", Body=buf.getvalue())
            c["sagemaker"].create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
                "Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{name}/model.tar.gz",
                "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}})
            c["sagemaker"].create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large"}])
            started = time.monotonic()
            c["sagemaker"].create_endpoint(EndpointName=name, EndpointConfigName=name)
            wait_in_service(c["sagemaker"], name, timeout=600)
            results["create_endpoint_to_in_service_s"] = round(time.monotonic() - started, 2)
            check = c["sagemaker-runtime"].invoke_endpoint(
                EndpointName=name, ContentType="text/csv", Accept="text/csv",
                Body=csv)["Body"].read().decode().strip()
            assert check == expected, (check, expected)
            port = int(url.rsplit(":", 1)[1])
            request = http_request(port, f"/endpoints/{name}/invocations", csv.encode(),
                                   {"Content-Type": "text/csv", "Accept": "text/csv",
                                    "Authorization": AUTH})
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

        mlflow = mlflow_python(args.mlflow_python, sklearn_version)
        body = json.dumps({"inputs": row.tolist()}).encode()
        for workers in args.mlflow_workers:
            port, mproc = mlflow_serve(mlflow, model_file, work, workers)
            try:
                request = http_request(port, "/invocations", body,
                                       {"Content-Type": "application/json"})
                log(f"mlflow ({workers} worker(s)): warm-up, then load")
                run_load(port, request, 1.0, args.connections)
                before = cpu_seconds(mproc.pid)
                results[f"mlflow_w{workers}"] = run_load(port, request, args.seconds,
                                                         args.connections)
                after = cpu_seconds(mproc.pid)
                count = results[f"mlflow_w{workers}"]["requests"]
                results[f"mlflow_w{workers}_cpu_us_per_request"] = round(
                    sum(after[k] - before[k] for k in before) / count * 1e6, 1)
                results[f"mlflow_w{workers}_1conn"] = run_load(port, request, args.seconds, 1)
                results[f"mlflow_w{workers}_rss_mb"] = rss_mb(mproc.pid)
            finally:
                os.killpg(mproc.pid, 15)
                mproc.wait(20)

    handler = results["model"]["handler_ms"]
    summary: dict[str, Any] = {
        "opensage_req_per_s": results["opensage"]["req_per_s"],
        "opensage_p50_overhead_ms": round(results["opensage_1conn"]["p50_ms"] - handler, 3)}
    for workers in args.mlflow_workers:
        rate = results[f"mlflow_w{workers}"]["req_per_s"]
        summary[f"ratio_vs_mlflow_w{workers}"] = round(
            results["opensage"]["req_per_s"] / rate, 2) if rate else None
    results["summary"] = summary
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
