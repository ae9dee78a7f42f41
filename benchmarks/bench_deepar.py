"""DeepAR quality: opensage's DeepAR (the training job's own code, run through
``opensage.algorithms.deepar.train.train`` on a job directory) against a seasonal-naive
forecast and an ETS-like baseline (additive Holt-Winters per series, smoothing parameters
chosen on a grid by in-sample one-step error) on three synthetic data sets shaped like public
ones: daily series with a weekly season and trend (electricity-like), hourly counts with a
daily season (negative-binomial likelihood, traffic-like), monthly series with a yearly
season and a random-walk level (M4-monthly-like). Score: mean weighted quantile loss over
quantiles 0.1..0.9 and RMSE of the last ``prediction_length`` points of every series.

Runs in the builtin-torch environment's interpreter:
``PYTHONPATH=src ~/.cache/opensage-test/frameworks/builtin-torch/bin/python
benchmarks/bench_deepar.py``
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import re
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from opensage.algorithms.deepar.data import weighted_quantile_loss

QUANTILES = [q / 10 for q in range(1, 10)]


def daily(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
    out = []
    for i in range(30):
        t = np.arange(300)
        level = rng.uniform(5, 100)
        out.append(level * (1 + 0.4 * np.sin(2 * np.pi * t / 7 + i) + 0.001 * t)
                   + rng.normal(0, 0.08 * level, size=len(t)))
    return out, {"time_freq": "D", "prediction_length": 14, "context_length": 28,
                 "likelihood": "student-T", "season": 7}


def hourly_counts(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
    out = []
    for i in range(30):
        t = np.arange(24 * 21)
        rate = rng.uniform(2, 30) * (1.2 + np.sin(2 * np.pi * (t + i) / 24))
        out.append(rng.poisson(rate).astype(float))
    return out, {"time_freq": "H", "prediction_length": 24, "context_length": 48,
                 "likelihood": "negative-binomial", "season": 24}


def monthly(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
    out = []
    for i in range(40):
        t = np.arange(144)
        level = 100 + np.cumsum(rng.normal(0.3, 2.0, size=len(t)))
        out.append(level + 15 * np.sin(2 * np.pi * (t + i) / 12) + rng.normal(0, 3, len(t)))
    return out, {"time_freq": "M", "prediction_length": 12, "context_length": 36,
                 "likelihood": "gaussian", "season": 12}


def holt_winters(y: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """Additive Holt-Winters, parameters by grid search on one-step in-sample squared error."""
    best, best_forecast = np.inf, None
    for alpha, beta, gamma in itertools.product((0.1, 0.3, 0.6), (0.0, 0.05, 0.2),
                                                (0.05, 0.2, 0.5)):
        level = y[:season].mean()
        trend = (y[season:2 * season].mean() - y[:season].mean()) / season \
            if len(y) >= 2 * season else 0.0
        seasonal = list(y[:season] - level)
        error = 0.0
        for t in range(season, len(y)):
            s = seasonal[t - season]
            error += (y[t] - (level + trend + s)) ** 2
            new_level = alpha * (y[t] - s) + (1 - alpha) * (level + trend)
            trend = beta * (new_level - level) + (1 - beta) * trend
            seasonal.append(gamma * (y[t] - new_level) + (1 - gamma) * s)
            level = new_level
        if error < best:
            n = len(y)
            best = error
            best_forecast = np.array([level + (h + 1) * trend + seasonal[n - season + h % season]
                                      for h in range(horizon)])
    assert best_forecast is not None
    return best_forecast


def scores(truth: np.ndarray, quantiles: dict[float, np.ndarray], mean: np.ndarray) -> tuple[
        float, float]:
    wql = float(np.mean([weighted_quantile_loss(truth, quantiles[q], q) for q in QUANTILES]))
    return wql, float(np.sqrt(np.mean((truth - mean) ** 2)))


def run(name: str, series: list[np.ndarray], setting: dict[str, Any], epochs: int) -> None:
    from opensage.algorithms.contract import TrainingEnv
    from opensage.algorithms.deepar.train import train

    horizon, season = setting["prediction_length"], setting["season"]
    root = Path(tempfile.mkdtemp(prefix="bench-deepar-"))
    (root / "input/config").mkdir(parents=True)
    for channel in ("train", "test"):
        (root / "input/data" / channel).mkdir(parents=True)
    start = {"D": "2020-01-01", "H": "2020-01-01 00:00:00", "M": "2010-01-01"}[
        setting["time_freq"]]
    (root / "input/data/train/series.json").write_text("".join(
        json.dumps({"start": start, "target": s[:-horizon].round(4).tolist()}) + "\n"
        for s in series))
    (root / "input/data/test/series.json").write_text("".join(
        json.dumps({"start": start, "target": s.round(4).tolist()}) + "\n" for s in series))
    hps = {k: str(v) for k, v in setting.items() if k != "season"}
    hps.update({"epochs": str(epochs), "mini_batch_size": "32", "num_cells": "40",
                "num_layers": "2", "learning_rate": "0.003", "num_eval_samples": "100"})
    (root / "input/config/hyperparameters.json").write_text(json.dumps(hps))
    (root / "input/config/inputdataconfig.json").write_text(json.dumps({"train": {},
                                                                        "test": {}}))
    buffer = io.StringIO()
    started = time.perf_counter()
    with redirect_stdout(buffer):
        train(TrainingEnv(root))
    seconds = time.perf_counter() - started
    log = buffer.getvalue()
    deepar_wql = float(re.search(r"mean_wQuantileLoss\): (\S+)", log).group(1))  # type: ignore[union-attr]
    deepar_rmse = float(re.search(r"RMSE\): (\S+)", log).group(1))  # type: ignore[union-attr]
    truth = np.concatenate([s[-horizon:] for s in series])
    naive = np.concatenate([np.array([s[:-horizon][len(s) - horizon - season + h % season]
                                      for h in range(horizon)]) for s in series])
    ets = np.concatenate([holt_winters(s[:-horizon], season, horizon) for s in series])
    # ETS's quantiles: normal errors with the in-sample residual spread of seasonal naive
    spread = np.concatenate([np.repeat(np.std(s[season:-horizon] - s[:-horizon - season]),
                                       horizon) for s in series])
    from statistics import NormalDist

    ets_q = {q: ets + NormalDist().inv_cdf(q) * spread for q in QUANTILES}
    print(f"\n## {name}: {len(series)} series, prediction_length {horizon}, "
          f"{setting['likelihood']}, {epochs} epochs ({seconds:.0f} s)")
    print("| forecast | mean wQuantileLoss | RMSE |")
    print("|---|---|---|")
    print(f"| opensage DeepAR | {deepar_wql:.4f} | {deepar_rmse:.3f} |")
    for label, q, mean in (("seasonal naive (point: every quantile)",
                            dict.fromkeys(QUANTILES, naive), naive),
                           ("ETS (Holt-Winters additive, normal quantiles)", ets_q, ets)):
        wql, rmse = scores(truth, q, mean)
        print(f"| {label} | {wql:.4f} | {rmse:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("SM_NUM_CPUS", "2")
    rng = np.random.default_rng(0)
    for name, make in (("daily, weekly season", daily), ("hourly counts", hourly_counts),
                       ("monthly, random-walk level", monthly)):
        series, setting = make(rng)
        run(name, series, setting, args.epochs)


if __name__ == "__main__":
    main()
