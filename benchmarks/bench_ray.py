"""The Ray executor (issue 18), side by side in one run, inside a private network namespace
(Ray binds every interface; see ``tests/integration/netns.py``):

* ``tuning``: a tuning job of 16 XGBoost children (``ml.t3.medium``: one CPU each) on a Ray
  cluster of 2 nodes against 1 node, one CPU per node, each node's processes pinned to a
  core of their own (as if each were a one-CPU machine; the server is not pinned); after a
  warm-up job with a host on each node, the seconds from CreateHyperParameterTuningJob to
  Completed, the server's CPU seconds meanwhile and the children's median training time.
  Target: 2 nodes ≥ 1.8× faster.
* ``overhead``: the same small training job, one after another, with ``--executor ray``
  (one node) and ``--executor local``; the seconds from CreateTrainingJob to Completed.
* ``xgboost``: distributed XGBoost, 2 hosts (ShardedByS3Key, two files) against 1 host on the
  same rows, with the local executor and with Ray (2 nodes): held-out AUC (target: within
  0.002) and the seconds the jobs took.

Rounds alternate the set-ups. Run as root (or with CAP_SYS_ADMIN):
``.venv/bin/python -m benchmarks.bench_ray [--part tuning,overhead,xgboost] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore.config import Config

from opensage.testing import server_process
from tests.integration import test_ray_executor
from tests.integration.netns import private_network
from tests.integration.test_ray_executor import Cluster
from tests.integration.test_training_jobs import BUCKET, job_request, regression_csv, wait_for
from tests.integration.test_tuning import tuning_request, wait_for_tuning

INSTANCE = "ml.t3.medium"  # one vCPU: one host per one-CPU node
Client = Callable[[str], Any]


@contextmanager
def cluster(nodes: int) -> Iterator[Cluster]:
    """``nodes`` Ray nodes of one CPU each (the issue's set-up), in this namespace."""
    test_ray_executor.NODE_CPUS = "1"  # type: ignore[attr-defined]
    # each node on a core of its own, as if each were a one-CPU machine (the server, not
    # pinned, shares them); without this both nodes' hosts could run on the same core
    cpus = sorted(os.sched_getaffinity(0))
    running = Cluster(Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp")),
                      node_cpus=[{cpus[0]}, {cpus[-1]}] if len(cpus) > 1 else None)
    try:
        if nodes == 1:
            head = running.start
            running.start_worker = lambda: None  # type: ignore[method-assign]
            head()
            running.wait_nodes(1)
        else:
            running.start()
        yield running
    finally:
        running.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(*extra: str) -> Iterator[Client]:
    """A server's client factory; ``make.pid`` is the server's process id."""
    with tempfile.TemporaryDirectory() as data_dir, \
            server_process(Path(data_dir), *extra) as (url, proc):
        def make(service: str) -> Any:
            return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                                aws_access_key_id="test", aws_secret_access_key="test",
                                config=Config(retries={"max_attempts": 1}))
        make.pid = proc.pid  # type: ignore[attr-defined]
        yield make


def put_regression(client: Client, rows: int) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=regression_csv(rows, 1)[0])
    s3.put_object(Bucket=BUCKET, Key="data/validation/part-0.csv",
                  Body=regression_csv(rows // 4, 2)[0])


def warm_up(client: Client, name: str, hosts: int) -> None:
    """One job with a host on each node: every node's agent has started and imported the
    built-ins (a fresh server's first job pays that, once per node)."""
    sm = client("sagemaker")
    sm.create_training_job(**job_request(name, ResourceConfig={
        "InstanceType": INSTANCE, "InstanceCount": hosts, "VolumeSizeInGB": 5}))
    job = wait_for(sm, name, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")


def time_tuning(client: Client, name: str, children: int) -> tuple[float, float, float]:
    """Seconds to Completed, the server's CPU seconds meanwhile, and the children's median
    training seconds (TrainingStartTime to TrainingEndTime)."""
    request = tuning_request(name, max_jobs=children, parallel=children,
                             static={"objective": "reg:squarederror", "num_round": "200"})
    request["TrainingJobDefinition"]["HyperParameterTuningResourceConfig"]["InstanceType"] = \
        INSTANCE
    sm = client("sagemaker")
    pid = client.pid  # type: ignore[attr-defined]
    cpu, started = cpu_seconds(pid), time.perf_counter()
    sm.create_hyper_parameter_tuning_job(**request)
    job = wait_for_tuning(sm, name, timeout=1800)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TrainingJobStatusCounters"]["Completed"] == children, job[
        "TrainingJobStatusCounters"]
    summaries = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, MaxResults=100)["TrainingJobSummaries"]
    trained = [(s["TrainingEndTime"] - s["TrainingStartTime"]).total_seconds()
               for s in summaries]
    return elapsed, cpu, statistics.median(trained)


def part_tuning(rounds: int, children: int, rows: int = 20_000) -> dict[str, Any]:
    times: dict[int, list[float]] = {1: [], 2: []}
    server_cpu: dict[int, list[float]] = {1: [], 2: []}
    child_s: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds):
        for nodes in (2, 1) if r % 2 else (1, 2):
            with cluster(nodes) as running, \
                    server("--executor", "ray", "--ray-address", running.address) as client:
                put_regression(client, rows)
                warm_up(client, f"warm-{nodes}-{r}", nodes)
                elapsed, cpu, child = time_tuning(client, f"tune-{nodes}-{r}", children)
                times[nodes].append(elapsed)
                server_cpu[nodes].append(cpu)
                child_s[nodes].append(child)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    return {"children": children, "rows": rows, "one_node_s": [round(t, 1) for t in times[1]],
            "two_nodes_s": [round(t, 1) for t in times[2]],
            "server_cpu_s": {n: [round(c, 1) for c in v] for n, v in server_cpu.items()},
            "child_training_median_s": {n: [round(c, 2) for c in v]
                                        for n, v in child_s.items()},
            "speedup_two_over_one": round(one / two, 2)}


def time_jobs(client: Client, prefix: str, jobs: int) -> list[float]:
    sm, times = client("sagemaker"), []
    for i in range(jobs):
        name = f"{prefix}-{i}"
        started = time.perf_counter()
        sm.create_training_job(**job_request(name, ResourceConfig={
            "InstanceType": INSTANCE, "InstanceCount": 1, "VolumeSizeInGB": 5}))
        job = wait_for(sm, name, timeout=300)
        times.append(time.perf_counter() - started)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return times


def part_overhead(rounds: int, jobs: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"local": [], "ray": []}
    with cluster(1) as running, \
            server("--executor", "ray", "--ray-address", running.address) as on_ray, \
            server("--executor", "local") as local:
        for client in (on_ray, local):
            put_regression(client, 600)
            time_jobs(client, "warm", 1)  # first job: imports, the fork server, Ray workers
        for r in range(rounds):
            times["ray"] += time_jobs(on_ray, f"ray-{r}", jobs)
            times["local"] += time_jobs(local, f"local-{r}", jobs)
    ray, local_ = statistics.median(times["ray"]), statistics.median(times["local"])
    return {"jobs_each": len(times["ray"]), "ray_median_s": round(ray, 2),
            "local_median_s": round(local_, 2), "ray_overhead_s": round(ray - local_, 2)}


def classification_csv(rows: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 10))
    logit = x[:, 0] - 2 * x[:, 1] + x[:, 2] * x[:, 3] + 0.5 * np.sin(3 * x[:, 4])
    y = (logit + rng.logistic(size=rows) > 0).astype(float)
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([y, x]), delimiter=",", fmt="%.5f")
    return buf.getvalue().encode(), x, y


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, scores))


def xgboost_job(client: Client, name: str, hosts: int, x_test: np.ndarray,
                y_test: np.ndarray) -> tuple[float, float]:
    import xgboost

    sm, s3 = client("sagemaker"), client("s3")
    request = job_request(name, ResourceConfig={"InstanceType": INSTANCE,
                                                "InstanceCount": hosts, "VolumeSizeInGB": 5},
                          HyperParameters={"objective": "binary:logistic", "num_round": "100",
                                           "max_depth": "6", "eta": "0.1",
                                           "tree_method": "hist"})
    request["InputDataConfig"] = [{
        "ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/cls/train/",
            "S3DataDistributionType": "ShardedByS3Key" if hosts > 1 else "FullyReplicated"}}}]
    started = time.perf_counter()
    sm.create_training_job(**request)
    job = wait_for(sm, name, timeout=900)
    elapsed = time.perf_counter() - started
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"][5:].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                      ) as tar:
        member = tar.extractfile("xgboost-model")
        assert member is not None
        booster = xgboost.Booster()
        booster.load_model(bytearray(member.read()))
    return auc(y_test, booster.predict(xgboost.DMatrix(x_test))), elapsed


def part_xgboost(rounds: int, rows: int) -> dict[str, Any]:
    halves = [classification_csv(rows // 2, seed) for seed in (11, 12)]
    _, x_test, y_test = classification_csv(20_000, 13)
    results: dict[str, Any] = {"rows": rows}
    with cluster(2) as running:
        for executor, extra in (("local", ("--executor", "local")),
                                ("ray", ("--executor", "ray", "--ray-address",
                                         running.address))):
            with server(*extra) as client:
                s3 = client("s3")
                s3.create_bucket(Bucket=BUCKET)
                for i, (body, _, _) in enumerate(halves):
                    s3.put_object(Bucket=BUCKET, Key=f"cls/train/part-{i}.csv", Body=body)
                runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
                for r in range(rounds):
                    for hosts in (2, 1) if r % 2 else (1, 2):
                        runs[hosts].append(xgboost_job(client, f"xgb-{executor}-{hosts}-{r}",
                                                       hosts, x_test, y_test))
                one = statistics.median(t for _, t in runs[1])
                two = statistics.median(t for _, t in runs[2])
                results[executor] = {
                    "auc_one_host": round(runs[1][0][0], 4),
                    "auc_two_hosts": round(runs[2][0][0], 4),
                    "auc_difference": round(abs(runs[1][0][0] - runs[2][0][0]), 4),
                    "one_host_s": round(one, 1), "two_hosts_s": round(two, 1),
                    "time_two_over_one": round(two / one, 2)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="tuning,overhead,xgboost")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--children", type=int, default=16)
    parser.add_argument("--tuning-rows", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with private_network():
        for part in args.part.split(","):
            started = time.perf_counter()
            if part == "tuning":
                results[part] = part_tuning(args.rounds, args.children, args.tuning_rows)
            elif part == "overhead":
                results[part] = part_overhead(args.rounds, args.jobs)
            elif part == "xgboost":
                results[part] = part_xgboost(args.rounds, args.rows)
            else:
                raise SystemExit(f"unknown part {part!r}")
            results[part]["wall_s"] = round(time.perf_counter() - started, 1)
            print(json.dumps({part: results[part]}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
