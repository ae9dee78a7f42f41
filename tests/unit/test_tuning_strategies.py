"""Scaling types, grid order and ask/tell determinism of the tuning search."""

from __future__ import annotations

import math
import statistics

import pytest

from opensage.services.tuning.strategies import (
    Range,
    Search,
    Trial,
    grid,
    median_rule,
    ranges_of,
    resolve_scaling,
    running_averages,
)

pytest.importorskip("optuna")


@pytest.mark.parametrize("kind, scaling, low, high, expected", [
    ("Continuous", "Auto", 0.1, 0.5, "Linear"),
    ("Continuous", "Auto", 1e-4, 1.0, "Logarithmic"),  # four orders of magnitude
    ("Continuous", "Auto", 0.0, 10.0, "Linear"),  # log needs min > 0
    ("Integer", None, 1, 1000, "Logarithmic"),
    ("Integer", "Linear", 1, 1000, "Linear"),
    ("Continuous", "ReverseLogarithmic", 0.5, 0.99, "ReverseLogarithmic"),
    ("Categorical", "Auto", 0, 0, "Linear"),
])
def test_auto_scaling_is_resolved(kind, scaling, low, high, expected):
    assert resolve_scaling(kind, scaling, low, high) == expected


def test_distributions_in_the_internal_space():
    integer, log, rev = ranges_of({  # integer ranges come first, as in a grid
        "ContinuousParameterRanges": [
            {"Name": "alpha", "MinValue": "0.001", "MaxValue": "10", "ScalingType": "Logarithmic"},
            {"Name": "subsample", "MinValue": "0.5", "MaxValue": "0.99",
             "ScalingType": "ReverseLogarithmic"}],
        "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "64",
                                    "ScalingType": "Logarithmic"}]})
    d = log.distribution()
    assert (d.low, d.high, d.log) == (0.001, 10.0, True)
    d = rev.distribution()  # y = 1 - x, log-uniform on [1 - max, 1 - min]
    assert d.low == pytest.approx(0.01) and d.high == pytest.approx(0.5) and d.log
    assert float(rev.to_api(d.low)) == pytest.approx(0.99)
    assert float(rev.to_api(d.high)) == pytest.approx(0.5)
    assert rev.to_internal(rev.to_api(0.2)) == pytest.approx(0.2)
    d = integer.distribution()
    assert (d.low, d.high, d.log) == (1, 64, True)
    assert integer.to_api(17) == "17"


def _samples(rng: Range, n: int = 150) -> list[float]:
    search = Search("Random", (rng,), "Minimize", seed=3, max_jobs=n)
    trials: list[Trial] = []
    for _ in range(n):
        tuned = search.ask(trials)
        trials.append(Trial(tuned, 0.0, running=False))
    return [float(t.tuned[rng.name]) for t in trials]


def test_random_sampling_follows_the_scaling_type():
    linear = _samples(Range("a", "Continuous", 0.0, 1.0, "Linear"))
    log = _samples(Range("b", "Continuous", 1e-4, 1.0, "Logarithmic"))
    rev = _samples(Range("c", "Continuous", 0.0, 0.9999, "ReverseLogarithmic"))
    assert all(0 <= v <= 1 for v in linear) and statistics.median(linear) == pytest.approx(
        0.5, abs=0.1)
    # log-uniform: the median is the geometric mean of the bounds (1e-2), not 0.5
    assert all(1e-4 <= v <= 1 for v in log)
    assert math.log10(statistics.median(log)) == pytest.approx(-2, abs=0.4)
    # reverse log: 1 - x is log-uniform, so values crowd towards 1
    assert all(0 <= v <= 0.9999 for v in rev)
    assert math.log10(1 - statistics.median(rev)) == pytest.approx(-2, abs=0.4)


def test_grid_order_is_integer_then_categorical_last_fastest():
    ranges = ranges_of({
        "CategoricalParameterRanges": [{"Name": "booster", "Values": ["gbtree", "dart"]}],
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "3"}]})
    combos = grid(ranges)
    assert combos == [{"max_depth": d, "booster": b} for d in "123" for b in ("gbtree", "dart")]
    search = Search("Grid", tuple(ranges), "Maximize", seed=0, max_jobs=6)
    trials: list[Trial] = []
    for _ in range(6):
        trials.append(Trial(search.ask(trials), 1.0, running=False))
    assert [t.tuned for t in trials] == combos


@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_ask_is_a_function_of_the_stored_trials(strategy):
    """A restarted server rebuilds the sampler from the store and asks the same point."""
    ranges = tuple(ranges_of({
        "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.01", "MaxValue": "1"}],
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "8"}],
        "CategoricalParameterRanges": [{"Name": "booster", "Values": ["gbtree", "dart"]}]}))
    search = Search(strategy, ranges, "Minimize", seed=11, max_jobs=12)
    trials: list[Trial] = []
    for i in range(8):
        tuned = search.ask(trials)
        assert search.ask(trials) == tuned  # same history, same answer
        running = i >= 6
        trials.append(Trial(tuned, None if running else float(tuned["eta"]), running))
    asked = [t.tuned for t in trials]
    assert len({tuple(sorted(t.items())) for t in asked}) == len(asked)  # no repeated draw
    assert all(0.01 <= float(t["eta"]) <= 1 and 1 <= int(t["max_depth"]) <= 8 for t in asked)
    assert Search(strategy, ranges, "Minimize", seed=11, max_jobs=12).ask(trials) == \
        search.ask(trials)


def test_median_rule_compares_the_best_so_far_with_the_median_of_running_averages():
    prior = [running_averages(v) for v in ([4.0, 2.0, 1.0], [6.0, 2.0, 1.0], [3.0, 3.0])]
    assert prior[0] == [4.0, 3.0, 7 / 3]
    # step 1: running averages 3, 4, 3 -> median 3
    assert median_rule([5.0, 3.5], prior, "Minimize", min_trials=2)
    assert not median_rule([5.0, 2.9], prior, "Minimize", min_trials=2)
    assert not median_rule([2.9, 3.5], prior, "Minimize", min_trials=2)  # best so far counts
    # step 2: only two prior jobs reached it; needing three, the rule compares at step 1,
    # the last step three of them reached (a late check still decides)
    assert median_rule([9.0, 9.0, 9.0], prior, "Minimize", min_trials=2)
    assert median_rule([9.0, 9.0, 9.0], prior, "Minimize", min_trials=3)
    assert not median_rule([9.0, 2.0, 9.0], prior, "Minimize", min_trials=3)
    assert not median_rule([9.0, 9.0, 9.0], prior[:2], "Minimize", min_trials=3)
    assert median_rule([1.0, 2.0], prior, "Maximize", min_trials=2)
    assert not median_rule([], prior, "Minimize", min_trials=1)


def test_a_warm_start_seeds_the_sampler_with_the_parents_trials():
    """Bayesian with the parent's 20 trials as prior: past its startup trials at once, it asks
    near the parent's optimum (eta = 0.2) instead of drawing at random."""
    ranges = tuple(ranges_of({"ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.01", "MaxValue": "1", "ScalingType": "Linear"}]}))
    search = Search("Bayesian", ranges, "Minimize", seed=5, max_jobs=6)
    prior = [Trial({"eta": repr(i / 20)}, (i / 20 - 0.2) ** 2, running=False)
             for i in range(1, 21)]
    own = [Trial({"eta": "0.5"}, 0.09, running=False)]
    cold = [float(search.ask(own * i)["eta"]) for i in range(6)]
    warm = [float(search.ask(own * i, prior)["eta"]) for i in range(6)]
    assert all(abs(e - 0.2) < 0.1 for e in warm), warm
    assert not all(abs(e - 0.2) < 0.1 for e in cold), cold
    grid_search = Search("Grid", tuple(ranges_of({"CategoricalParameterRanges": [
        {"Name": "eta", "Values": ["0.1", "0.2"]}]})), "Minimize", seed=5, max_jobs=2)
    assert grid_search.ask([], prior) == {"eta": "0.1"}  # the grid's own order


def test_hyperband_rungs_brackets_and_promotion():
    from opensage.services.tuning.strategies import (
        bracket_of,
        bracket_weights,
        hyperband_brackets,
        promoted,
    )

    # MinResource 1, MaxResource 27, eta 3: Li et al.'s four brackets
    brackets = hyperband_brackets(1, 27)
    assert brackets == [[1, 3, 9], [3, 9], [9], []]
    assert bracket_weights(brackets) == [27, 12, 6, 4]
    assert hyperband_brackets(10, 3000)[0] == [10, 30, 90, 270, 810, 2430]
    assert hyperband_brackets(5, 6) == [[5]]
    # every trial's bracket depends on its number only; over one cycle the brackets get
    # their weights, the most aggressive first
    weights = bracket_weights(brackets)
    cycle = [bracket_of(n, weights) for n in range(sum(weights))]
    assert cycle[0] == 0
    assert [cycle.count(b) for b in range(4)] == weights
    assert [bracket_of(n + sum(weights), weights) for n in range(5)] == cycle[:5]
    # successive halving: the best ceil(n / 3) of the n values at a rung go on
    assert promoted(5.0, [], "Minimize")  # the first to reach a rung
    assert not promoted(5.0, [1.0], "Minimize") and promoted(1.0, [5.0], "Minimize")
    assert promoted(5.0, [1.0], "Maximize")
    assert promoted(2.0, [1.0, 3.0, 4.0, 5.0], "Minimize")  # 2nd of 5: keep 2
    assert not promoted(3.0, [1.0, 2.0, 4.0, 5.0], "Minimize")  # 3rd of 5
    assert promoted(1.0, [1.0, 1.0], "Minimize")  # ties go on


def test_walk_rungs_compares_with_the_bracket_peers_that_reached_each_rung():
    from opensage.services.tuning.strategies import Peer, walk_rungs

    rungs = [1, 3, 9]
    good = Peer([1.0, 0.8, 0.6, 0.5, 0.4, 0.35, 0.3, 0.28, 0.27, 0.26])
    # the first trial of a bracket meets no peer: it passes every rung its series reached
    assert walk_rungs([2.0] * 5, rungs, 0, [], "Minimize") == (2, False)
    # worse than the only peer at rung 0 (step 1): stopped there
    assert walk_rungs([2.0, 1.5], rungs, 0, [good], "Minimize") == (0, True)
    # better at step 1 and 3, worse at step 9: stopped at rung 2
    series = [0.9, 0.7, 0.55, 0.5, 0.45, 0.4, 0.38, 0.36, 0.35]
    assert walk_rungs(series, rungs, 0, [good], "Minimize") == (2, True)
    # rungs already passed are not walked again; a series short of the next rung waits
    assert walk_rungs(series[:5], rungs, 2, [good], "Minimize") == (2, False)
    # a peer stopped at rung 0 does not count at rung 1 (it never reached it as a survivor)
    stopped = Peer([0.1, 0.1, 0.1], stopped_at_rung=0)
    assert walk_rungs([1.0, 0.9, 0.8], rungs, 1, [stopped], "Minimize") == (2, False)
    assert walk_rungs([1.0, 0.9, 0.8], rungs, 1, [Peer([0.1, 0.1, 0.1])],
                      "Minimize") == (1, True)
    # Maximize: higher is better
    assert walk_rungs([0.9], rungs, 0, [Peer([0.5])], "Maximize") == (1, False)


def test_newcomers_from_less_aggressive_brackets_compete_at_the_first_rung_only():
    from opensage.services.tuning.strategies import walk_rungs

    rungs = [1, 3, 9]
    # the bracket's first trial: alone it would pass rung 0; a better newcomer (a trial of a
    # less aggressive bracket, which ran past step 1 without meeting a rung) stops it
    assert walk_rungs([2.0, 1.8], rungs, 0, [], "Minimize") == (1, False)
    assert walk_rungs([2.0, 1.8], rungs, 0, [], "Minimize", [[1.0, 0.9]]) == (0, True)
    # among several it needs to be in the best ceil(n / 3): of 4, 2nd goes on, 3rd does not
    assert walk_rungs([2.0], rungs, 0, [], "Minimize", [[1.0], [3.0], [4.0]]) == (1, False)
    assert walk_rungs([2.0], rungs, 0, [], "Minimize", [[1.0], [1.5], [4.0]]) == (0, True)
    # at later rungs only the bracket's own survivors count
    series = [0.5, 0.4, 0.3]
    assert walk_rungs(series, rungs, 1, [], "Minimize", [[0.1, 0.1, 0.1]]) == (2, False)
    # a newcomer that has not reached the step yet does not count
    assert walk_rungs([2.0, 1.8], [3], 0, [], "Minimize", [[1.0]]) == (0, False)
