"""The math of the built-ins that train across hosts, run by real processes meeting in XGBoost's
collective (``opensage.algorithms.collective.joined``: the tracker on algo-1, each process a
host with its rank), each on its part of the rows, against one host on all of them and against
scikit-learn."""

from __future__ import annotations

import json
import multiprocessing
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opensage.algorithms.collective import LOCAL, joined
from opensage.algorithms.contract import TrainingEnv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _host(root: str, address: str, rank: int, fn: Callable[..., Any], part: Any,
          results: Any) -> None:
    env = TrainingEnv(root, {"OPENSAGE_COLLECTIVE_ADDRESS": address})
    try:
        with joined(env) as group:
            assert (group.rank, group.size) == (rank, len(env.hosts))
            results.put((rank, fn(group, part)))
    except BaseException as e:  # the test process reports it
        results.put((rank, e))
        raise


def on_hosts(tmp_path: Path, fn: Callable[..., Any], parts: list[Any]) -> list[Any]:
    """``fn(group, part)`` on ``len(parts)`` processes joined as one collective: each
    process's return value, in rank order."""
    address = f"127.0.0.1:{_free_port()}"
    hosts = [f"algo-{i + 1}" for i in range(len(parts))]
    import xgboost.collective  # noqa: F401  (imported once here, the forked hosts share it)

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = []
    for rank, part in enumerate(parts):
        root = tmp_path / hosts[rank]
        (root / "input" / "config").mkdir(parents=True)
        (root / "input" / "config" / "resourceconfig.json").write_text(
            json.dumps({"current_host": hosts[rank], "hosts": hosts}))
        process = context.Process(target=_host,
                                  args=(str(root), address, rank, fn, part, results))
        process.start()
        processes.append(process)
    out = dict(results.get(timeout=120) for _ in parts)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    for value in out.values():
        if isinstance(value, BaseException):
            raise value
    return [out[rank] for rank in range(len(parts))]


# -------------------------------------------------------------------------- the collective

def _exchange(group: Any, part: np.ndarray) -> tuple[Any, ...]:
    return (group.sum(part), group.broadcast({"from": group.rank}),
            group.gather_rows(part[: group.rank + 1]))


def test_sum_broadcast_and_gather_over_three_hosts(tmp_path):
    parts = [np.full((2, 3), float(rank) + 0.25) for rank in range(3)]
    results = on_hosts(tmp_path, _exchange, parts)
    for summed, broadcast, gathered in results:
        np.testing.assert_array_equal(summed, np.full((2, 3), 3.75))
        assert broadcast == {"from": 0}
        np.testing.assert_array_equal(gathered, np.vstack(
            [parts[0][:1], parts[1][:2], parts[2][:3]]))
    assert LOCAL.sum(parts[1]).tolist() == parts[1].tolist()


# --------------------------------------------------------------------------------------- PCA

def _pca_data(rows: int = 3000, d: int = 12) -> np.ndarray:
    rng = np.random.default_rng(7)
    basis = rng.normal(size=(d, d))
    scales = np.linspace(4, 0.2, d)
    return (rng.normal(size=(rows, d)) * scales @ basis + 50.0).astype(np.float32)


def _pca(group: Any, part: tuple[np.ndarray, str]) -> Any:
    from opensage.algorithms.pca.decomposition import fit

    x, mode = part
    return fit(x, 4, mode=mode, block=256, group=group)


def _same_components(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    np.testing.assert_allclose(np.abs(np.sum(a * b, axis=1)), 1.0, atol=atol)


@pytest.mark.parametrize("mode", ["regular", "randomized"])
def test_pca_on_two_hosts_equals_one_host_and_sklearn(tmp_path, mode):
    from sklearn.decomposition import PCA

    from opensage.algorithms.pca.decomposition import fit

    x = _pca_data()
    one = fit(x, 4, mode=mode, block=256)
    two = on_hosts(tmp_path, _pca, [(x[:1100], mode), (x[1100:], mode)])
    for result in two:  # every host holds the whole model
        assert result.n == len(x)
        np.testing.assert_allclose(result.mean, one.mean, rtol=1e-6)
        np.testing.assert_allclose(result.singular_values, one.singular_values, rtol=1e-6)
        _same_components(result.components, one.components, 1e-6)
    reference = PCA(4, svd_solver="full").fit(x.astype(np.float64))
    np.testing.assert_allclose(two[0].singular_values, reference.singular_values_, rtol=1e-4)
    _same_components(two[0].components, reference.components_, 1e-5)


# ----------------------------------------------------------------------------------- k-means

def _blobs(rows: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    truth = rng.uniform(-10, 10, size=(5, 6))
    x = truth[rng.integers(0, 5, rows)] + rng.normal(scale=0.7, size=(rows, 6))
    return x.astype(np.float32), truth


def _kmeans(group: Any, x: np.ndarray) -> np.ndarray:
    from opensage.algorithms.kmeans.clustering import fit

    return fit(x, 5, epochs=2, batch_size=500, init="kmeans++", group=group)


def _matched(centers: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``centers`` in the order of their closest ``reference`` centers."""
    from scipy.optimize import linear_sum_assignment

    cost = ((reference[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    _, order = linear_sum_assignment(cost)
    return centers[order]


def test_kmeans_on_two_hosts_equals_one_host_and_sklearn(tmp_path):
    from sklearn.cluster import KMeans

    x, truth = _blobs()
    one = _matched(_kmeans(LOCAL, x), truth)
    two = on_hosts(tmp_path, _kmeans, [x[:2500], x[2500:]])
    np.testing.assert_array_equal(two[0], two[1])  # every host holds the same model
    # the final Lloyd step over all rows: the same clusters give the same means
    np.testing.assert_allclose(_matched(two[0], truth), one, rtol=1e-5, atol=1e-5)
    reference = KMeans(5, n_init=3, random_state=0).fit(x.astype(np.float64))
    np.testing.assert_allclose(_matched(reference.cluster_centers_, truth), one, atol=1e-3)


# ----------------------------------------------------------------------------- linear learner

def _ll_config(predictor: str) -> Any:
    from opensage.algorithms.linear_learner.learner import Config

    return Config(predictor_type=predictor,
                  loss="logistic" if predictor == "binary_classifier" else "squared_loss",
                  epochs=6, mini_batch_size=200, num_models=4, num_point_for_scaler=1000)


def _ll_data(predictor: str, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=3.0, scale=2.0, size=(rows, 8)).astype(np.float32)
    signal = (x - 3.0) @ np.linspace(-1, 1, 8) + rng.normal(scale=0.5, size=rows)
    return x, (signal > 0).astype(np.float64) if predictor == "binary_classifier" else signal


def _ll(group: Any, part: tuple[str, np.ndarray, np.ndarray]) -> tuple[Any, float]:
    from opensage.algorithms.linear_learner.learner import fit, select

    predictor, x, y = part
    fitted = fit(x, y, _ll_config(predictor), group=group)
    chosen, threshold = select(fitted, x, y, group)
    model = fitted.model(chosen, threshold)
    return (model.weights, model.bias, threshold), fitted.epochs_run


def _held_out(predictor: str, model: tuple[np.ndarray, np.ndarray, float]) -> float:
    """Accuracy (classifier) or MSE (regressor) on fresh data."""
    x, y = _ll_data(predictor, 3000, seed=99)
    weights, bias, threshold = model
    z = x.astype(np.float64) @ weights[:, 0] + bias[0]
    if predictor == "binary_classifier":
        return float(np.mean((1 / (1 + np.exp(-z)) > threshold) == y))
    return float(np.mean((z - y) ** 2))


@pytest.mark.parametrize("predictor", ["binary_classifier", "regressor"])
def test_linear_learner_on_two_hosts_matches_one_host(tmp_path, predictor):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    x, y = _ll_data(predictor, 4000, seed=1)
    one, _ = _ll(LOCAL, (predictor, x, y))
    two = on_hosts(tmp_path, _ll, [(predictor, x[:2300], y[:2300]),
                                   (predictor, x[2300:], y[2300:])])
    for a, b in zip(two[0][0], two[1][0], strict=True):  # every host: the same model
        np.testing.assert_array_equal(a, b)
    assert two[0][1] == two[1][1]  # and the same epochs (early stopping agrees)
    ours_one, ours_two = _held_out(predictor, one), _held_out(predictor, two[0][0])
    reference = (LogisticRegression() if predictor == "binary_classifier"
                 else LinearRegression()).fit(x, y)
    holdout_x, holdout_y = _ll_data(predictor, 3000, seed=99)
    if predictor == "binary_classifier":
        best = reference.score(holdout_x, holdout_y)
        assert abs(ours_two - ours_one) <= 0.01 and ours_two >= best - 0.01, (
            ours_one, ours_two, best)
    else:
        best = float(np.mean((reference.predict(holdout_x) - holdout_y) ** 2))
        assert abs(ours_two - ours_one) <= 0.02 * ours_one and ours_two <= best * 1.03, (
            ours_one, ours_two, best)
