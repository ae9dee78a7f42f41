"""What every built-in logs while it trains is a real measurement, never a constant.

Each case trains a built-in through the API on a small learnable problem, with and without
its held-out channel (``validation`` where the algorithm has one, else ``test``: k-means,
k-NN, PCA, Random Cut Forest and factorization machines refuse a ``validation`` channel),
reads the job's CloudWatch log stream as a user would, and checks the values it logged:

* an iterative learner (XGBoost, linear learner, factorization machines, IP Insights) logs a
  positive, finite training loss per epoch that falls; its held-out metric falls (or rises,
  for AUC) as well;
* the others log one value, checked against the value it must have (k-means' msd against
  scikit-learn's k-means, PCA's explained variance against an SVD) or against the trivial
  model it must beat (k-NN's test mse against the label variance, RCF's f1 on injected
  anomalies).
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from opensage.data.recordio import encode_dense
from tests.integration import builtins
from tests.integration.builtins import train
from tests.integration.test_ipinsights import csv_body, traffic
from tests.integration.test_randomcutforest import gaussian_with_outliers
from tests.integration.test_training_jobs import XGB_IMAGE

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import KMeans

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
QUALITY = re.compile(r"#quality_metric: host=\S+, (?:epoch=(\d+), )?(\w+) (\S+) <\w+>=(\S+)")
XGB_ROUND = re.compile(r"\[(\d+)\](?:#011|\s)+(.*)")
COIN_FLIP_LOSS = math.log(2)  # cross-entropy of always answering 0.5


@dataclass
class Logged:
    """A finished job's log: every line, per-epoch series and final values by name."""

    lines: list[str]
    series: dict[str, list[float]]  # "train:<metric>" -> one value per epoch/round
    final: dict[str, float]  # "test:<metric>" -> the value logged without an epoch

    def falling(self, name: str, *, by: float = 0.1, at_least: int = 3) -> list[float]:
        """The per-epoch series ``name``: positive, finite, not constant, and its last value
        at least ``by`` (a fraction) below its first."""
        values = self.series[name]
        assert len(values) >= at_least, (name, values)
        assert all(math.isfinite(v) and v > 0 for v in values), (name, values)
        assert len(set(values)) > 1, (name, values)  # never a constant
        assert values[-1] < (1 - by) * values[0], (name, values)
        return values


def read_log(client: Callable[..., Any], job: dict[str, Any]) -> Logged:
    logs = client("logs")
    name = job["TrainingJobName"]
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP,
                                        logStreamNamePrefix=f"{name}/")["logStreams"]
    lines: list[str] = []
    for stream in streams:
        token = None
        while True:
            kwargs = {"nextToken": token} if token else {}
            page = logs.get_log_events(logGroupName=LOG_GROUP, startFromHead=True,
                                       logStreamName=stream["logStreamName"], **kwargs)
            lines += [event["message"] for event in page["events"]]
            if not page["events"] or page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
    series: dict[str, list[float]] = defaultdict(list)
    final: dict[str, float] = {}
    for line in lines:
        if match := QUALITY.search(line):
            epoch, channel, metric, value = match.groups()
            key = f"{channel}:{metric}"
            if epoch is None:
                final[key] = float(value)
            else:
                series[key].append(float(value))
        elif match := XGB_ROUND.match(line):  # [3]#011train-rmse:0.5#011validation-rmse:0.6
            for pair in re.split(r"#011|\s+", match.group(2)):
                channel_metric, _, value = pair.partition(":")
                channel, _, metric = channel_metric.partition("-")
                if value:
                    series[f"{channel}:{metric}"].append(float(value))
    return Logged(lines, dict(series), final)


# ---------------------------------------------------------------------------- problems


def csv(x: np.ndarray, y: np.ndarray) -> bytes:
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([y, x]), delimiter=",", fmt="%.6g")
    return buf.getvalue().encode()


def regression(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = 3 * x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 2] + rng.normal(scale=0.3, size=n)
    return x, y.astype(np.float32)


def blobs(n: int, seed: int, classes: int = 2, dim: int = 4,
          spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` Gaussian blobs whose centres lie 2 apart on the axes: overlapping a
    little, so the loss cannot reach 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = 2.0 * np.eye(classes, dim)
    x = centres[y] + rng.normal(scale=spread, size=(n, dim))
    return x.astype(np.float32), y.astype(np.float32)


def interactions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels from a linear term and a pairwise interaction (what FM models)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    logit = x[:, 0] - x[:, 1] + 2 * x[:, 2] * x[:, 3]
    return x, (rng.random(n) < 1 / (1 + np.exp(-2 * logit))).astype(np.float32)


def low_rank(n: int, seed: int) -> np.ndarray:
    """Rank-2 data in 8 dimensions plus a little isotropic noise."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(2, 8))
    return (rng.normal(size=(n, 2)) * [3.0, 2.0] @ basis
            + rng.normal(scale=0.3, size=(n, 8)) + 5).astype(np.float32)


# ---------------------------------------------------------------------------- cases


@dataclass
class Case:
    algorithm: str
    hyperparameters: dict[str, Any]
    channels: Callable[[bool], dict[str, tuple[bytes, str | None]]]  # held_out -> channels
    check: Callable[[Logged, bool], None]  # (logged, held_out)
    image: str | None = None  # else the first-party image of ``algorithm``


def linear_learner(predictor: str, problem: Callable[[int], tuple[np.ndarray, np.ndarray]],
                   objective: str, **extra: Any) -> Case:
    def channels(held_out: bool) -> dict[str, tuple[bytes, str | None]]:
        found = {"train": (encode_dense(*problem(1)), None)}
        if held_out:
            found["validation"] = (encode_dense(*problem(2)), None)
        return found

    def check(logged: Logged, held_out: bool) -> None:
        train_loss = logged.falling(f"train:{objective}_objective")
        if held_out:
            # measured after each epoch, not averaged over it as the train loss is: the
            # first value is already past the steepest descent
            validation = logged.falling(f"validation:{objective}_objective", by=0.0)
            assert len(validation) == len(train_loss)
            assert logged.final["validation:objective_loss"] > 0
            if predictor == "binary_classifier":
                assert logged.final["validation:objective_loss"] < COIN_FLIP_LOSS

    return Case("linear-learner", {"predictor_type": predictor, "feature_dim": 4,
                                   "epochs": 8, "mini_batch_size": 100, **extra},
                channels, check)


def _xgboost_channels(held_out: bool) -> dict[str, tuple[bytes, str | None]]:
    found = {"train": (csv(*regression(300, 1)), "text/csv")}
    if held_out:
        found["validation"] = (csv(*regression(100, 2)), "text/csv")
    return found


def _check_xgboost(logged: Logged, held_out: bool) -> None:
    logged.falling("train:rmse")
    assert ("validation:rmse" in logged.series) == held_out
    if held_out:
        logged.falling("validation:rmse")


def _fm_channels(held_out: bool) -> dict[str, tuple[bytes, str | None]]:
    found = {"train": (encode_dense(*interactions(1000, 1)), None)}
    if held_out:
        found["test"] = (encode_dense(*interactions(300, 2)), None)
    return found


def _check_fm(logged: Logged, held_out: bool) -> None:
    logged.falling("train:binary_classification_cross_entropy_objective")
    assert 0 < logged.final["train:binary_classification_cross_entropy"] < COIN_FLIP_LOSS
    if held_out:
        assert 0 < logged.final["test:binary_classification_cross_entropy"] < COIN_FLIP_LOSS
        assert logged.final["test:binary_classification_accuracy"] > 0.6


def _ipinsights_channels(held_out: bool) -> dict[str, tuple[bytes, str | None]]:
    found = {"train": (csv_body(*traffic(4000, seed=1)[:2]), "text/csv")}
    if held_out:
        found["validation"] = (csv_body(*traffic(1000, seed=2)[:2]), "text/csv")
    return found


def _check_ipinsights(logged: Logged, held_out: bool) -> None:
    logged.falling("train:binary_classification_cross_entropy")
    if held_out:
        auc = logged.series["validation:discriminator_auc"]
        assert all(0.5 < v <= 1 for v in auc) and len(set(auc)) > 1, auc
        assert auc[-1] > auc[0]
        assert logged.final["validation:discriminator_auc"] > 0.7


KMEANS_DATA = blobs(600, 1, classes=4, dim=4, spread=0.3)
KMEANS_TEST = blobs(200, 2, classes=4, dim=4, spread=0.3)


def _kmeans_channels(held_out: bool) -> dict[str, tuple[bytes, str | None]]:
    found = {"train": (encode_dense(KMEANS_DATA[0]), None)}
    if held_out:
        found["test"] = (encode_dense(KMEANS_TEST[0]), None)
    return found


def _check_kmeans(logged: Logged, held_out: bool) -> None:
    # k-means logs one msd, after training: it must be what k-means reaches, far below the
    # one-cluster msd (the data's variance), and the test msd must be of the same size
    x = KMEANS_DATA[0].astype(np.float64)
    one_cluster = float(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean())
    reference = KMeans(4, n_init=5, random_state=0).fit(x).inertia_ / len(x)
    msd = logged.final["train:msd"]
    assert 0 < msd <= 1.05 * reference < 0.2 * one_cluster, (msd, reference, one_cluster)
    assert ("test:msd" in logged.final) == held_out
    if held_out:
        assert 0.5 * msd < logged.final["test:msd"] < 2 * msd
        assert logged.final["test:ssd"] == pytest.approx(
            logged.final["test:msd"] * len(KMEANS_TEST[0]), rel=1e-4)


def _knn_channels(held_out: bool) -> dict[str, tuple[bytes, str | None]]:
    found = {"train": (encode_dense(*regression(500, 1)), None)}
    if held_out:
        found["test"] = (encode_dense(*regression(200, 2)), None)
    return found


def _check_knn(logged: Logged, held_out: bool) -> None:
    # k-NN only builds an index: it has no training loss and, like SageMaker's, scores only
    # a test channel; that mse must be positive and well below the label variance (the mse
    # of predicting the mean)
    if not held_out:
        assert logged.final == {} and logged.series == {}
        return
    mse = logged.final["test:mse"]
    assert 0 < mse < 0.3 * float(np.var(regression(200, 2)[1])), mse


PCA_DATA = low_rank(500, 1)


def _pca_channels(held_out: bool) -> dict[str, tuple[bytes, str | None]]:
    found = {"train": (encode_dense(PCA_DATA), None)}
    if held_out:
        found["test"] = (encode_dense(low_rank(100, 2)), None)
    return found


def _check_pca(logged: Logged, held_out: bool) -> None:
    # PCA declares no metric; its log states the explained variance ratio, which must be
    # the data's (from an SVD) and near 1 on rank-2 data with two components
    line = next(line for line in logged.lines if "Explained variance ratio" in line)
    total, each = re.search(r": (\S+) \(([^)]*)\)", line).groups()
    centred = PCA_DATA.astype(np.float64) - PCA_DATA.mean(axis=0)
    squares = np.linalg.svd(centred, compute_uv=False) ** 2
    expected = squares[:2] / squares.sum()
    assert [float(v) for v in each.split(", ")] == pytest.approx(expected, abs=1e-3)
    assert float(total) == pytest.approx(expected.sum(), abs=1e-5)
    assert 0.95 < float(total) < 1
    assert any("Projected 100 test records" in line for line in logged.lines) == held_out


RCF_TEST = gaussian_with_outliers(2, n=500, n_out=20)


def _rcf_channels(held_out: bool) -> dict[str, tuple[bytes, str | None]]:
    found = {"train": (encode_dense(gaussian_with_outliers(1, n=1000, n_out=20)[0]), None)}
    if held_out:
        found["test"] = (encode_dense(*RCF_TEST), None)
    return found


def _check_rcf(logged: Logged, held_out: bool) -> None:
    # RCF logs no training metric (a forest has no loss), only the train scores' spread
    # (the anomaly threshold) and, with a labelled test channel, f1 of that threshold: it
    # must find the injected anomalies (5 to 8 sd out) where chance f1 is ~0.04
    line = next(line for line in logged.lines if "mean score" in line)
    mean, std = (float(v) for v in re.search(r"mean score (\S+), std (\S+);", line).groups())
    assert mean > 0 and std > 0 and math.isfinite(mean + std)
    assert ("test:f1" in logged.final) == held_out
    if held_out:
        assert logged.final["test:f1"] > 0.8
        assert 0.9 < logged.final["test:accuracy"] <= 1


CASES = {
    "xgboost": Case("xgboost", {"objective": "reg:squarederror", "num_round": 10,
                              "max_depth": 3, "eta": 0.3},
                    _xgboost_channels, _check_xgboost, image=XGB_IMAGE),
    "linear-learner-regressor": linear_learner(
        "regressor", lambda seed: regression(600, seed), "mse"),
    "linear-learner-binary": linear_learner(
        "binary_classifier", lambda seed: blobs(600, seed),
        "binary_classification_cross_entropy"),
    "linear-learner-multiclass": linear_learner(
        "multiclass_classifier", lambda seed: blobs(600, seed, classes=3),
        "multiclass_cross_entropy", num_classes=3),
    "factorization-machines": Case(
        "factorization-machines", {"feature_dim": 6, "num_factors": 4,
                                   "predictor_type": "binary_classifier", "epochs": 8,
                                   "mini_batch_size": 100, "factors_lr": 0.05,
                                   "factors_init_sigma": 0.1, "linear_lr": 0.05},
        _fm_channels, _check_fm),
    "ipinsights": Case("ipinsights", {"num_entity_vectors": 500, "vector_dim": 16,
                                      "epochs": 4, "learning_rate": 0.01,
                                      "mini_batch_size": 500},
                       _ipinsights_channels, _check_ipinsights),
    "kmeans": Case("kmeans", {"k": 4, "feature_dim": 4, "eval_metrics": '["msd", "ssd"]'},
                   _kmeans_channels, _check_kmeans),
    "knn": Case("knn", {"k": 5, "feature_dim": 4, "sample_size": 500,
                        "predictor_type": "regressor"}, _knn_channels, _check_knn),
    "pca": Case("pca", {"num_components": 2, "feature_dim": 8, "mini_batch_size": 100},
                _pca_channels, _check_pca),
    "randomcutforest": Case("randomcutforest", {"feature_dim": 5, "num_trees": 50,
                                                "num_samples_per_tree": 256},
                            _rcf_channels, _check_rcf),
}


@pytest.mark.parametrize("held_out", [False, True], ids=["train-only", "held-out"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_logged_training_metric_is_a_real_measurement(
        sm: Any, s3: Any, client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
        case: str, held_out: bool) -> None:
    spec = CASES[case]
    if spec.image:
        monkeypatch.setattr(builtins, "image", lambda algorithm: spec.image)
    job = train(sm, s3, spec.algorithm, spec.hyperparameters, spec.channels(held_out))
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    spec.check(read_log(client, job), held_out)
