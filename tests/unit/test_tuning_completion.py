"""The completion criteria's rules, direction by direction."""

from __future__ import annotations

import pytest

from opensage.services.tuning.completion import (
    converged,
    convergence_window,
    not_improving,
    reason,
    target_reached,
)


@pytest.mark.parametrize("values, direction, expected", [
    ([], "Minimize", 0),
    ([1.0], "Minimize", 0),
    ([1.0, 0.5, 0.4], "Minimize", 0),  # each improves by more than 1 %
    ([1.0, 0.995, 0.999, 1.2], "Minimize", 3),  # 0.5 % is not an improvement
    ([1.0, 0.995, 0.98], "Minimize", 0),  # 0.98 beats 0.995 by 1.5 %
    ([1.0, 1.5, 1.2], "Minimize", 2),
    ([1.0, 1.5, 1.2], "Maximize", 1),
    ([0.0, 0.0, 0.0], "Maximize", 2),
    ([-1.0, -0.5], "Maximize", 0),  # relative to the best's magnitude
])
def test_not_improving_counts_the_trials_since_the_last_improvement(values, direction,
                                                                    expected):
    assert not_improving(values, direction) == expected


@pytest.mark.parametrize("values, target, direction, expected", [
    ([0.5, 0.3], 0.3, "Minimize", True),
    ([0.5, 0.31], 0.3, "Minimize", False),
    ([0.5, 0.9], 0.9, "Maximize", True),
    ([0.5, 0.89], 0.9, "Maximize", False),
    ([], 0.0, "Minimize", False),
])
def test_target_is_reached_in_the_objectives_direction(values, target, direction, expected):
    assert target_reached(values, target, direction) is expected


def test_convergence_needs_a_full_window_without_a_significant_improvement():
    assert convergence_window(8) == 3 and convergence_window(40) == 10
    flat = [1.0, 0.99999, 1.0, 1.0]
    assert converged(flat, "Minimize", 8)
    assert not converged(flat[:3], "Minimize", 8)  # fewer than window + 1
    assert not converged([1.0, 1.0, 1.0, 0.9], "Minimize", 8)  # the last one improved
    assert not converged(flat, "Minimize", 20)  # window 5


def test_reason_names_the_first_criterion_met():
    assert reason([1.0], "Minimize", {}, 10) is None
    assert reason([1.0], "Minimize", {"TargetObjectiveMetricValue": 2.0}, 10) == (
        "TargetObjectiveMetricValue")
    assert reason([1.0], "Maximize", {"TargetObjectiveMetricValue": 2.0}, 10) is None
    stuck = [1.0, 1.0, 1.0, 1.0]
    criteria = {"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3}}
    assert reason(stuck, "Minimize", criteria, 10) == "BestObjectiveNotImproving"
    assert reason(stuck[:3], "Minimize", criteria, 10) is None
    assert reason(stuck, "Minimize", {"ConvergenceDetected": {
        "CompleteOnConvergence": "Enabled"}}, 10) == "ConvergenceDetected"
    assert reason(stuck, "Minimize", {"ConvergenceDetected": {
        "CompleteOnConvergence": "Disabled"}}, 10) is None
