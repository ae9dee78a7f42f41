"""Every loss branch of linear learner's epoch loop adds its batches to the epoch's loss: the
logged training objective is positive and falls, and early stopping does not cut training
short on a problem that is still being learnt."""

from __future__ import annotations

import numpy as np
import pytest

from opensage.algorithms.linear_learner.learner import (
    OBJECTIVE_NAMES,
    Config,
    Fitted,
    fit,
    losses,
)

PREDICTOR = {"logistic": "binary_classifier", "hinge_loss": "binary_classifier",
             "softmax_loss": "multiclass_classifier"}


def problem(loss: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    signal = x @ np.array([2.0, -1.0, 0.5, 0.0, 1.0]) + rng.normal(scale=0.5, size=400)
    if PREDICTOR.get(loss) == "binary_classifier":
        return x, (signal > 0.8).astype(np.float64)  # imbalanced: about 1 in 4 positive
    if loss == "softmax_loss":
        return x, np.digitize(signal, [-1.0, 1.0]).astype(np.float64)
    return x, signal


def train(loss: str, **overrides: object) -> tuple[list[float], Fitted]:
    x, y = problem(loss)
    logged: list[float] = []
    cfg = Config(predictor_type=PREDICTOR.get(loss, "regressor"), loss=loss, num_classes=3,
                 epochs=10, mini_batch_size=50, num_models=4, learning_rate=0.01, wd=0.0,
                 l1=0.0, early_stopping_tolerance=0.0,
                 log=lambda epoch, channel, value: logged.append(value))
    for name, value in overrides.items():
        setattr(cfg, name, value)
    return logged, fit(x, y, cfg)


@pytest.mark.parametrize("loss", sorted(OBJECTIVE_NAMES))
def test_every_loss_logs_a_positive_falling_train_objective(loss: str):
    logged, fitted = train(loss)
    assert fitted.epochs_run == 10, logged  # still improving: early stopping must not fire
    assert all(np.isfinite(logged)) and min(logged) > 0, logged
    assert logged[-1] < 0.8 * logged[0], logged
    # the last epoch's running mean is close to the trained models' loss on the same data
    assert logged[-1] == pytest.approx(float(losses(fitted, *problem(loss)).min()), rel=0.3)


@pytest.mark.parametrize("loss", ["logistic", "hinge_loss"])
def test_positive_example_weight_mult_weights_loss_and_gradient(loss: str):
    """A positive weight of 3 makes the positives (1 in 4) count three times in the logged
    loss and in the gradient, so the models call more records positive."""
    x, _ = problem(loss)
    plain_log, plain = train(loss)
    weighted_log, weighted = train(loss, positive_example_weight_mult=3.0)
    assert weighted_log[0] > 1.2 * plain_log[0]
    called = {name: float(np.mean(model.raw(x) > 0)) for name, model in
              (("plain", plain), ("weighted", weighted))}
    assert called["weighted"] > called["plain"] + 0.05, called
