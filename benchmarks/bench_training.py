"""Training-job speed: opensage's built-in XGBoost against XGBoost run directly in Python.

Three parts (``--part overhead|sdk|large``, repeatable; default: all three), each against one
``opensage server --port 0`` subprocess on a temporary data directory:

``overhead``  A 10,000 x 10 CSV job through boto3: ``CreateTrainingJob`` until
              ``DescribeTrainingJob`` (polled every 50 ms) says ``Completed``, minus XGBoost in
              a Python process timed after its imports (the same CSV read by opensage's own
              reader ``opensage.data.csv.read_csv``, the same parameters and ``num_round``,
              ``nthread`` = SM_NUM_CPUS of ml.m5.large = 2, the same per-round train-rmse
              evaluation, the model saved). Target: < 1 s. The same process's whole wall time
              (interpreter start and imports included) is reported too. The job's time is
              broken down from its SecondaryStatusTransitions and log-event timestamps.
``sdk``       ``Estimator.fit(logs=True)`` of the SageMaker SDK v2 on the same job, from call to
              return, in a fresh subprocess with ``opensage sdk-config``'s environment (and a
              guard that refuses any address but 127.0.0.1): the SDK unchanged, and under
              ``opensage.sdk.fast_polling(<factor>)``. Every sleep the SDK's waiter takes and
              every API call it makes are recorded. Target (fast polling): < 5 s.
``large``     A 1,000,000 x 50 CSV job (tree_method hist, max_depth 6, num_round 50): its wall
              time (CreateTrainingJob -> the job's own Completed timestamp; polling every 1 s
              only to keep the poller off the two cores) as a ratio to XGBoost in a separate
              Python reading the same file with the same reader (timed after its imports), in
              pairs of alternating order. Target: <= 1.1x. ``--raw-readers xgboost`` adds
              XGBoost's own CSV loader (``DMatrix("file?format=csv&label_column=0")``).

Caveats, measured: log-event timestamps are when the server ingested a line, so they lag
when the server is busy; with ``nthread`` = all cores, libgomp's spin-waiting makes XGBoost
up to 10x slower whenever anything else runs (``--omp-wait-policy PASSIVE`` sets
``OMP_WAIT_POLICY`` on both sides: in the job through its ``Environment``, which only takes
effect where the job is a fresh interpreter, since libgomp reads it when xgboost is imported).

Run: ``.venv/bin/python -m benchmarks.bench_training [--part overhead] [--repeats 5]``.
Prints one JSON summary; figures are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT = "000000000000"  # the server's default account
ROLE = f"arn:aws:iam::{ACCOUNT}:role/opensage"
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
INSTANCE_TYPE = "ml.m5.large"  # SM_NUM_CPUS = 2
NTHREAD = 2
BUCKET = "bench-training"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = ("Completed", "Failed", "Stopped")
HYPERPARAMETERS = {"objective": "reg:squarederror", "max_depth": 6, "eta": 0.3,
                   "tree_method": "hist"}
SRC = Path(__file__).resolve().parents[1] / "src"


# ------------------------------------------------------------------------------------ data


def write_csv(path: Path, rows: int, features: int, seed: int = 0,
              chunk: int = 100_000) -> dict[str, float]:
    """Label-first regression CSV (no header), generated with numpy in chunks; the values are
    rounded to 4 decimals and written by pyarrow's CSV writer (numpy's savetxt formats each
    row in Python, minutes for a million rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=features)
    names = [f"c{i}" for i in range(features + 1)]
    schema = pa.schema([(n, pa.float64()) for n in names])
    options = pacsv.WriteOptions(include_header=False, batch_size=chunk)
    with pacsv.CSVWriter(str(path), schema, write_options=options) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.normal(size=(n, features))
            y = x @ weights + 0.5 * np.sin(3 * x[:, 0]) * x[:, 1] + rng.normal(scale=0.1, size=n)
            table = np.round(np.column_stack([y, x]), 4)
            writer.write_table(pa.Table.from_arrays([pa.array(table[:, i])
                                                     for i in range(features + 1)],
                                                    schema=schema))
    return {"seconds": round(time.perf_counter() - started, 2),
            "bytes": path.stat().st_size}


# ------------------------------------------------------------------------- raw XGBoost side


def raw_train(csv_path: Path, params: dict[str, Any], num_round: int, reader: str,
              model_path: Path) -> dict[str, float]:
    """XGBoost directly, in this process: read, DMatrix, train (with the same per-round
    train-rmse evaluation the job prints), save. Seconds per step."""
    import xgboost as xgb

    t0 = time.perf_counter()
    if reader == "opensage":
        from opensage.data.csv import read_csv

        data = read_csv(csv_path)
        t1 = time.perf_counter()
        dtrain = xgb.DMatrix(data.features, label=data.labels, nthread=params["nthread"])
        del data
    else:  # XGBoost's own CSV loader (label_column=0)
        t1 = time.perf_counter()
        dtrain = xgb.DMatrix(f"{csv_path}?format=csv&label_column=0")
    rounds: list[float] = []

    class Clock(xgb.callback.TrainingCallback):  # type: ignore[misc]
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            rounds.append(time.perf_counter())
            return False

    t2 = time.perf_counter()
    booster = xgb.train(dict(params), dtrain, num_boost_round=num_round,
                        evals=[(dtrain, "train")], verbose_eval=False, callbacks=[Clock()])
    t3 = time.perf_counter()
    booster.save_model(str(model_path))
    t4 = time.perf_counter()
    return {"read": t1 - t0, "dmatrix": t2 - t1, "train": t3 - t2,
            "train_to_round0": rounds[0] - t2, "round0_to_last_round": rounds[-1] - rounds[0],
            "save": t4 - t3, "total": t4 - t0}


def raw_subprocess(csv_path: Path, params: dict[str, Any], num_round: int, reader: str,
                   model_path: Path, environment: dict[str, str]) -> dict[str, float]:
    """``raw_train`` in a fresh Python (the job's ``environment`` added to its own): the
    in-process timings, taken after the imports, plus the process's wall time (interpreter
    start and imports included)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--raw-worker",
         json.dumps({"csv": str(csv_path), "params": params, "num_round": num_round,
                     "reader": reader, "model": str(model_path)})],
        check=True, capture_output=True, text=True, env={**os.environ, **environment})
    wall = time.perf_counter() - started
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_wall"] = wall
    return result


def _raw_worker(spec: str) -> None:
    args = json.loads(spec)
    t0 = time.perf_counter()
    import pyarrow.csv  # noqa: F401  (read_csv imports it lazily: count it as an import)
    import xgboost  # noqa: F401

    from opensage.data.csv import read_csv  # noqa: F401
    imports = time.perf_counter() - t0
    result = raw_train(Path(args["csv"]), args["params"], args["num_round"], args["reader"],
                       Path(args["model"]))
    result["imports"] = imports
    print(json.dumps(result))


def cold_import_seconds() -> float:
    """A job process's start-up as the runner does it: ``python -m opensage.runner.launch``
    exec'ing a ``python`` that imports what ``python -m opensage.algorithms.xgboost train``
    imports before it reads data (numpy, pyarrow, xgboost, the spec and contract)."""
    code = ("import opensage.algorithms.xgboost.train, opensage.data.csv, pyarrow.csv, "
            "xgboost")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "opensage.runner.launch", str(NTHREAD),
                    str(os.getpid()), "--", sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------- opensage side


def clients(url: str) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test",
                            region_name=REGION)
    config = Config(retries={"max_attempts": 1}, max_pool_connections=20)
    return {name: session.client(name, endpoint_url=url, config=config)
            for name in ("sagemaker", "s3", "logs")}


def job_request(name: str, train_uri: str, num_round: int,
                environment: dict[str, str]) -> dict[str, Any]:
    hps = {**{k: str(v) for k, v in HYPERPARAMETERS.items()}, "num_round": str(num_round)}
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv",
                             "DataSource": {"S3DataSource": {
                                 "S3DataType": "S3Prefix", "S3Uri": train_uri,
                                 "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output/"},
        "ResourceConfig": {"InstanceType": INSTANCE_TYPE, "InstanceCount": 1,
                           "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": hps,
    }
    if environment:
        request["Environment"] = environment
    return request


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux); its reaped children are not included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_events(logs: Any, job: str) -> list[dict[str, Any]]:
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP,
                                        logStreamNamePrefix=job + "/")["logStreams"]
    events: list[dict[str, Any]] = []
    for stream in streams:
        token = None
        while True:
            kwargs = {"nextToken": token} if token else {}
            page = logs.get_log_events(logGroupName=LOG_GROUP,
                                       logStreamName=stream["logStreamName"],
                                       startFromHead=True, **kwargs)
            events += page["events"]
            if not page["events"] or page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
    return sorted(events, key=lambda e: e["timestamp"])


def _ts(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def run_job(c: dict[str, Any], name: str, train_uri: str, num_round: int, poll: float,
            server_pid: int | None = None,
            environment: dict[str, str] | None = None) -> dict[str, Any]:
    """Create a job, poll until it ends, and break its wall time down."""
    sm = c["sagemaker"]
    cpu0 = cpu_seconds(server_pid) if server_pid else None
    t0 = time.time()
    sm.create_training_job(**job_request(name, train_uri, num_round, environment or {}))
    t_created = time.time()
    describes = 0
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        describes += 1
        if job["TrainingJobStatus"] in TERMINAL:
            break
        time.sleep(poll)
    t_seen = time.time()
    cpu1 = cpu_seconds(server_pid) if server_pid else None
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"{name}: {job['TrainingJobStatus']}: {job.get('FailureReason')}")
    starts = {t["Status"]: _ts(t["StartTime"]) for t in job["SecondaryStatusTransitions"]}
    events = log_events(c["logs"], name)
    stamps = [(e["timestamp"] / 1000, e["message"]) for e in events]
    first_log = stamps[0][0] if stamps else None
    rounds = [t for t, m in stamps if m.startswith("[") and "train-rmse" in m]
    matrix = next((t for t, m in stamps if "Train matrix has" in m), None)
    completed = starts["Completed"]
    out: dict[str, Any] = {
        "wall_client": t_seen - t0,  # what a 50 ms poller sees
        "wall_server": completed - t0,  # until the Completed transition was recorded
        "describes": describes,
        "steps": {
            "create_call": t_created - t0,
            "queue_to_downloading": starts["Downloading"] - starts["Starting"],
            "downloading": starts["Training"] - starts["Downloading"],
            "process_start_imports_read_dmatrix": (matrix or first_log or 0) -
                                                  starts["Training"],
            "dmatrix_to_round0": (rounds[0] - matrix) if rounds and matrix else None,
            "round0_to_last_round": (rounds[-1] - rounds[0]) if rounds else None,
            "last_round_to_uploading": starts["Uploading"] - (rounds[-1] if rounds else 0),
            "uploading": completed - starts["Uploading"],
            "completed_to_seen": t_seen - completed,
        },
        "training_time_in_seconds": job.get("TrainingTimeInSeconds"),
        "log_lines": len(stamps),
    }
    if server_pid:
        out["server_cpu_seconds"] = cpu1 - cpu0  # type: ignore[operator]
    return out


def describe_cost(c: dict[str, Any], name: str, server_pid: int, n: int = 200) -> dict[str, float]:
    """Client latency and server CPU of one DescribeTrainingJob (of a finished job): what a
    poller costs the machine the job trains on."""
    sm = c["sagemaker"]
    latencies = []
    cpu0 = cpu_seconds(server_pid)
    for _ in range(n):
        t0 = time.perf_counter()
        sm.describe_training_job(TrainingJobName=name)
        latencies.append(time.perf_counter() - t0)
    cpu = cpu_seconds(server_pid) - cpu0
    return {"p50_ms": round(statistics.median(latencies) * 1000, 2),
            "server_cpu_ms": round(cpu / n * 1000, 2)}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Field-wise medians of a list of (nested) timing dicts, rounded."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = median_of([r[key] for r in runs])
        elif isinstance(value, (int, float)) or value is None:
            values = [r[key] for r in runs if r[key] is not None]
            out[key] = round(statistics.median(values), 3) if values else None
        else:
            out[key] = value
    return out


def upload(c: dict[str, Any], path: Path, key: str) -> float:
    from boto3.s3.transfer import TransferConfig

    started = time.perf_counter()
    c["s3"].upload_file(str(path), BUCKET, key,
                        Config=TransferConfig(multipart_threshold=64 << 20,
                                              multipart_chunksize=64 << 20, max_concurrency=4))
    return time.perf_counter() - started


# ------------------------------------------------------------------------------- the parts


def variants(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """Label -> environment for each ``--omp-wait-policy`` (``default``: nothing set)."""
    return {("default" if p == "default" else f"OMP_WAIT_POLICY={p}"):
            ({} if p == "default" else {"OMP_WAIT_POLICY": p}) for p in args.omp_wait_policy}


def small_data(c: dict[str, Any], work: Path, args: argparse.Namespace) -> tuple[Path, str,
                                                                                 dict[str, Any]]:
    csv = work / "small" / "train.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    generated = write_csv(csv, args.small_rows, args.small_features, seed=1)
    upload(c, csv, "small/train/train.csv")
    return csv, f"s3://{BUCKET}/small/train", generated


def part_overhead(c: dict[str, Any], work: Path, args: argparse.Namespace,
                  server_pid: int) -> dict[str, Any]:
    import xgboost

    csv, uri, generated = small_data(c, work, args)
    params = {**HYPERPARAMETERS, "nthread": NTHREAD}
    model = work / "small" / "raw-model.ubj"
    run_job(c, "warmup-small", uri, args.num_round, args.poll, server_pid)  # first-use costs
    imports = []
    results: dict[str, Any] = {}
    runs: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
        label: ([], []) for label in variants(args)}
    for i in range(args.repeats):  # interleaved, so that load from other users hits both
        for label, environment in variants(args).items():
            raw, jobs = runs[label]
            raw.append(raw_subprocess(csv, params, args.num_round, "opensage", model,
                                      environment))
            jobs.append(run_job(c, f"small-{i}-{len(jobs)}-{label[-7:].lower()}", uri,
                                args.num_round, args.poll, server_pid, environment))
        imports.append(cold_import_seconds())
    describe = describe_cost(c, f"small-0-0-{next(iter(runs))[-7:].lower()}", server_pid)
    for label, (raw, jobs) in runs.items():
        raw_m, job_m = median_of(raw), median_of(jobs)
        overheads = [j["wall_client"] - r["total"] for j, r in zip(jobs, raw, strict=True)]
        results[label] = {
            "raw": raw_m,
            "job": job_m,
            "overhead_seconds": round(statistics.median(overheads), 3),
            "overhead_all": [round(o, 3) for o in overheads],
            "overhead_vs_fresh_python_seconds": round(
                statistics.median(j["wall_client"] - r["process_wall"]
                                  for j, r in zip(jobs, raw, strict=True)), 3),
            "ratio_job_to_raw": round(job_m["wall_client"] / raw_m["total"], 2),
            "raw_train_all": [round(r["train"], 3) for r in raw],
            "job_wall_all": [round(j["wall_client"], 3) for j in jobs],
        }
    return {
        "rows": args.small_rows, "features": args.small_features, "csv": generated,
        "num_round": args.num_round, "params": params, "xgboost": xgboost.__version__,
        "repeats": args.repeats, "poll_seconds": args.poll, "reader": "opensage",
        "job_process_cold_imports_seconds": round(statistics.median(imports), 3),
        "describe_training_job": describe,
        "variants": results,
        "target_overhead_seconds": 1.0,
    }


SDK_WORKER = r'''
import io, json, socket, sys, time
from contextlib import nullcontext, redirect_stdout

spec = json.loads(sys.argv[1])
violations = []
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo
def _check(host):
    if isinstance(host, bytes):
        host = host.decode()
    if host not in (None, "127.0.0.1", "localhost"):
        violations.append(str(host))
        raise OSError(f"network guard: {host} refused")
def connect(sock, address):
    if sock.family != getattr(socket, "AF_UNIX", None):
        _check(address[0] if isinstance(address, tuple) else address)
    return _connect(sock, address)
def getaddrinfo(host, *a, **k):
    _check(host)
    return _getaddrinfo(host, *a, **k)
socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo

sleeps, calls = [], []
origin = [time.perf_counter()]
_sleep = time.sleep
def sleep(seconds):
    caller = sys._getframe(1).f_globals.get("__name__")
    sleeps.append({"at": round(time.perf_counter() - origin[0], 3), "seconds": seconds,
                   "caller": caller})
    _sleep(seconds)
time.sleep = sleep

t0 = time.perf_counter()
import boto3, sagemaker
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from opensage.sdk import fast_polling
imports = time.perf_counter() - t0

boto_session = boto3.Session()
def before_call(event_name, **kwargs):
    calls.append({"at": round(time.perf_counter() - origin[0], 3),
                  "op": event_name.split(".", 2)[-1]})
boto_session.events.register("before-call", before_call)
session = sagemaker.Session(boto_session=boto_session)
results = []
for i in range(spec["repeats"]):
    estimator = Estimator(image_uri=spec["image"], role=spec["role"], instance_count=1,
                          instance_type=spec["instance_type"], sagemaker_session=session,
                          hyperparameters=spec["hyperparameters"])
    sleeps.clear(); calls.clear()
    printed = io.StringIO()
    polling = fast_polling(spec["factor"]) if spec["factor"] else nullcontext()
    wall0 = time.time()
    origin[0] = time.perf_counter()
    with polling, redirect_stdout(printed):
        estimator.fit({"train": TrainingInput(spec["train"], content_type="text/csv")},
                      logs=True)
    wall = time.perf_counter() - origin[0]
    job = estimator.latest_training_job.describe()
    starts = {t["Status"]: t["StartTime"].timestamp() for t in job["SecondaryStatusTransitions"]}
    created = job["CreationTime"].timestamp()
    poll_sleeps = [s for s in sleeps if s["caller"] in ("sagemaker.session", "opensage.sdk")]
    results.append({
        "fit_seconds": wall,
        "job_seconds": starts["Completed"] - created,
        "fit_start_to_create": created - wall0,
        "completed_to_fit_return": wall0 + wall - starts["Completed"],
        "sdk_poll_sleep_seconds": sum(s["seconds"] for s in poll_sleeps),
        "sleeps": poll_sleeps,
        "other_sleeps": [s for s in sleeps if s not in poll_sleeps],
        "calls": calls[:],
        "streamed_job_log": "train-rmse" in printed.getvalue(),
        "status": job["TrainingJobStatus"],
    })
print("RESULT=" + json.dumps({"imports": imports, "runs": results, "violations": violations}))
'''


def sdk_fit(url: str, work: Path, train_uri: str, num_round: int, factor: float | None,
            repeats: int) -> dict[str, Any]:
    """``Estimator.fit(logs=True)`` in a fresh Python with the SDK environment."""
    from opensage.sdk import write_sdk_config

    config = write_sdk_config(url, ACCOUNT, REGION, path=work / "sdk" / "config.yaml")
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION")}
    env.update({
        "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION, "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        "AWS_CONFIG_FILE": str(work / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    spec = {"image": XGB_IMAGE, "role": ROLE, "instance_type": INSTANCE_TYPE,
            "hyperparameters": {**HYPERPARAMETERS, "num_round": num_round},
            "train": train_uri, "factor": factor, "repeats": repeats}
    out = subprocess.run([sys.executable, "-c", SDK_WORKER, json.dumps(spec)], check=False,
                         env=env,
                         capture_output=True, text=True, timeout=900)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT=")), None)
    if line is None:
        raise RuntimeError(f"SDK worker failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT="))


def part_sdk(url: str, c: dict[str, Any], work: Path, args: argparse.Namespace,
             server_pid: int) -> dict[str, Any]:
    _, uri, _ = small_data(c, work, args)
    # The same job through boto3 (50 ms polling), as the floor the SDK's polling adds to.
    jobs = [run_job(c, f"sdk-peer-{i}", uri, args.num_round, args.poll, server_pid)
            for i in range(args.repeats)]
    peer = statistics.median(j["wall_client"] for j in jobs)
    out: dict[str, Any] = {"boto3_job_seconds": round(peer, 3), "modes": {}}
    for factor in [None, *args.fast_factors]:
        label = "unchanged" if factor is None else f"fast_polling({factor:g})"
        result = sdk_fit(url, work, uri, args.num_round, factor, args.sdk_repeats)
        runs = result["runs"]
        fits = [r["fit_seconds"] for r in runs]
        out["modes"][label] = {
            "fit_seconds_median": round(statistics.median(fits), 3),
            "fit_seconds_all": [round(f, 3) for f in fits],
            "job_seconds_median": round(statistics.median(r["job_seconds"] for r in runs), 3),
            "completed_to_fit_return_median": round(
                statistics.median(r["completed_to_fit_return"] for r in runs), 3),
            "sdk_poll_sleep_seconds_median": round(
                statistics.median(r["sdk_poll_sleep_seconds"] for r in runs), 3),
            "ratio_to_boto3_job": round(statistics.median(fits) / peer, 2),
            "sdk_import_seconds": round(result["imports"], 3),
            "network_violations": result["violations"],
            "streamed_job_log": all(r["streamed_job_log"] for r in runs),
            "example_run": {k: v for k, v in runs[-1].items()},
        }
    out["target_fast_fit_seconds"] = 5.0
    return out


def part_large(c: dict[str, Any], work: Path, args: argparse.Namespace,
               server_pid: int) -> dict[str, Any]:
    import xgboost

    data_dir = Path(args.large_data_dir) if args.large_data_dir else work / "large"
    data_dir.mkdir(parents=True, exist_ok=True)
    csv = data_dir / f"train-{args.large_rows}x{args.large_features}.csv"
    generated: dict[str, Any] = ({"cached": True, "bytes": csv.stat().st_size}
                                 if csv.exists() else
                                 write_csv(csv, args.large_rows, args.large_features, seed=7))
    log(f"large CSV: {generated}")
    uploaded = upload(c, csv, "large/train/train.csv")
    log(f"uploaded in {uploaded:.1f} s")
    uri = f"s3://{BUCKET}/large/train"
    params = {**HYPERPARAMETERS, "nthread": NTHREAD}
    model = work / "large-raw-model.ubj"
    peer_reader = args.raw_readers[0]
    runs: dict[str, tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]] = {
        label: ({r: [] for r in args.raw_readers}, []) for label in variants(args)}
    # Pairs, in alternating order (raw first, then job first), so that a drift in the load
    # other users put on the machine falls on both sides; ratios are taken within each pair.
    for i in range(args.large_repeats):
        for label, environment in variants(args).items():
            raw, jobs = runs[label]

            def raw_side(raw: dict[str, list[dict[str, Any]]] = raw,
                         environment: dict[str, str] = environment, label: str = label) -> None:
                for reader in args.raw_readers:
                    raw[reader].append(raw_subprocess(csv, params, args.num_round, reader,
                                                      model, environment))
                    log(f"{label} raw[{reader}] {raw[reader][-1]['total']:.1f} s")

            if i % 2:
                raw_side()
            jobs.append(run_job(c, f"large-{i}-{len(jobs)}-{label[-7:].lower()}", uri,
                                args.num_round, args.large_poll, server_pid, environment))
            log(f"{label} job {jobs[-1]['wall_server']:.1f} s")
            if not i % 2:
                raw_side()
    results: dict[str, Any] = {}
    for label, (raw, jobs) in runs.items():
        job_m = median_of(jobs)
        raw_m = {reader: median_of(r) for reader, r in raw.items()}
        peer = raw_m[peer_reader]
        pairs = [j["wall_server"] / r["total"] for j, r in zip(jobs, raw[peer_reader],
                                                               strict=True)]
        results[label] = {
            "raw": raw_m,
            "job": job_m,
            "ratio_median_of_pairs": round(statistics.median(pairs), 3),
            "ratio_job_to_raw_in_process": round(job_m["wall_server"] / peer["total"], 3),
            "ratio_job_to_raw_process_wall": round(
                job_m["wall_server"] / peer["process_wall"], 3),
            "ratios_each": [round(x, 3) for x in pairs],
            "job_wall_all": [round(j["wall_server"], 2) for j in jobs],
            "raw_total_all": [round(r["total"], 2) for r in raw[peer_reader]],
            "extra_seconds": round(job_m["wall_server"] - peer["total"], 2),
        }
    return {
        "rows": args.large_rows, "features": args.large_features, "csv": generated,
        "upload_seconds": round(uploaded, 1), "num_round": args.num_round, "params": params,
        "xgboost": xgboost.__version__, "repeats": args.large_repeats,
        "poll_seconds": args.large_poll, "peer_reader": peer_reader,
        "variants": results,
        "target_ratio": 1.1,
    }


def log(message: str) -> None:
    print(f"[bench_training {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr,
          flush=True)


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def code_version() -> dict[str, Any]:
    """The opensage tree measured: commit, uncommitted changes, whether jobs fork from a warm
    server (``OPENSAGE_PRELOAD_ALGORITHMS``, where this tree has one)."""
    root = Path(__file__).resolve().parents[1]

    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True,
                                  check=False).stdout.strip()
        except OSError:
            return ""

    from opensage.settings import Settings

    settings = Settings.from_env()
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_files": git("status", "--porcelain", "--", "src").splitlines(),
            "preload_algorithms": getattr(settings, "preload_algorithms",
                                          "no such setting: every job a fresh interpreter")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", action="append", choices=("overhead", "sdk", "large"),
                        help="run only these parts (repeatable; default: all)")
    parser.add_argument("--num-round", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5, help="small-job repeats")
    parser.add_argument("--poll", type=float, default=0.05,
                        help="DescribeTrainingJob interval for the small job")
    parser.add_argument("--small-rows", type=int, default=10_000)
    parser.add_argument("--small-features", type=int, default=10)
    parser.add_argument("--sdk-repeats", type=int, default=3, help="fits per SDK mode")
    parser.add_argument("--fast-factors", type=float, nargs="*", default=[10.0],
                        help="fast_polling factors to run besides the unchanged SDK")
    parser.add_argument("--large-rows", type=int, default=1_000_000)
    parser.add_argument("--large-features", type=int, default=50)
    parser.add_argument("--large-repeats", type=int, default=2)
    parser.add_argument("--large-poll", type=float, default=1.0,
                        help="polling for the large job (its wall time is taken from the "
                             "Completed transition, so this only limits polling load)")
    parser.add_argument("--raw-readers", nargs="+", default=["opensage"],
                        choices=("opensage", "xgboost"),
                        help="CSV reader(s) of the raw side; the first is the ratio's peer")
    parser.add_argument("--omp-wait-policy", nargs="+", default=["default"],
                        choices=("default", "PASSIVE", "ACTIVE"),
                        help="run the overhead and large parts once per OpenMP wait policy, "
                             "set for both the job (its Environment) and the raw side")
    parser.add_argument("--large-data-dir", help="keep the generated large CSV here")
    parser.add_argument("--no-preload", action="store_true",
                        help="start the server with OPENSAGE_PRELOAD_ALGORITHMS=0 (where the "
                             "tree has that setting): each job a fresh interpreter instead of "
                             "a fork of a warm one")
    parser.add_argument("--raw-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_worker:
        _raw_worker(args.raw_worker)
        return
    parts = args.part or ["overhead", "sdk", "large"]
    if args.no_preload:
        os.environ["OPENSAGE_PRELOAD_ALGORITHMS"] = "0"  # the server subprocess inherits it

    from opensage.testing import server_process

    summary: dict[str, Any] = {"benchmark": "training jobs", "machine": machine(),
                               "opensage": code_version()}
    with tempfile.TemporaryDirectory(prefix="opensage-bench-train-") as tmp:
        work = Path(tmp)
        with server_process(work / "data") as (url, proc):
            c = clients(url)
            c["s3"].create_bucket(Bucket=BUCKET)
            for part in parts:
                log(f"part {part}")
                started = time.perf_counter()
                if part == "overhead":
                    summary["overhead"] = part_overhead(c, work, args, proc.pid)
                elif part == "sdk":
                    summary["sdk"] = part_sdk(url, c, work, args, proc.pid)
                else:
                    summary["large"] = part_large(c, work, args, proc.pid)
                summary[part]["bench_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
    sys.stdout.flush()
