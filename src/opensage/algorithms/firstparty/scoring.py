"""Scores of a binary decision, as the first-party algorithms log them (one definition for
linear-learner, factorization-machines and randomcutforest)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["binary_scores"]


def binary_scores(predicted: NDArray[Any], truth: NDArray[Any],
                  beta: float = 1.0) -> dict[str, float]:
    """Accuracy, and the positive class's precision, recall and F-beta (0 where undefined),
    of boolean predictions against boolean truth."""
    tp = float(np.sum(predicted & truth))
    chosen, actual = float(np.sum(predicted)), float(np.sum(truth))
    precision = tp / chosen if chosen else 0.0
    recall = tp / actual if actual else 0.0
    b2 = beta * beta
    denominator = b2 * precision + recall
    return {"accuracy": float(np.mean(predicted == truth)), "precision": precision,
            "recall": recall,
            "f_beta": (1 + b2) * precision * recall / denominator if denominator else 0.0}
