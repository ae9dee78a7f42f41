"""The search: SageMaker parameter ranges as a search space, and ask/tell over stored trials.

Nothing here keeps state between calls. ``Search.ask(trials)`` rebuilds an Optuna study from
the trials the store holds (finished ones with their objective, running ones as RUNNING so
the TPE sampler's constant liar avoids them) and asks it for the next point; the sampler's
seed is derived from the tuning job's seed and the trial number, so a restarted server asks
exactly what it would have asked without the restart, and two asks never repeat one draw.

Scaling types map onto Optuna distributions in an internal space:

* ``Linear``: uniform on ``[min, max]``;
* ``Logarithmic``: log-uniform on ``[min, max]`` (``min > 0``);
* ``ReverseLogarithmic``: ``x = 1 - y`` with ``y`` log-uniform on ``[1 - max, 1 - min]``
  (continuous ranges within ``0 <= x < 1``): values crowd towards 1, as AWS describes;
* ``Auto``: ``Logarithmic`` when ``min > 0`` and the range spans at least two orders of
  magnitude (``max / min >= AUTO_LOG_RATIO``), else ``Linear``.

Grid enumerates every combination of the integer and categorical ranges, in the order the
request lists them (integer ranges, then categorical ones, each in its own order), the last
range varying fastest; trial ``n`` (0-based) is combination ``n``.
"""

from __future__ import annotations

import itertools
import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opensage.errors import ValidationException

AUTO_LOG_RATIO = 100.0
INTEGER, CONTINUOUS, CATEGORICAL = "Integer", "Continuous", "Categorical"
_RANGE_KEYS = ((INTEGER, "IntegerParameterRanges"), (CONTINUOUS, "ContinuousParameterRanges"),
               (CATEGORICAL, "CategoricalParameterRanges"))


def optuna_module() -> Any:
    """Optuna, imported lazily: the one place that names the extra to install."""
    try:
        import optuna
    except ImportError:
        raise ValidationException(
            "The Bayesian and Random tuning strategies need Optuna, which is not installed on "
            "this server: install opensage with the 'tuning' extra "
            "(pip install 'opensage[tuning]').") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass(frozen=True)
class Range:
    """One parameter range of a tuning request, with its scaling resolved."""

    name: str
    kind: str  # Integer | Continuous | Categorical
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"  # Linear | Logarithmic | ReverseLogarithmic (Auto resolved)
    values: tuple[str, ...] = ()

    # -- the internal space the sampler sees ---------------------------------------------
    def distribution(self) -> Any:
        dists = optuna_module().distributions
        if self.kind == CATEGORICAL:
            return dists.CategoricalDistribution(self.values)
        if self.kind == INTEGER:
            return dists.IntDistribution(int(self.low), int(self.high),
                                         log=self.scaling == "Logarithmic")
        if self.scaling == "ReverseLogarithmic":
            return dists.FloatDistribution(1 - self.high, 1 - self.low, log=True)
        return dists.FloatDistribution(self.low, self.high, log=self.scaling == "Logarithmic")

    def to_api(self, internal: Any) -> str:
        """The hyperparameter string a child job gets for a sampled internal value."""
        if self.kind == CATEGORICAL:
            return str(internal)
        if self.kind == INTEGER:
            return str(int(internal))
        value = 1.0 - float(internal) if self.scaling == "ReverseLogarithmic" else float(internal)
        return repr(min(max(value, self.low), self.high))

    def to_internal(self, text: str) -> Any:
        """The inverse of ``to_api``: a stored trial's value in the sampler's space."""
        if self.kind == CATEGORICAL:
            return text
        if self.kind == INTEGER:
            return int(float(text))
        if self.scaling == "ReverseLogarithmic":
            return min(max(1.0 - float(text), 1 - self.high), 1 - self.low)
        return min(max(float(text), self.low), self.high)

    def contains(self, text: str) -> bool:
        """Whether a hyperparameter string lies in this range (a warm-start parent's point)."""
        if self.kind == CATEGORICAL:
            return text in self.values
        try:
            value = float(text)
        except (TypeError, ValueError):
            return False
        if self.kind == INTEGER and not value.is_integer():
            return False
        return self.low <= value <= self.high

    def grid_values(self) -> list[str]:
        if self.kind == CATEGORICAL:
            return list(self.values)
        if self.kind == INTEGER:
            return [str(v) for v in range(int(self.low), int(self.high) + 1)]
        raise ValidationException(
            f"The Grid strategy cannot enumerate the continuous range {self.name!r}.")


def resolve_scaling(kind: str, scaling: str | None, low: float, high: float) -> str:
    """``Auto`` (or nothing) made concrete; other scaling types pass through."""
    if kind == CATEGORICAL:
        return "Linear"
    if scaling in (None, "Auto"):
        if low > 0 and high / low >= AUTO_LOG_RATIO:
            return "Logarithmic"
        return "Linear"
    return scaling


def ranges_of(parameter_ranges: Mapping[str, Any] | None) -> list[Range]:
    """The request's ``ParameterRanges`` as ``Range``s, in request order (already checked)."""
    out: list[Range] = []
    for kind, key in _RANGE_KEYS:
        for entry in (parameter_ranges or {}).get(key) or []:
            if kind == CATEGORICAL:
                out.append(Range(entry["Name"], kind, values=tuple(entry["Values"])))
                continue
            low, high = float(entry["MinValue"]), float(entry["MaxValue"])
            out.append(Range(entry["Name"], kind, low, high,
                             resolve_scaling(kind, entry.get("ScalingType"), low, high)))
    return out


@dataclass(frozen=True)
class Trial:
    """What the sampler needs of a stored trial."""

    tuned: Mapping[str, str]
    objective: float | None
    running: bool


def grid(ranges: Sequence[Range]) -> list[dict[str, str]]:
    ordered = [r for r in ranges if r.kind == INTEGER] + [
        r for r in ranges if r.kind == CATEGORICAL]
    names = [r.name for r in ordered]
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(r.grid_values() for r in ordered))]


def grid_size(ranges: Sequence[Range]) -> int:
    return math.prod(len(r.grid_values()) for r in ranges)


@dataclass(frozen=True)
class Search:
    strategy: str  # Bayesian | Random | Grid | Hyperband
    ranges: tuple[Range, ...]
    direction: str  # Maximize | Minimize
    seed: int
    max_jobs: int

    def ask(self, trials: Sequence[Trial], prior: Sequence[Trial] = ()) -> dict[str, str]:
        """The tuned hyperparameters of trial number ``len(trials)`` (0-based).

        ``prior`` are a warm start's parent trials: the sampler sees them as finished trials
        before this job's own (Grid ignores them: its order is the grid's)."""
        if not self.ranges:
            return {}
        if self.strategy == "Grid":
            combos = grid(self.ranges)
            return combos[len(trials) % len(combos)]
        optuna = optuna_module()
        distributions = {r.name: r.distribution() for r in self.ranges}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning and friends
            study = optuna.create_study(direction=self.direction.lower(),
                                        sampler=self._sampler(optuna, len(trials)))
            states = optuna.trial.TrialState
            for trial in [*prior, *trials]:
                params = {r.name: r.to_internal(trial.tuned[r.name]) for r in self.ranges
                          if r.name in trial.tuned}
                if len(params) != len(self.ranges):
                    continue
                if trial.objective is not None and math.isfinite(trial.objective):
                    frozen = optuna.trial.create_trial(params=params, distributions=distributions,
                                                       value=trial.objective)
                else:
                    frozen = optuna.trial.create_trial(
                        params=params, distributions=distributions,
                        state=states.RUNNING if trial.running else states.FAIL)
                study.add_trial(frozen)
            asked = study.ask(distributions)
        return {r.name: r.to_api(asked.params[r.name]) for r in self.ranges}

    def _sampler(self, optuna: Any, number: int) -> Any:
        # A fresh seed per trial number: the draw for trial n is the same after a restart,
        # and never the draw of another trial.
        seed = (self.seed * 1_000_003 + number) % 2**32
        if self.strategy in ("Random", "Hyperband"):  # Hyperband samples new points at random
            return optuna.samplers.RandomSampler(seed=seed)
        startup = min(10, max(2, self.max_jobs // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup,
                                          constant_liar=True)


# -- early stopping (TrainingJobEarlyStoppingType Auto) ---------------------------------------
def running_averages(values: Sequence[float]) -> list[float]:
    """The running average of a metric series: element k is the mean of values 0..k."""
    out: list[float] = []
    total = 0.0
    for k, value in enumerate(values, start=1):
        total += value
        out.append(total / k)
    return out


def median_rule(current: Sequence[float], prior: Sequence[Sequence[float]], direction: str,
                min_trials: int) -> bool:
    """AWS's early-stopping rule: stop a running job when its objective at step ``k`` is worse
    than the median of the prior jobs' running averages up to step ``k``.

    ``current`` is the running job's series so far (step ``k`` is its last element); the
    best value it reached so far is compared, so a job is never stopped for one bad round.
    ``prior`` holds the running averages of the ended jobs; only those that reached step ``k``
    count, and fewer than ``min_trials`` of them never stop anything.
    """
    if not current:
        return False
    # Past the end of the earlier jobs' curves (they stopped early, or the check came late)
    # compare at their last common step rather than never.
    reached = sorted((len(curve) for curve in prior), reverse=True)
    if len(reached) >= max(1, min_trials):
        step = min(len(current), reached[max(1, min_trials) - 1]) - 1
        current = current[:step + 1]
    else:
        step = len(current) - 1
    averages = [curve[step] for curve in prior if len(curve) > step]
    if len(averages) < max(1, min_trials):
        return False
    median = statistics.median(averages)
    if direction == "Maximize":
        return max(current) < median
    return min(current) > median


# -- Hyperband (successive halving in brackets) ------------------------------------------------
HYPERBAND_ETA = 3
# The hyperparameters that carry a job's resource (rounds or epochs), in the order they are
# looked for: XGBoost's ``num_round``, then the keys AWS infers MaxResource from.
RESOURCE_KEYS = ("num_round", "epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")


def hyperband_brackets(min_resource: int, max_resource: int,
                       eta: int = HYPERBAND_ETA) -> list[list[int]]:
    """The rungs of each bracket: bracket ``b`` starts its trials' comparisons at
    ``min_resource * eta**b`` and compares again at every further factor of ``eta`` below
    ``max_resource`` (the last bracket, the least aggressive, has no rung when
    ``max_resource`` is ``min_resource`` times a power of ``eta``).
    Every trial runs with ``max_resource`` as its budget; a rung is a step (round, epoch) at
    which a trial that is not among the best ``1/eta`` of its bracket at that step is stopped
    (see ``walk_rungs``)."""
    s_max = 0
    while min_resource * eta ** (s_max + 1) <= max_resource:
        s_max += 1
    brackets = []
    for b in range(s_max + 1):
        rungs, r = [], min_resource * eta ** b
        while r < max_resource:
            rungs.append(r)
            r *= eta
        brackets.append(rungs)
    return brackets


def bracket_weights(brackets: Sequence[Sequence[int]], eta: int = HYPERBAND_ETA) -> list[int]:
    """How many configurations each bracket gets in one Hyperband iteration (Li et al.:
    ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` with ``s`` the bracket's number of rungs)."""
    total = len(brackets)
    return [math.ceil(total / (len(rungs) + 1) * eta ** len(rungs)) for rungs in brackets]


def bracket_of(number: int, weights: Sequence[int]) -> int:
    """The bracket of trial ``number`` (0-based): smooth weighted round robin over the
    brackets' weights, so the brackets interleave in proportion and every trial's bracket
    depends on its number only (a restart assigns the same)."""
    current = [0] * len(weights)
    total = sum(weights)
    chosen = 0
    for _ in range(number % total + 1):
        for i, weight in enumerate(weights):
            current[i] += weight
        chosen = max(range(len(weights)), key=lambda i: (current[i], -i))
        current[chosen] -= total
    return chosen


def promoted(value: float, others: Sequence[float], direction: str,
             eta: int = HYPERBAND_ETA) -> bool:
    """Successive halving at one rung (asynchronously, as trials reach it): a trial goes on
    when its value at the rung is among the best ``ceil(n / eta)`` of the ``n`` values its
    bracket recorded there (``others`` plus its own)."""
    sign = -1.0 if direction == "Maximize" else 1.0
    keep = math.ceil((len(others) + 1) / eta)
    better = sum(sign * other < sign * value for other in others)
    return better < keep


@dataclass(frozen=True)
class Peer:
    """Another trial of the same bracket, as a rung sees it: its objective series so far, and
    the rung it was stopped at (None: not stopped)."""

    series: Sequence[float]
    stopped_at_rung: int | None = None


def walk_rungs(series: Sequence[float], rungs: Sequence[int], passed: int,
               peers: Sequence[Peer], direction: str,
               newcomers: Sequence[Sequence[float]] = ()) -> tuple[int, bool]:
    """Take a running trial through the rungs its series has reached since it passed
    ``passed`` of them: answers how many rungs it has passed now, and whether it is to be
    stopped (at the rung after those). At rung ``k`` (step ``rungs[k]``) it is compared with
    the peers of its bracket that reached that step and were not stopped at an earlier rung.

    ``newcomers`` are the series of the trials of less aggressive brackets: their first rung
    lies beyond this bracket's first, so they reached that step without meeting any rung, a
    sample of the same configurations at the same resource as this bracket's own entrants.
    They compete at the first rung too (only there: at later rungs the bracket's peers are
    survivors), so a bracket's first trials no longer pass it unopposed."""
    while passed < len(rungs) and len(series) >= rungs[passed]:
        step = rungs[passed]
        others = [peer.series[step - 1] for peer in peers if len(peer.series) >= step
                  and (peer.stopped_at_rung is None or peer.stopped_at_rung >= passed)]
        if passed == 0:
            others += [other[step - 1] for other in newcomers if len(other) >= step]
        if not promoted(series[step - 1], others, direction):
            return passed, True
        passed += 1
    return passed, False
