"""Picks the variant (by weight, or the request's ``TargetVariant``) and, within it, the
instance (round robin) that serves a request. Immutable once built: an update swaps in a
new router, so a request in flight never sees half a change."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class UnknownVariant(Exception):
    pass


@dataclass
class LiveVariant:
    name: str
    weight: float
    workers: Sequence[Any]  # serving.process.Worker (or anything with the same attributes)
    _turn: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(range(len(self.workers))) if self.workers else None

    def next_worker(self, avoid: Any = None) -> Any:
        """The next instance in turn, skipping ones known to be down (and ``avoid``); when
        none is up, the next one anyway (its connection fails fast and the caller retries)."""
        if self._turn is None:
            raise UnknownVariant(self.name)
        first = self.workers[next(self._turn)]
        if first is not avoid and getattr(first, "healthy", True):
            return first
        for _ in range(len(self.workers) - 1):
            worker = self.workers[next(self._turn)]
            if worker is not avoid and getattr(worker, "healthy", True):
                return worker
        return first

    def healthy_worker(self, avoid: Any = None) -> Any | None:
        """An instance that is up, other than ``avoid``; None when there is none."""
        worker = self.next_worker(avoid)
        if worker is avoid or not getattr(worker, "healthy", True):
            return None
        return worker


class Router:
    def __init__(self, variants: Sequence[LiveVariant], rng: random.Random | None = None) -> None:
        self.variants = list(variants)
        self.by_name = {v.name.lower(): v for v in self.variants}
        weights = [max(0.0, v.weight) for v in self.variants]
        if sum(weights) <= 0:
            weights = [1.0] * len(self.variants)
        self._cumulative = list(itertools.accumulate(weights))
        self._rng = rng or random.Random()

    def pick(self, target: str | None = None) -> tuple[LiveVariant, Any]:
        if target:
            variant = self.by_name.get(target.lower())
            if variant is None:
                raise UnknownVariant(target)
        elif len(self.variants) == 1:
            variant = self.variants[0]
        else:
            point = self._rng.random() * self._cumulative[-1]
            variant = self.variants[bisect.bisect_right(self._cumulative, point)
                                    if point < self._cumulative[-1] else -1]
        return variant, variant.next_worker()

    def workers(self) -> list[Any]:
        return [w for v in self.variants for w in v.workers]

    def replaced(self, old: Any, new: Any) -> Router:
        """A router like this one with instance ``old`` swapped for ``new``."""
        return Router([LiveVariant(v.name, v.weight, [new if w is old else w
                                                      for w in v.workers])
                       for v in self.variants], self._rng)
