"""The pruners on their own: trials and intermediate values in, verdicts out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opensage.services.tuning.plans import Plan
from opensage.services.tuning.pruners import Hyperband, MedianStopping, Verdict
from opensage.store.trials import TuningTrial


class Values:
    """Intermediate values from a fixed table (what the metrics store would answer)."""

    def __init__(self, series: dict[str, list[float]]) -> None:
        self.series = series
        self.asked: list[list[str]] = []

    def of(self, trials: Sequence[TuningTrial], metric: str) -> dict[str, list[float]]:
        self.asked.append([t.training_job_name for t in trials])
        return {t.training_job_name: self.series.get(t.training_job_name, []) for t in trials}


def trial(number: int, status: str = "InProgress", **fields: Any) -> TuningTrial:
    done = status in ("Completed", "Stopped")
    return TuningTrial("tune", number, f"job-{number}", f"arn:job-{number}", float(number),
                       status=status, launched=True,
                       objective_status="Succeeded" if done else "Pending", **fields)


PLAN = Plan("Random", (), "Minimize", "validation:rmse", max_jobs=10, max_parallel=3, seed=1)


def test_median_stopping_stops_a_child_worse_than_the_median_of_the_ended_ones() -> None:
    values = Values({"job-1": [1.0, 0.8, 0.6], "job-2": [1.2, 0.9, 0.7],
                     "job-3": [3.0, 2.9, 2.8], "job-4": [0.9, 0.7]})
    trials = [trial(1, "Completed"), trial(2, "Completed"), trial(3), trial(4),
              trial(5, stop_requested=True)]
    verdicts = MedianStopping().prune(trials, PLAN, values)  # type: ignore[arg-type]
    assert verdicts == [Verdict(3, stop=True)]
    assert values.asked == [["job-1", "job-2", "job-3", "job-4"]]  # one read, no job-5


def test_median_stopping_waits_for_two_ended_children() -> None:
    values = Values({"job-1": [1.0], "job-2": [9.0]})
    assert MedianStopping().prune([trial(1, "Completed"), trial(2)], PLAN,
                                  values) == []  # type: ignore[arg-type]
    assert values.asked == []


HYPERBAND = Plan("Hyperband", (), "Minimize", "validation:rmse", max_jobs=10, max_parallel=3,
                 seed=1, min_resource=1, max_resource=9, resource_key="num_round")


def test_hyperband_stops_a_trial_behind_its_bracket_at_a_rung_and_promotes_the_others() -> None:
    # bracket 0 rungs: steps 1 and 3; of n values at a rung, the best ceil(n/3) go on
    values = Values({"job-1": [0.5, 0.4, 0.3, 0.2], "job-2": [0.9, 0.8, 0.7],
                     "job-3": [0.45]})
    trials = [trial(1, "Completed", bracket=0, rung=2), trial(2, bracket=0, rung=1),
              trial(3, bracket=0)]
    verdicts = Hyperband().prune(trials, HYPERBAND, values)  # type: ignore[arg-type]
    assert verdicts == [Verdict(2, stop=True, rung=1, stopped_at_rung=1),
                        Verdict(3, stop=False, rung=1)]  # best of three at step 1


def test_hyperband_without_a_resource_hyperparameter_stops_a_child_whose_budget_is_spent(
        ) -> None:
    plan = Plan("Hyperband", (), "Minimize", "loss", max_jobs=10, max_parallel=3, seed=1,
                min_resource=9, max_resource=9, resource_key=None)
    values = Values({"job-1": [0.5] * 9, "job-2": [0.5] * 4})
    verdicts = Hyperband().prune([trial(1, bracket=0), trial(2, bracket=0)], plan,
                                 values)  # type: ignore[arg-type]
    assert verdicts == [Verdict(1, stop=True, early_stopped=False, rung=0)]
