"""Training for DeepAR: JSON lines series in, ``model_algo-1`` (safetensors) out.

Each epoch (50 mini-batches, as GluonTS's DeepAR) draws windows of ``context_length + prediction_length`` steps ending at random
points of the training series (padding before a series' start is masked), trains on all of
their steps by Adam, and logs ``#quality_metric: host=algo-1, epoch=N, train loss
<loss>=...``; ``early_stopping_patience`` epochs without a better loss stop it (the best
state is kept). ``train final_loss`` closes training. With a test channel each series' last
``prediction_length`` points are forecast from the rest (``num_eval_samples`` sample paths):
``#test_score (algo-1, RMSE)`` of the mean forecast, ``wQuantileLoss[q]`` for each
``test_quantiles`` and their ``mean_wQuantileLoss``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.deepar.data import (
    Frequency,
    Series,
    check_shapes,
    read_series,
    weighted_quantile_loss,
)
from opensage.algorithms.deepar.model import (
    DeepARNet,
    Features,
    Layout,
    forecast,
    loss,
    scale_of,
    window,
)
from opensage.algorithms.deepar.spec import NAME, SPEC
from opensage.algorithms.firstparty.training import log_metric
from opensage.algorithms.torchsupport import Checkpoints, save_model, setup

BATCHES_PER_EPOCH = 50  # GluonTS's num_batches_per_epoch: an epoch is 50 mini-batches


def _layout(hps: dict[str, Any], series: list[Series], freq: Frequency) -> Layout:
    num_cat = len(series[0].cat)
    cardinality: tuple[int, ...]
    if hps["cardinality"] == "ignore":
        cardinality = ()
    elif hps["cardinality"] == "auto":
        cardinality = tuple(max(s.cat[i] for s in series) + 1 for i in range(num_cat))
    else:
        cardinality = tuple(hps["cardinality"])
        if len(cardinality) != num_cat:
            raise UserError(f"cardinality lists {len(cardinality)} values but the series have "
                            f"{num_cat} cat features.")
    dyn = 0 if series[0].dynamic_feat is None else int(series[0].dynamic_feat.shape[0])
    declared = hps["num_dynamic_feat"]
    if declared == "ignore":
        dyn = 0
    elif declared != "auto" and declared != dyn:
        raise UserError(f"num_dynamic_feat is {declared} but the series have {dyn} "
                        f"dynamic_feat.")
    for s in series:
        for i, c in enumerate(s.cat[:len(cardinality)]):
            if c >= cardinality[i]:
                raise UserError(f"{s.where}: cat value {c} is not below cardinality "
                                f"{cardinality[i]}.")
    time_features = freq.features(freq.index(np.datetime64("2000-01-01T00:00"), 1)).shape[1] + 1
    return Layout(lags=tuple(freq.lags()), time_features=time_features, num_dynamic=dyn,
                  cardinality=cardinality, likelihood=hps["likelihood"],
                  context_length=hps["context_length"],
                  prediction_length=hps["prediction_length"])


def _check_likelihood(likelihood: str, series: list[Series]) -> None:
    for s in series:
        observed = s.target[~np.isnan(s.target)]
        if likelihood == "negative-binomial" and (observed < 0).any():
            raise UserError(f"{s.where}: the negative-binomial likelihood needs non-negative "
                            f"counts; the target has a negative value.")
        if likelihood == "beta" and ((observed <= 0) | (observed >= 1)).any():
            raise UserError(f"{s.where}: the beta likelihood needs targets strictly between "
                            f"0 and 1.")


def train(env: TrainingEnv) -> None:
    hps, _ = SPEC.validate_job(env.hyperparameters, env.input_data_config, fill_defaults=True)
    device = setup(env)
    freq = Frequency.parse(hps["time_freq"])
    series = read_series(env.channel_data("train"), "train")
    context, horizon = hps["context_length"], hps["prediction_length"]
    layout = _layout(hps, series, freq)
    check_shapes(series, num_cat=len(series[0].cat), num_dynamic=None, minimum=context,
                 what="context_length")
    if layout.num_dynamic:
        check_shapes(series, num_cat=None, num_dynamic=layout.num_dynamic, minimum=1, what="")
    _check_likelihood(layout.likelihood, series)
    print(f"Training DeepAR: {len(series)} series, {sum(len(s.target) for s in series)} "
          f"points, context_length {context}, prediction_length {horizon}, likelihood "
          f"{layout.likelihood}, lags {list(layout.lags)}.", flush=True)
    net = DeepARNet(layout, embedding_dimension=hps["embedding_dimension"],
                    num_cells=hps["num_cells"], num_layers=hps["num_layers"],
                    dropout=hps["dropout_rate"]).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=hps["learning_rate"])
    checkpoints = Checkpoints(env, {k: v for k, v in hps.items() if k != "epochs"})
    start_epoch = checkpoints.resume(net, optimizer)
    features = [Features(s, freq, layout) for s in series]
    lengths = np.array([len(s.target) for s in series], dtype=np.float64)
    span = context + horizon
    per_epoch = BATCHES_PER_EPOCH * hps["mini_batch_size"]
    rng = np.random.default_rng(0)
    best, best_state, since_best, final = math.inf, None, 0, math.nan
    for epoch in range(start_epoch, hps["epochs"]):
        net.train()
        losses = []
        for first in range(0, per_epoch, hps["mini_batch_size"]):
            count = min(hps["mini_batch_size"], per_epoch - first)
            chosen = rng.choice(len(series), size=count, p=lengths / lengths.sum())
            batch = [_training_window(features[i], layout, span, rng) for i in chosen]
            inputs = torch.as_tensor(np.stack([b[0] for b in batch]), device=device)
            target = torch.as_tensor(np.stack([b[1] for b in batch]), dtype=torch.float32,
                                     device=device)
            mask = torch.as_tensor(np.stack([b[2] for b in batch]), device=device)
            scale = torch.as_tensor(np.array([b[3] for b in batch], dtype=np.float32),
                                    device=device)[:, None]
            cats = torch.as_tensor(np.stack([features[i].cats for i in chosen]), device=device)
            raw, _ = net(inputs, cats)
            value = loss(layout.likelihood, raw, target, scale, mask)
            optimizer.zero_grad()
            value.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            optimizer.step()
            losses.append(float(value.detach()))
        final = float(np.mean(losses))
        log_metric("train", "loss", final, loss=True, epoch=epoch)
        checkpoints.save(net, optimizer, epoch + 1)
        if final < best - 1e-6:
            best, since_best = final, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            since_best += 1
            patience = hps.get("early_stopping_patience")
            if patience and since_best >= patience:
                print(f"Early stopping: the loss has not improved for {patience} epochs.",
                      flush=True)
                break
    if best_state is not None:
        net.load_state_dict(best_state)
        final = best
    log_metric("train", "final_loss", final, loss=True)
    net.to("cpu")
    if "test" in env.input_data_config:
        _test(env, net, freq, hps)
    header = {"algorithm": NAME, "layout": layout.__dict__ | {
        "lags": list(layout.lags), "cardinality": list(layout.cardinality)},
        "embedding_dimension": hps["embedding_dimension"], "num_cells": hps["num_cells"],
        "num_layers": hps["num_layers"], "time_freq": hps["time_freq"]}
    save_model(env.model_dir, net.state_dict(), header)


def _training_window(features: Features, layout: Layout, span: int,
                     rng: np.random.Generator) -> tuple[Any, Any, Any, float]:
    length = len(features.target)
    end = int(rng.integers(min(length, layout.context_length + 1), length + 1))
    scale = scale_of(layout.likelihood, features.target[max(0, end - span):
                                                        max(1, end - layout.prediction_length)])
    inputs, target, mask = window(features, layout, end, span, scale)
    return inputs, target, mask, scale


def _test(env: TrainingEnv, net: DeepARNet, freq: Frequency, hps: dict[str, Any]) -> None:
    horizon = hps["prediction_length"]
    series = read_series(env.channel_data("test"), "test")
    check_shapes(series, num_cat=len(net.layout.cardinality) or None, num_dynamic=None,
                 minimum=horizon + 1, what="prediction_length + 1")
    truths, means, samples = [], [], []
    for s in series:
        history = Series(s.start, s.target[:-horizon], s.cat, s.dynamic_feat, s.where)
        paths = forecast(net, history, freq, hps["num_eval_samples"])
        truths.append(s.target[-horizon:])
        means.append(paths.mean(axis=0))
        samples.append(paths)
    truth = np.concatenate(truths)
    observed = ~np.isnan(truth)
    rmse = float(np.sqrt(np.mean((np.concatenate(means) - truth)[observed] ** 2)))
    print(f"#test_score (algo-1, RMSE): {rmse!r}", flush=True)
    losses = []
    for q in hps["test_quantiles"]:
        forecasts = np.concatenate([np.quantile(p, q, axis=0) for p in samples])
        value = weighted_quantile_loss(truth[observed], forecasts[observed], q)
        losses.append(value)
        print(f"#test_score (algo-1, wQuantileLoss[{q}]): {value!r}", flush=True)
    print(f"#test_score (algo-1, mean_wQuantileLoss): {float(np.mean(losses))!r}", flush=True)
