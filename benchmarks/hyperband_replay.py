"""Replay Hyperband's stopping rule on recorded learning curves, without a server.

``bench_tuning.py --part hyperband`` measures Hyperband against Random through real child
jobs, where every figure carries the machine's noise and the tuner's reaction time. This
replay separates the rule from the machinery: it trains the benchmark's configurations
in-process once (same task, same ranges, same seeds, so the same points the server's
Random and Hyperband strategies draw), records each one's validation curve, then walks the
server's own rung logic (``strategies.walk_rungs``, ``hyperband_brackets``, ``bracket_of``)
over them, one trial at a time as ``MaxParallelTrainingJobs=1`` runs them. A stopped trial
costs ``--overhead`` seconds (start and data load) plus its rounds up to the rung plus
``--latency`` seconds of rounds (the reaction time).

``--brackets all`` is the server's rule (Li et al.'s brackets); ``--brackets one`` keeps only
the most aggressive bracket (asynchronous successive halving, as ASHA).

Run: ``.venv/bin/python -m benchmarks.hyperband_replay [--seeds 1 2 3] [--latency 0.1]``.
Prints one JSON summary; figures are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_tuning import RANGES, TASKS, make_task

from opensage.services.tuning.strategies import (
    Peer,
    Search,
    Trial,
    bracket_of,
    bracket_weights,
    hyperband_brackets,
    ranges_of,
    walk_rungs,
)


def curves(rows: int, seed: int, jobs: int, rounds: int) -> list[dict[str, Any]]:
    """The validation curve and training seconds of each configuration the strategies draw
    for ``seed`` (the task and split of ``bench_tuning.py``'s Hyperband part)."""
    import xgboost as xgb

    y, x = make_task("friedman1", rows + rows // 2, 11)
    train, valid = xgb.DMatrix(x[:rows], y[:rows]), xgb.DMatrix(x[rows:], y[rows:])
    search = Search("Random", tuple(ranges_of(RANGES)), "Minimize", seed, jobs)
    drawn: list[Trial] = []
    out = []
    for _ in range(jobs):
        tuned = search.ask(drawn)
        drawn.append(Trial(tuned, None, running=False))
        params = {**TASKS["friedman1"][0], "nthread": 1, "tree_method": "hist",
                  **{k: float(v) for k, v in tuned.items()}}
        params["max_depth"], params["min_child_weight"] = (int(params["max_depth"]),
                                                           int(params["min_child_weight"]))
        result: dict[str, Any] = {}
        started = time.perf_counter()
        xgb.train(params, train, rounds, evals=[(valid, "validation")], evals_result=result,
                  verbose_eval=False)
        out.append({"tuned": tuned, "rmse": result["validation"]["rmse"],
                    "seconds": time.perf_counter() - started})
    return out


def replay(trials: list[dict[str, Any]], brackets: list[list[int]], rounds: int,
           overhead: float, latency: float) -> list[tuple[float, float]]:
    """(training seconds, objective) of each trial under the rung rule, in order."""
    weights = bracket_weights(brackets)
    ran: list[tuple[int, Peer]] = []  # (bracket, what the later trials see of it)
    out = []
    for number, trial in enumerate(trials):
        rmse, per_round = trial["rmse"], trial["seconds"] / rounds
        bracket = bracket_of(number, weights)
        peers = [peer for b, peer in ran if b == bracket]
        newcomers = [peer.series for b, peer in ran if b > bracket]
        passed, stopped = walk_rungs(rmse, brackets[bracket], 0, peers, "Minimize", newcomers)
        steps = rounds
        if stopped:
            steps = min(rounds, brackets[bracket][passed] + int(latency / per_round))
        ran.append((bracket, Peer(rmse[:steps], passed if stopped else None)))
        out.append((overhead + per_round * steps, rmse[steps - 1]))
    return out


def seconds_to_reach(runs: list[tuple[float, float]], target: float) -> float:
    spent, best = 0.0, float("inf")
    for seconds, value in runs:
        spent, best = spent + seconds, min(best, value)
        if best <= target:
            return spent
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 8)))
    parser.add_argument("--jobs", type=int, default=15)
    parser.add_argument("--min-resource", type=int, default=1)
    parser.add_argument("--max-resource", type=int, default=243)
    parser.add_argument("--overhead", type=float, default=0.5,
                        help="seconds a child costs besides its rounds")
    parser.add_argument("--latency", type=float, default=0.1,
                        help="seconds a child runs on after reaching the rung that stops it")
    parser.add_argument("--brackets", choices=["all", "one"], default="all")
    args = parser.parse_args()
    brackets = hyperband_brackets(args.min_resource, args.max_resource)
    if args.brackets == "one":
        brackets = brackets[:1]
    rows = []
    for seed in args.seeds:
        recorded = curves(args.rows, seed, args.jobs, args.max_resource)
        hyperband = replay(recorded, brackets, args.max_resource, args.overhead, args.latency)
        random = [(args.overhead + t["seconds"], t["rmse"][-1]) for t in recorded]
        best_hb, best_random = min(v for _, v in hyperband), min(v for _, v in random)
        worse = max(best_hb, best_random)
        rows.append({
            "seed": seed, "hyperband_best": round(best_hb, 4), "random_best": round(best_random, 4),
            "best_gap": round(best_hb / best_random - 1, 4),
            "stopped": sum(s < args.overhead + t["seconds"] - 1e-9
                           for (s, _), t in zip(hyperband, recorded)),
            "ratio_total": round(sum(s for s, _ in hyperband) / sum(s for s, _ in random), 3),
            "ratio_at_equal_best": round(seconds_to_reach(hyperband, worse)
                                         / seconds_to_reach(random, worse), 3)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps({
        "args": vars(args), "runs": rows,
        "median_ratio_total": statistics.median(r["ratio_total"] for r in rows),
        "median_ratio_at_equal_best": statistics.median(r["ratio_at_equal_best"] for r in rows),
        "seeds_best_equal": sum(r["best_gap"] <= 1e-4 for r in rows),
        "xgboost_rounds_per_second": round(float(np.mean(
            [args.max_resource / t["seconds"] for t in recorded])), 1)}, indent=2))


if __name__ == "__main__":
    main()
