"""A trial component's lifecycle: ``Status.PrimaryStatus`` as AWS reports it.

A component's status is mostly the caller's to set (``UpdateTrialComponent``; the SDK's
``Run`` marks it InProgress on entering and Completed or Failed on leaving, and ``load_run``
re-opens a finished run as InProgress again), so the table is permissive for callers; a
component a job created follows its job (InProgress -> Stopping -> Stopped, or Completed /
Failed). ``None`` is a component created without a status. Every move is one
compare-and-set through ``ResourceStore.transition``; staying in one status is an ``edit``.
"""

from __future__ import annotations

from enum import StrEnum

from opensage.services.lifecycle import (  # noqa: F401 (callers catch it from here)
    IllegalTransition,
    Lifecycle,
)


class TrialComponentStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


S = TrialComponentStatus
TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.STOPPED})
EVERY = frozenset(S)

_ALLOWED: dict[TrialComponentStatus, frozenset[TrialComponentStatus]] = {
    S.IN_PROGRESS: EVERY - {S.IN_PROGRESS},
    S.STOPPING: frozenset({S.STOPPED, S.FAILED, S.COMPLETED}),
    # a finished component is re-opened (load_run) or corrected by its caller
    S.COMPLETED: frozenset({S.IN_PROGRESS, S.FAILED, S.STOPPED}),
    S.FAILED: frozenset({S.IN_PROGRESS, S.COMPLETED, S.STOPPED}),
    S.STOPPED: frozenset({S.IN_PROGRESS, S.COMPLETED, S.FAILED}),
}

LIFECYCLE = Lifecycle("a trial component", _ALLOWED)
can_move = LIFECYCLE.can_move


def sources(target: TrialComponentStatus) -> tuple[TrialComponentStatus | None, ...]:
    """Every status a component may be in to move to ``target`` (None: no status yet)."""
    return (None, *LIFECYCLE.sources_of(target))


def job_outcome(job_status: str) -> TrialComponentStatus:
    """The status of a job's trial component once its job is ``job_status``."""
    return S(job_status)
