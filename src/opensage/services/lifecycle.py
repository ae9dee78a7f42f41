"""One lifecycle model for every resource kind: a table of allowed status moves.

Each kind's ``states`` module declares its status enum, its terminal set and its table, and
builds one :class:`Lifecycle` from them; the service checks a move here before it hands the
compare-and-set to ``ResourceStore.transition``. A move outside the table is a bug: it raises
:class:`IllegalTransition` and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


class IllegalTransition(RuntimeError):
    pass


class Lifecycle(Generic[S]):
    def __init__(self, noun: str, allowed: Mapping[S, Iterable[S]]) -> None:
        self.noun = noun  # "a transform job": how an error names the resource
        self._allowed: dict[S, frozenset[S]] = {s: frozenset(t) for s, t in allowed.items()}

    def can_move(self, current: S, target: S) -> bool:
        return target in self._allowed.get(current, frozenset())

    def check(self, current: S, target: S) -> None:
        if not self.can_move(current, target):
            raise IllegalTransition(f"{self.noun} cannot go from {current} to {target}")

    def sources(self, target: S, *current: S) -> tuple[S, ...]:
        """``current`` as the ``from_statuses`` of a store transition to ``target``, each
        checked against the table."""
        for status in current:
            self.check(status, target)
        return current

    def sources_of(self, target: S) -> tuple[S, ...]:
        """Every status the table allows to move to ``target``."""
        return tuple(s for s, allowed in self._allowed.items() if target in allowed)
