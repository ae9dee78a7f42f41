"""Hyperparameter tuning quality and speed: built-in XGBoost children through a real server.

One ``opensage server --port 0`` subprocess on a temporary data directory; every figure comes
from the SageMaker API (boto3): the best objective from ``DescribeHyperParameterTuningJob``,
the children's training times from ``ListTrainingJobsForHyperParameterTuningJob``
(``TrainingEndTime - TrainingStartTime``), wall times from the tuning job's ``CreationTime``
to its ``HyperParameterTuningEndTime``.

``quality``   On the 5 tasks the issue names: scikit-learn's bundled data sets with XGBoost
              (breast_cancer AUC, wine mlogloss, digits merror, diabetes rmse) and
              linear-learner (breast_cancer, validation objective loss), the best objective of
              Bayesian with N jobs (MaxParallelTrainingJobs 1, as the sampler is sequential)
              against Random with 2N jobs (parallel 2), same ranges, same RandomSeed, for each
              of ``--quality-seeds`` (7 by default); a task counts for Bayesian when it is at
              least as good on at least half the seeds. Target: Bayesian at least as good on
              >= 4 of the 5 tasks. ``--quality-tasks synthetic`` runs the 5 numpy-generated tasks instead.
``hyperband`` Hyperband (MinResource 1, MaxResource R rounds) against Random with the same
              number of jobs, each Random child running R rounds, one child at a time, per
              seed. With the same seed both try the same configurations (Hyperband draws its
              points at random); Hyperband stops some at its rungs. Reported: the children's
              total training time, and the training time each strategy needed before its best
              so far reached the worse of the two final bests ("at equal best objective").
              Target: Hyperband <= 0.5x Random at equal best objective (median over seeds).
``parallel``  One Random tuning job of M children, MaxParallelTrainingJobs 2 against 1 (the
              children single-threaded, ``nthread=1``, so that two fit the two cores), run
              in ABBA order ``--parallel-repeats`` times (the shared machine's speed drifts
              by 20-30 % within minutes). Target: wall-time speedup >= 1.7x.

Run: ``.venv/bin/python -m benchmarks.bench_tuning [--part quality] [--n 8]``. Prints one JSON
summary (and progress on stderr); figures are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from opensage.testing import opensage_server

REGION = "us-east-1"
ACCOUNT = "000000000000"  # the server's default account
ROLE = f"arn:aws:iam::{ACCOUNT}:role/opensage"
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
BUCKET = "bench-tuning"
TERMINAL = ("Completed", "Failed", "Stopped")
QUALITY_ROWS = 600  # training rows per quality task (plus half as many validation rows)
HYPERBAND_ROWS = 150_000  # children of 3-7 s: long against the tuner's reaction time
PARALLEL_ROWS = 60_000  # 16 children of ~1-3 s

RANGES = {
    "ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
        {"Name": "subsample", "MinValue": "0.5", "MaxValue": "1", "ScalingType": "Linear"},
        {"Name": "lambda", "MinValue": "0.01", "MaxValue": "10", "ScalingType": "Logarithmic"},
    ],
    "IntegerParameterRanges": [
        {"Name": "max_depth", "MinValue": "1", "MaxValue": "8", "ScalingType": "Linear"},
        {"Name": "min_child_weight", "MinValue": "1", "MaxValue": "20",
         "ScalingType": "Linear"},
    ],
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ data
def _csv(y: np.ndarray, x: np.ndarray) -> bytes:
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([y, x]), delimiter=",", fmt="%.5g")
    return buf.getvalue().encode()


def make_task(name: str, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Label and features of one synthetic task (numpy only)."""
    rng = np.random.default_rng(seed)
    if name == "friedman1":  # nonlinear regression (Friedman #1) with 5 noise features
        x = rng.uniform(size=(rows, 10))
        y = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2
             + 10 * x[:, 3] + 5 * x[:, 4] + rng.normal(scale=1.0, size=rows))
        return y, x
    if name == "interactions":  # regression with interactions and heavy-ish noise
        x = rng.normal(size=(rows, 8))
        y = (x[:, 0] * x[:, 1] + np.abs(x[:, 2]) - 0.5 * x[:, 3] ** 2 + np.where(x[:, 4] > 0,
                                                                               2.0, -1.0)
             + rng.normal(scale=0.7, size=rows))
        return y, x
    if name in ("clusters", "noisy-binary"):  # make_classification-like: Gaussian clusters
        informative = 5 if name == "clusters" else 3
        x = rng.normal(size=(rows, 12))
        centers = rng.normal(scale=1.5, size=(4, informative))
        which = rng.integers(0, 4, size=rows)
        x[:, :informative] += centers[which]
        y = (which % 2).astype(float)
        if name == "noisy-binary":
            flip = rng.uniform(size=rows) < 0.1
            y[flip] = 1 - y[flip]
        return y, x
    if name == "multiclass":  # 3 classes from a nonlinear score (wine-like size)
        x = rng.normal(size=(rows, 10))
        score = x[:, 0] + np.sin(2 * x[:, 1]) + 0.5 * x[:, 2] * x[:, 3]
        y = np.digitize(score + rng.normal(scale=0.4, size=rows), [-0.7, 0.7]).astype(float)
        return y, x
    raise ValueError(name)


# name: (objective hyperparameters, objective metric, direction)
TASKS: dict[str, tuple[dict[str, str], str, str]] = {
    "friedman1": ({"objective": "reg:squarederror"}, "validation:rmse", "Minimize"),
    "interactions": ({"objective": "reg:squarederror"}, "validation:rmse", "Minimize"),
    "clusters": ({"objective": "binary:logistic", "eval_metric": "logloss"},
                 "validation:logloss", "Minimize"),
    "noisy-binary": ({"objective": "binary:logistic", "eval_metric": "auc"},
                     "validation:auc", "Maximize"),
    "multiclass": ({"objective": "multi:softprob", "num_class": "3",
                    "eval_metric": "mlogloss"}, "validation:mlogloss", "Minimize"),
}


LL_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
LL_RANGES = {
    "ContinuousParameterRanges": [
        {"Name": "wd", "MinValue": "1e-7", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "l1", "MinValue": "1e-7", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "learning_rate", "MinValue": "1e-4", "MaxValue": "1",
         "ScalingType": "Logarithmic"},
    ],
    "IntegerParameterRanges": [
        {"Name": "mini_batch_size", "MinValue": "16", "MaxValue": "256",
         "ScalingType": "Logarithmic"},
    ],
}


class QualityTask:
    """One task of the quality part: a scikit-learn bundled data set, an algorithm, its
    static hyperparameters, ranges and objective."""

    def __init__(self, loader: str, metric: str, direction: str, static: dict[str, str],
                 image: str = XGB_IMAGE, ranges: dict[str, Any] | None = None) -> None:
        self.loader, self.metric, self.direction = loader, metric, direction
        self.static, self.image, self.ranges = static, image, ranges or RANGES

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        import sklearn.datasets

        x, y = getattr(sklearn.datasets, self.loader)(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(y))
        return y[order].astype(float), x[order]


XGB_QUALITY_STATIC = {"num_round": "40", "nthread": "1"}
SKLEARN_TASKS = {
    "cancer": QualityTask("load_breast_cancer", "validation:auc", "Maximize",
                                 {**XGB_QUALITY_STATIC, "objective": "binary:logistic",
                                  "eval_metric": "auc"}),
    "wine": QualityTask("load_wine", "validation:mlogloss", "Minimize",
                        {**XGB_QUALITY_STATIC, "objective": "multi:softprob",
                         "num_class": "3", "eval_metric": "mlogloss"}),
    "digits": QualityTask("load_digits", "validation:mlogloss", "Minimize",
                          {**XGB_QUALITY_STATIC, "objective": "multi:softprob",
                           "num_class": "10", "eval_metric": "mlogloss"}),
    "diabetes": QualityTask("load_diabetes", "validation:rmse", "Minimize",
                            {**XGB_QUALITY_STATIC, "objective": "reg:squarederror"}),
    "cancer-ll": QualityTask(
        "load_breast_cancer", "validation:objective_loss", "Minimize",
        {"predictor_type": "binary_classifier", "feature_dim": "30", "epochs": "10",
         "num_models": "1"}, image=LL_IMAGE, ranges=LL_RANGES),
}


def upload_sklearn_task(s3: Any, name: str, task: QualityTask) -> None:
    """Two thirds of the data set to train, one third to validation, under ``<name>/``."""
    y, x = task.data()
    cut = len(y) * 2 // 3
    s3.put_object(Bucket=BUCKET, Key=f"{name}/train/part-0.csv", Body=_csv(y[:cut], x[:cut]))
    s3.put_object(Bucket=BUCKET, Key=f"{name}/validation/part-0.csv",
                  Body=_csv(y[cut:], x[cut:]))


def upload_task(s3: Any, name: str, rows: int, seed: int, prefix: str = "") -> None:
    """``rows`` training rows and half as many validation rows under ``<prefix><name>/``."""
    y, x = make_task(name, rows + rows // 2, seed)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}{name}/train/part-0.csv",
                  Body=_csv(y[:rows], x[:rows]))
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}{name}/validation/part-0.csv",
                  Body=_csv(y[rows:], x[rows:]))


# ---------------------------------------------------------------------------- tuning jobs
def tuning_request(name: str, task: str, strategy: str, jobs: int, parallel: int,
                   static: dict[str, str], seed: int,
                   ranges: dict[str, Any] | None = None,
                   quality: QualityTask | None = None) -> dict[str, Any]:
    if quality is not None:
        objective_hps, metric, direction = quality.static, quality.metric, quality.direction
        image, ranges = quality.image, quality.ranges
    else:
        objective_hps, metric, direction = TASKS[task]
        image = XGB_IMAGE
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "RandomSeed": seed,
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs,
                               "MaxParallelTrainingJobs": parallel},
            "HyperParameterTuningJobObjective": {"Type": direction, "MetricName": metric},
            "ParameterRanges": ranges or RANGES},
        "TrainingJobDefinition": {
            "StaticHyperParameters": {**objective_hps, **static},
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "InputDataConfig": [
                {"ChannelName": channel, "ContentType": "text/csv", "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix",
                                     "S3Uri": f"s3://{BUCKET}/{task}/{channel}",
                                     "S3DataDistributionType": "FullyReplicated"}}}
                for channel in ("train", "validation")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                               "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}},
    }


def run_tuning(sm: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Run one tuning job to its end. Its wall time is the server's own account
    (``HyperParameterTuningEndTime - CreationTime``), so the polling can be slow (as the SDK's
    ``tuner.wait()``, if less so) and take no CPU from the children."""
    name = request["HyperParameterTuningJobName"]
    sm.create_hyper_parameter_tuning_job(**request)
    while True:
        job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if job["HyperParameterTuningJobStatus"] in TERMINAL:
            break
        time.sleep(0.5)
    wall = (job["HyperParameterTuningEndTime"] - job["CreationTime"]).total_seconds()
    children, token = [], None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, MaxResults=100,
            **({"NextToken": token} if token else {}))
        children += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            break
    if job["HyperParameterTuningJobStatus"] != "Completed":
        raise RuntimeError(f"{name}: {job['HyperParameterTuningJobStatus']} "
                           f"{job.get('FailureReason')}")
    best = job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    return {"job": job, "children": children, "wall": wall, "best": best}


def train_seconds(child: dict[str, Any]) -> float:
    start, end = child.get("TrainingStartTime"), child.get("TrainingEndTime")
    if start is None or end is None:
        return 0.0
    return max(0.0, (end - start).total_seconds())


def _better_or_equal(a: float, b: float, direction: str) -> bool:
    return a >= b if direction == "Maximize" else a <= b


# ----------------------------------------------------------------------------------- parts
def part_quality(sm: Any, s3: Any, n: int, seeds: list[int],
                 task_set: str = "sklearn") -> dict[str, Any]:
    rows = {}
    wins = 0
    names = list(SKLEARN_TASKS) if task_set == "sklearn" else list(TASKS)
    for task in names:
        quality = SKLEARN_TASKS.get(task) if task_set == "sklearn" else None
        if quality is not None:
            upload_sklearn_task(s3, task, quality)
            direction, metric = quality.direction, quality.metric
        else:
            upload_task(s3, task, QUALITY_ROWS, seed=zlib.crc32(task.encode()) % 1000)
            direction, metric = TASKS[task][2], TASKS[task][1]
        per_seed = []
        for seed in seeds:
            static = {} if quality is not None else {"num_round": "40", "nthread": "1"}
            bayes = run_tuning(sm, tuning_request(f"q-{task}-b-{seed}", task, "Bayesian", n, 1,
                                                  static, seed, quality=quality))
            rand = run_tuning(sm, tuning_request(f"q-{task}-r-{seed}", task, "Random", 2 * n,
                                                 2, static, seed, quality=quality))
            per_seed.append({"seed": seed, "bayesian": round(bayes["best"], 5),
                             "random": round(rand["best"], 5),
                             "bayesian_wall_s": round(bayes["wall"], 1),
                             "random_wall_s": round(rand["wall"], 1)})
            log(f"quality {task} seed {seed}: Bayesian({n}) {bayes['best']:.5f} "
                f"Random({2 * n}) {rand['best']:.5f}")
        ok = sum(_better_or_equal(r["bayesian"], r["random"], direction) for r in per_seed)
        won = ok * 2 >= len(per_seed) and ok > 0  # at least as good on most seeds
        wins += won
        rows[task] = {"metric": metric, "direction": direction, "runs": per_seed,
                      "bayesian_at_least_as_good": won}
    return {"n": n, "tasks": task_set, "results": rows, "bayesian_at_least_as_good_on": wins,
            "target": ">= 4 of 5", "met": wins >= 4}


def time_to_reach(children: list[dict[str, Any]], target: float, direction: str) -> float | None:
    """Training seconds spent (children in the order they ended; the jobs run one at a time)
    until the best objective so far reached ``target`` (None: never)."""
    spent, best = 0.0, None
    for child in sorted(children, key=lambda c: c["TrainingEndTime"]):
        spent += train_seconds(child)
        metric = child.get("FinalHyperParameterTuningJobObjectiveMetric")
        if metric is None:
            continue
        if best is None or _better_or_equal(metric["Value"], best, direction):
            best = metric["Value"]
        if _better_or_equal(best, target, direction):
            return spent
    return None


def rounds_logged(logs: Any, job: str) -> int:
    """How many rounds a child printed its validation metric for (its CloudWatch stream)."""
    count, token = 0, None
    while True:
        page = logs.filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                      logStreamNamePrefix=job, **({"nextToken": token}
                                                                  if token else {}))
        count += sum("validation-rmse" in e["message"] for e in page["events"])
        token = page.get("nextToken")
        if not token:
            return count


def part_hyperband(sm: Any, s3: Any, logs: Any, jobs: int, max_resource: int,
                   seeds: list[int], rows: int = HYPERBAND_ROWS) -> dict[str, Any]:
    """Same seed, same sampler (Hyperband draws its points at random): both strategies try
    the same configurations, one at a time; Hyperband stops some of them at its rungs. The
    time "at equal best objective" is each strategy's training time until its best so far
    reached the worse of the two final bests."""
    task = "friedman1"
    upload_task(s3, task, rows, seed=11, prefix="hb-")
    direction = TASKS[task][2]
    runs = []
    for seed in seeds:
        base = tuning_request("hb", task, "Random", jobs, 1, {"nthread": "1"}, seed)
        for channel in base["TrainingJobDefinition"]["InputDataConfig"]:
            source = channel["DataSource"]["S3DataSource"]
            source["S3Uri"] = source["S3Uri"].replace(f"/{task}/", f"/hb-{task}/")
        hb_request = json.loads(json.dumps(base))
        hb_request["HyperParameterTuningJobName"] = f"hb-hyperband-{seed}"
        hb_request["HyperParameterTuningJobConfig"].update(
            Strategy="Hyperband", StrategyConfig={"HyperbandStrategyConfig": {
                "MinResource": 1, "MaxResource": max_resource}})
        rand_request = json.loads(json.dumps(base))
        rand_request["HyperParameterTuningJobName"] = f"hb-random-{seed}"
        rand_request["TrainingJobDefinition"]["StaticHyperParameters"]["num_round"] = str(
            max_resource)
        hb = run_tuning(sm, hb_request)
        rand = run_tuning(sm, rand_request)
        hb_time = sum(train_seconds(c) for c in hb["children"])
        rand_time = sum(train_seconds(c) for c in rand["children"])
        worse = max(hb["best"], rand["best"]) if direction == "Minimize" else min(
            hb["best"], rand["best"])
        hb_reach = time_to_reach(hb["children"], worse, direction)
        rand_reach = time_to_reach(rand["children"], worse, direction)
        stopped = sum(c["TrainingJobStatus"] == "Stopped" for c in hb["children"])
        # the reaction: rounds a stopped child ran past the last rung it reached (rungs are
        # MinResource * 3**k; a child is stopped at one of them)
        past_rung = []
        for child in hb["children"]:
            if child["TrainingJobStatus"] == "Stopped":
                ran = rounds_logged(logs, child["TrainingJobName"])
                past_rung.append(ran - max([3 ** k for k in range(12) if 3 ** k <= ran],
                                           default=0))
        run = {"seed": seed, "hyperband_best": round(hb["best"], 4),
               "random_best": round(rand["best"], 4),
               "hyperband_train_s": round(hb_time, 2), "random_train_s": round(rand_time, 2),
               "hyperband_stopped_children": stopped,
               "stopped_rounds_past_rung": sorted(past_rung),
               "hyperband_train_s_to_equal_best": round(hb_reach or 0.0, 2),
               "random_train_s_to_equal_best": round(rand_reach or 0.0, 2),
               "ratio_total": round(hb_time / rand_time, 3),
               "ratio_at_equal_best": round((hb_reach or 0.0) / rand_reach, 3)
               if rand_reach else None}
        runs.append(run)
        log(f"hyperband seed {seed}: {json.dumps(run)}")
    ratios = sorted(r["ratio_at_equal_best"] for r in runs if r["ratio_at_equal_best"])
    median = ratios[len(ratios) // 2] if ratios else None
    return {"task": task, "train_rows": rows, "jobs": jobs,
            "max_resource": max_resource, "runs": runs,
            "median_ratio_total": sorted(r["ratio_total"] for r in runs)[len(runs) // 2],
            "median_ratio_at_equal_best": median, "target": "<= 0.5",
            "met": median is not None and median <= 0.5}


def part_parallel(sm: Any, s3: Any, jobs: int, rows: int = PARALLEL_ROWS,
                  repeats: int = 2) -> dict[str, Any]:
    """MaxParallelTrainingJobs 1 and 2 in ABBA order (1, 2, 2, 1, ...), so that a drift of
    the shared machine's speed during the run weighs on both sides alike; the speedup is the
    ratio of the summed wall times."""
    task = "interactions"
    upload_task(s3, task, rows, seed=3, prefix="par-")
    walls: dict[int, list[float]] = {1: [], 2: []}
    trained: dict[int, list[float]] = {1: [], 2: []}
    order = [p for r in range(repeats) for p in ((1, 2) if r % 2 == 0 else (2, 1))]
    for run, parallel in enumerate(order):
        request = tuning_request(f"par-{parallel}-{run}", task, "Random", jobs, parallel,
                                 {"num_round": "200", "nthread": "1"}, 9)
        for channel in request["TrainingJobDefinition"]["InputDataConfig"]:
            source = channel["DataSource"]["S3DataSource"]
            source["S3Uri"] = source["S3Uri"].replace(f"/{task}/", f"/par-{task}/")
        result = run_tuning(sm, request)
        walls[parallel].append(result["wall"])
        trained[parallel].append(sum(train_seconds(c) for c in result["children"]))
        log(f"parallel {parallel}: wall {result['wall']:.1f}s "
            f"(children train {trained[parallel][-1]:.1f}s)")
    wall = {p: sum(w) for p, w in walls.items()}
    speedup = wall[1] / wall[2]
    return {"task": task, "train_rows": rows, "jobs": jobs, "order": order,
            "wall_s_parallel_1": [round(w, 2) for w in walls[1]],
            "wall_s_parallel_2": [round(w, 2) for w in walls[2]],
            "speedups_per_pair": [round(a / b, 2) for a, b in zip(walls[1], walls[2])],
            "speedup": round(speedup, 2),
            # children's training seconds per wall second: how many ran at once on average
            # (the tuner's share of a miss), and how much each slowed down when two ran
            # (the cores' share: other processes on the machine count here)
            "concurrency_parallel_2": round(sum(trained[2]) / wall[2], 2),
            "child_slowdown_parallel_2": round(sum(trained[2]) / sum(trained[1]), 2),
            "target": ">= 1.7", "met": speedup >= 1.7}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", action="append",
                        choices=["quality", "hyperband", "parallel"])
    parser.add_argument("--n", type=int, default=8, help="Bayesian jobs (Random gets 2N)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hyperband-jobs", type=int, default=15)
    parser.add_argument("--max-resource", type=int, default=243)
    parser.add_argument("--hyperband-rows", type=int, default=HYPERBAND_ROWS,
                        help="training rows of the Hyperband task: children must run long "
                             "compared with the tuner's reaction time (about 0.1 s)")
    parser.add_argument("--parallel-jobs", type=int, default=16)
    parser.add_argument("--parallel-rows", type=int, default=PARALLEL_ROWS)
    parser.add_argument("--parallel-repeats", type=int, default=2,
                        help="pairs of runs (1 and 2 parallel), in ABBA order")
    parser.add_argument("--quality-tasks", choices=["sklearn", "synthetic"], default="sklearn")
    parser.add_argument("--quality-seeds", type=int, nargs="+", default=list(range(1, 8)),
                        help="seeds of the quality part (cheap on these small data sets)")
    args = parser.parse_args()
    parts = args.part or ["quality", "hyperband", "parallel"]

    import boto3
    from botocore.config import Config

    summary: dict[str, Any] = {"parts": parts}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, opensage_server(Path(tmp) / "data") as url:
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                region_name=REGION)
        config = Config(retries={"max_attempts": 1})
        sm = session.client("sagemaker", endpoint_url=url, config=config)
        s3 = session.client("s3", endpoint_url=url, config=config)
        logs = session.client("logs", endpoint_url=url, config=config)
        s3.create_bucket(Bucket=BUCKET)
        # Warm-up: the server's first training job starts its fork server (seconds of
        # imports), which would otherwise be charged to whichever strategy runs first.
        upload_task(s3, "friedman1", 200, seed=0, prefix="warm-")
        warm = tuning_request("warm-up", "friedman1", "Random", 2, 2, {"num_round": "2"}, 1)
        for channel in warm["TrainingJobDefinition"]["InputDataConfig"]:
            source = channel["DataSource"]["S3DataSource"]
            source["S3Uri"] = source["S3Uri"].replace("/friedman1/", "/warm-friedman1/")
        log(f"warm-up: {run_tuning(sm, warm)['wall']:.1f}s")
        summary["load_average_start"] = [round(v, 2) for v in os.getloadavg()]
        if "quality" in parts:
            summary["quality"] = part_quality(sm, s3, args.n, args.quality_seeds,
                                              args.quality_tasks)
        if "hyperband" in parts:
            summary["hyperband"] = part_hyperband(sm, s3, logs, args.hyperband_jobs,
                                                  args.max_resource, args.seeds,
                                                  args.hyperband_rows)
        if "parallel" in parts:
            summary["parallel"] = part_parallel(sm, s3, args.parallel_jobs, args.parallel_rows,
                                                args.parallel_repeats)
    summary["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    summary["total_wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
