"""What the training service tells whoever listens (a tuning job waiting on its children;
pipelines next). Subscribed in ``services.wiring``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingJobCreated:
    """The job's row was written (InProgress), before it runs: experiment tracking makes its
    trial component and lineage now."""

    name: str


@dataclass(frozen=True)
class TrainingJobEnded:
    """The job reached Completed, Failed or Stopped (its row says which)."""

    name: str


@dataclass(frozen=True)
class WatchedMetricsReported:
    """Intermediate metrics of a job whose request asked for them promptly (a tuner's child
    under early stopping or Hyperband): its tuner may act on them now."""

    name: str
