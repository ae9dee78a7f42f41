"""Which CPUs of a machine each job process runs on.

A job is pinned to as many CPUs as its instance type has (``launch``, the fork server). Taking
"the first N" of the machine's CPUs pins two one-vCPU hosts on a two-CPU machine to the same
core, and they run at half speed next to an idle one: :class:`CpuSlots` hands each job the
CPUs fewest jobs of this process run on, and takes them back when the job ends.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Sequence


def pin(cpus: int | Sequence[int]) -> None:
    """Pin the calling process to ``cpus``: a list of CPU ids, or a count (the first ones it
    may run on)."""
    if isinstance(cpus, int):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[: max(1, cpus)])
    else:
        os.sched_setaffinity(0, list(cpus))


def parse_ids(text: str) -> list[int]:
    """``"0,3"`` -> ``[0, 3]`` (the launcher's ``--cpu-ids``)."""
    return [int(part) for part in text.split(",") if part.strip()]


class CpuSlots:
    """The CPUs of this process's affinity, shared out among the jobs it starts."""

    def __init__(self, available: Sequence[int] | None = None) -> None:
        self.available = sorted(available if available is not None
                                else os.sched_getaffinity(0))
        self._use: Counter[int] = Counter()
        self._lock = threading.Lock()

    def take(self, count: int) -> list[int]:
        """``count`` CPUs (all of them when there are fewer), the least used first."""
        with self._lock:
            chosen = sorted(self.available, key=lambda cpu: (self._use[cpu], cpu))[
                : max(1, count)]
            self._use.update(chosen)
            return sorted(chosen)

    def give_back(self, cpus: Sequence[int]) -> None:
        with self._lock:
            self._use.subtract(cpus)

    def busy(self) -> dict[int, int]:
        """Each CPU some job runs on, with how many."""
        with self._lock:
            return {cpu: n for cpu, n in self._use.items() if n > 0}
