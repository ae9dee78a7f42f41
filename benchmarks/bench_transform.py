"""Batch transform of 1,000,000 CSV rows × 10 features (about 75 MB) with the built-in XGBoost
image, against predicting the same rows in-process with ``booster.predict``.

* transform: ``CreateTransformJob`` (``MultiRecord``, ``SplitType: Line``,
  ``AssembleWith: Line``, ``MaxPayloadInMB: 6``, ``--concurrency`` requests in flight,
  ``--instances`` × ``ml.m5.large``) → ``Completed``, polled every 50 ms; the input is already
  in the server's S3 (its upload is not counted). The ``.out`` object is checked.
* peers, in this process after imports, median of ``--repeats``: ``booster.predict`` on the
  float32 matrix already in memory (nthread 1, as the worker; and nthread = all CPUs), and
  read-the-CSV + predict + write-the-answers (``np.loadtxt``-free: pyarrow's reader).
* memory: the peak RSS of the server process and all its children (workers) together,
  sampled every 20 ms with psutil, and each process's own peak (``VmHWM``).

Run: ``.venv/bin/python -m benchmarks.bench_transform [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

import numpy as np

from benchmarks.bench_invoke import BUCKET, clients, create_model, log, machine, opensage

FEATURES = 10
TARGET_RATIO = 0.8


def train(features: int) -> Any:
    import xgboost

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, features)).astype(np.float32)
    y = x @ rng.normal(size=features) + rng.normal(scale=0.1, size=5000)
    return xgboost.train({"max_depth": 6, "eta": 0.3, "nthread": 2},
                         xgboost.DMatrix(x, label=y), 50)


def write_csv(path: Path, x: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rounded = np.round(x, 5)
    table = pa.table({f"f{i}": rounded[:, i] for i in range(x.shape[1])})
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False))


def peers(booster: Any, x: np.ndarray, csv: Path, work: Path, repeats: int) -> dict[str, Any]:
    import pyarrow.csv as pacsv
    import xgboost

    def timed(fn: Any) -> float:
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        return round(statistics.median(runs), 3)

    def predict(nthread: int) -> Any:
        booster.set_param({"nthread": nthread})
        return booster.predict(xgboost.DMatrix(x, nthread=nthread), validate_features=False)

    def end_to_end() -> None:
        booster.set_param({"nthread": 1})
        table = pacsv.read_csv(csv, read_options=pacsv.ReadOptions(autogenerate_column_names=True))
        matrix = np.column_stack([c.to_numpy() for c in table.columns]).astype(np.float32)
        out = booster.predict(xgboost.DMatrix(matrix, nthread=1), validate_features=False)
        (work / "peer.out").write_text("\n".join(map(repr, out.tolist())) + "\n")

    cpus = len(os.sched_getaffinity(0))
    return {"predict_nthread1_s": timed(lambda: predict(1)),
            f"predict_nthread{cpus}_s": timed(lambda: predict(cpus)),
            "read_csv_predict_write_nthread1_s": timed(end_to_end)}


class RssSampler:
    """Peak RSS of a process tree (sum over processes alive at the same instant)."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.hwm: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _label(self, proc: Any) -> str:
        if proc.pid == self.root.pid:
            return "server"
        module = " ".join(proc.cmdline()[2:3]).rsplit(".", 1)[-1]
        if module == "forkserver" and proc.ppid() != self.root.pid:
            module = "worker (forked)"  # a child of the fork server
        return f"{module} {proc.pid}"

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for proc in [self.root, *self.root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                    status = Path(f"/proc/{proc.pid}/status").read_text()
                    hwm = next(int(line.split()[1]) * 1024 for line in status.splitlines()
                               if line.startswith("VmHWM:"))
                    label = self._label(proc)
                    self.hwm[label] = max(self.hwm.get(label, 0), hwm)
                except (psutil.Error, OSError, StopIteration):
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)


def run_transform(sm: Any, name: str, model: str, output: str, *, payload_mb: int,
                  concurrency: int, instances: int, poll: float) -> tuple[dict[str, Any], float]:
    """One MultiRecord CSV transform of ``tx/in`` into ``tx/out/<output>``, to its end: the
    described job and its wall seconds (a job that did not complete raises)."""
    started = time.perf_counter()
    sm.create_transform_job(
        TransformJobName=name, ModelName=model, BatchStrategy="MultiRecord",
        MaxPayloadInMB=payload_mb, MaxConcurrentTransforms=concurrency,
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/tx/in"}},
            "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/tx/out/{output}",
                         "AssembleWith": "Line"},
        TransformResources={"InstanceCount": instances, "InstanceType": "ml.m5.large"})
    while (job := sm.describe_transform_job(TransformJobName=name))[
            "TransformJobStatus"] == "InProgress":
        time.sleep(poll)
    elapsed = time.perf_counter() - started
    if job["TransformJobStatus"] != "Completed":
        raise RuntimeError(f"{name}: {job['TransformJobStatus']}: {job.get('FailureReason')}")
    return job, elapsed


def big_input(gigabytes: float, concurrency: int, payload_mb: int) -> None:
    """Transform one input of ``gigabytes`` (a 100,000-row block repeated) and report the
    peak RSS of the server tree: streaming must keep it bounded whatever the input size."""
    booster = train(FEATURES)
    block_rows = 100_000
    x = np.random.default_rng(1).normal(size=(block_rows, FEATURES)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_csv(work / "block.csv", x)
        block = (work / "block.csv").read_bytes()
        if not block.endswith(b"\n"):
            block += b"\n"
        copies = max(1, int(gigabytes * 2**30 / len(block)))
        csv = work / "input.csv"
        with open(csv, "wb") as f:
            f.writelines(block for _ in range(copies))
        rows = copies * block_rows
        log(f"input {csv.stat().st_size / 2**30:.2f} GiB, {rows:,} rows")
        (work / "data").mkdir()
        with opensage(work / "data") as (url, proc):
            c = clients(url)
            model = create_model(c, booster)
            with open(csv, "rb") as f:
                c["s3"].put_object(Bucket=BUCKET, Key="tx/in/input.csv", Body=f)
            csv.unlink()  # the server's copy is what is read
            sm = c["sagemaker"]
            with RssSampler(proc.pid) as rss:
                _, elapsed = run_transform(sm, "tx-big", model, "big", payload_mb=payload_mb,
                                           concurrency=concurrency, instances=1, poll=0.2)
            head = c["s3"].head_object(Bucket=BUCKET, Key="tx/out/big/input.csv.out")
            print(json.dumps({"machine": machine(), "input_gib": round(gigabytes, 2),
                              "rows": rows, "seconds": round(elapsed, 1),
                              "rows_per_s": round(rows / elapsed),
                              "output_mb": round(head["ContentLength"] / 2**20, 1),
                              "peak_rss_tree_mb": round(rss.peak / 2**20, 1),
                              "peak_hwm_mb": {k: round(v / 2**20, 1)
                                              for k, v in rss.hwm.items()}}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--payload-mb", type=int, default=6)
    parser.add_argument("--big-gb", type=float, default=0.0,
                        help="instead: one transform of an input this many GB large, for the "
                             "peak memory of a streamed input (no peers)")
    args = parser.parse_args()
    if args.big_gb:
        big_input(args.big_gb, args.concurrency, args.payload_mb)
        return

    booster = train(FEATURES)
    x = np.random.default_rng(1).normal(size=(args.rows, FEATURES)).astype(np.float32)
    results: dict[str, Any] = {"machine": machine(), "rows": args.rows, "features": FEATURES,
                               "concurrency": args.concurrency, "instances": args.instances}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv = work / "input.csv"
        write_csv(csv, x)
        x = np.loadtxt(csv, delimiter=",", dtype=np.float32)  # exactly what is sent
        results["input_mb"] = round(csv.stat().st_size / 2**20, 1)
        log(f"input {results['input_mb']} MB; peers")
        results["peers"] = peers(booster, x, csv, work, args.repeats)
        (work / "data").mkdir()
        runs = []
        with opensage(work / "data") as (url, proc):
            c = clients(url)
            model = create_model(c, booster)
            with open(csv, "rb") as f:
                c["s3"].put_object(Bucket=BUCKET, Key="tx/in/input.csv", Body=f)
            sm = c["sagemaker"]
            for i in range(args.repeats):
                name = f"tx-{i}"
                with RssSampler(proc.pid) as rss:
                    job, elapsed = run_transform(
                        sm, name, model, name, payload_mb=args.payload_mb,
                        concurrency=args.concurrency, instances=args.instances, poll=0.05)
                out = c["s3"].get_object(Bucket=BUCKET, Key=f"tx/out/{name}/input.csv.out")[
                    "Body"].read()
                got = np.array(out.split(), dtype=np.float32)
                booster.set_param({"nthread": 1})
                import xgboost

                expected = booster.predict(xgboost.DMatrix(x, nthread=1))
                assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-6)
                inside = (job["TransformEndTime"] - job["TransformStartTime"]).total_seconds()
                runs.append({"create_to_completed_s": round(elapsed, 3),
                             "start_to_end_s": round(inside, 3),
                             "peak_rss_tree_mb": round(rss.peak / 2**20, 1),
                             "peak_hwm_mb": {k: round(v / 2**20, 1)
                                             for k, v in rss.hwm.items()}})
                log(f"{name}: {elapsed:.2f} s, peak RSS {rss.peak / 2**20:.0f} MB")
                c["s3"].delete_object(Bucket=BUCKET, Key=f"tx/out/{name}/input.csv.out")
        results["transform_runs"] = runs
    median = statistics.median(r["create_to_completed_s"] for r in runs)
    peer = results["peers"]
    results["summary"] = {
        "transform_median_s": median,
        "rows_per_s": round(args.rows / median),
        "ratio_vs_predict_nthread1": round(peer["predict_nthread1_s"] / median, 3),
        "ratio_vs_read_predict_write": round(peer["read_csv_predict_write_nthread1_s"] / median,
                                             3),
        "peak_rss_tree_mb": max(r["peak_rss_tree_mb"] for r in runs),
        "target_ratio": TARGET_RATIO,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
