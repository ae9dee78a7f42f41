"""Console page loads (issue 16): the training job list with 100,000 jobs stored, and a
tuning leaderboard of 500 children. Target: < 300 ms, server time and DOMContentLoaded in
Chromium alike.

Rows are seeded directly through the store, as ``bench_search.py`` does; the tuning job is a
Completed row with its 500 trials in ``tuning_trials``. The server is a subprocess. Server time
is an HTTP GET of the page's HTML; the browser time is the navigation's
``domContentLoadedEventEnd`` in Debian's Chromium (``/usr/bin/chromium``), driven by Playwright.
Run: ``.venv/bin/python -m benchmarks.bench_console [--jobs N] [--children N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.bench_search import seed_training_jobs
from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.schema import resources
from opensage.store.trials import TrialStore, TuningTrial
from opensage.testing import opensage_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def seed_tuning_job(data_dir: Path, name: str, children: int) -> None:
    settings = Settings(data_dir=data_dir)
    db = Database(settings.database_url)
    rng = random.Random(3)
    created = time.time() - 3600
    arn = settings.arn("sagemaker", f"hyper-parameter-tuning-job/{name}")
    body = {
        "HyperParameterTuningJobName": name, "HyperParameterTuningJobArn": arn,
        "HyperParameterTuningJobStatus": "Completed", "CreationTime": created,
        "LastModifiedTime": created + 3000, "HyperParameterTuningEndTime": created + 3000,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian", "TrainingJobEarlyStoppingType": "Auto",
            "HyperParameterTuningJobObjective": {"Type": "Minimize",
                                                 "MetricName": "validation:rmse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": children,
                               "MaxParallelTrainingJobs": 10},
            "ParameterRanges": {"ContinuousParameterRanges": [
                {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Auto"}],
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1",
                                            "MaxValue": "10", "ScalingType": "Auto"}],
                "CategoricalParameterRanges": []}},
        "TrainingJobDefinition": {"StaticHyperParameters": {"num_round": "100"},
                                  "AlgorithmSpecification": {"TrainingImage": "xgboost:1.7-1",
                                                             "TrainingInputMode": "File"}},
    }
    with db.transaction() as conn:
        conn.execute(sa.insert(resources), [{
            "kind": "hyper-parameter-tuning-job", "name": name, "arn": arn,
            "status": "Completed", "creation_time": created,
            "last_modified_time": created + 3000, "body": body}])
    trials = []
    for i in range(children):
        stopped = rng.random() < 0.1
        child = f"{name}-{i + 1:03d}-{rng.getrandbits(32):08x}"
        trials.append(TuningTrial(
            tuning_job=name, number=i, training_job_name=child,
            training_job_arn=settings.arn("sagemaker", f"training-job/{child}"),
            creation_time=created + i * 5,
            tuned_hyperparameters={"eta": f"{rng.uniform(0.01, 0.5):.4f}",
                                   "max_depth": str(rng.randint(1, 10))},
            status="Stopped" if stopped else "Completed", objective_status="Succeeded",
            objective=rng.uniform(0.1, 2.0), training_start_time=created + i * 5 + 1,
            training_end_time=created + i * 5 + 4, launched=True, early_stopped=stopped))
    TrialStore(db).write(added=trials)
    db.dispose()


def server_times(url: str, n: int) -> dict[str, float]:
    urllib.request.urlopen(url).read()  # warm
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        body = urllib.request.urlopen(url).read()
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
            "html_kb": round(len(body) / 1024, 1)}


def browser_times(page: Any, url: str, n: int) -> dict[str, float]:
    page.goto(url)  # warm: the static files are cached after this, as for any user
    times = []
    for _ in range(n):
        page.goto(url, wait_until="domcontentloaded")
        times.append(page.evaluate(
            "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))
    return {"p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--children", type=int, default=500)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "console"
        started = time.perf_counter()
        seed_training_jobs(data_dir, args.jobs)
        seed_tuning_job(data_dir, "tune-500", args.children)
        results["seed_s"] = round(time.perf_counter() - started, 1)
        with opensage_server(data_dir) as url, sync_playwright() as p:
            base = url + "/_console"
            # a deep page: the 11th, by its keyset token
            html = urllib.request.urlopen(base + "/training-jobs").read().decode()
            assert "job-" in html
            pages = {
                f"training_list_{args.jobs}": base + "/training-jobs",
                f"training_list_{args.jobs}_by_name": base + "/training-jobs?sort=Name"
                                                              "&order=Ascending",
                f"training_list_{args.jobs}_name_filter": base + "/training-jobs?name=job-09",
                f"tuning_leaderboard_{args.children}": base + "/tuning-jobs/tune-500",
                f"tuning_leaderboard_{args.children}_by_eta": base + "/tuning-jobs/tune-500"
                                                                     "?sort=hp%3Aeta",
                "training_job_page": base + "/training-jobs/job-000042",
                "home": base + "/",
            }
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            for label, page_url in pages.items():
                results[label] = {"server": server_times(page_url, args.loads),
                                  "chromium_dom_content_loaded": browser_times(
                                      page, page_url, args.loads)}
            rows = page.goto(pages[f"tuning_leaderboard_{args.children}"]) and \
                page.locator("table.leaderboard tbody tr").count()
            assert rows == args.children, rows
            browser.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
