"""DeepAR's network (Salinas et al.): an LSTM over each step's lagged targets (divided by the
series' scale, 1 + its context's mean absolute value), calendar features, age, dynamic
features and embeddings of the ``cat`` features, emitting the parameters of the step's
likelihood; forecasts are sample paths drawn step by step, each sample fed back as the next
step's lag."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional

from opensage.algorithms.deepar.data import Frequency, Series

PARAMS = {"gaussian": 2, "student-T": 3, "negative-binomial": 2, "beta": 2,
          "deterministic-L1": 1}


@dataclass(frozen=True)
class Layout:
    """What the network's inputs are made of (saved with the model)."""

    lags: tuple[int, ...]
    time_features: int  # calendar features and age
    num_dynamic: int
    cardinality: tuple[int, ...]
    likelihood: str
    context_length: int
    prediction_length: int

    @property
    def input_size(self) -> int:
        return len(self.lags) + self.time_features + self.num_dynamic + 1  # + log scale


class DeepARNet(nn.Module):
    def __init__(self, layout: Layout, *, embedding_dimension: int, num_cells: int,
                 num_layers: int, dropout: float) -> None:
        super().__init__()
        self.layout = layout
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dimension)
                                        for c in layout.cardinality)
        size = layout.input_size + embedding_dimension * len(layout.cardinality)
        self.rnn = nn.LSTM(size, num_cells, num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(num_cells, PARAMS[layout.likelihood])

    def forward(self, inputs: torch.Tensor, cats: torch.Tensor,
                state: Any = None) -> tuple[torch.Tensor, Any]:
        if len(self.embeddings):
            embedded = torch.cat([e(cats[:, i]) for i, e in enumerate(self.embeddings)], dim=1)
            inputs = torch.cat([inputs, embedded[:, None, :].expand(-1, inputs.shape[1], -1)],
                               dim=2)
        out, state = self.rnn(inputs, state)
        return self.head(out), state


def scale_of(likelihood: str, context: NDArray[Any]) -> float:
    if likelihood == "beta":
        return 1.0
    observed = context[~np.isnan(context)]
    return 1.0 + (float(np.abs(observed).mean()) if len(observed) else 0.0)


def distribution(likelihood: str, raw: torch.Tensor, scale: torch.Tensor) -> Any:
    """The step's distribution in the series' units (scale: broadcastable to raw[..., 0])."""
    d = torch.distributions
    if likelihood == "gaussian":
        return d.Normal(raw[..., 0] * scale, (functional.softplus(raw[..., 1]) + 1e-4) * scale)
    if likelihood == "student-T":
        return d.StudentT(2.0 + functional.softplus(raw[..., 2]), raw[..., 0] * scale,
                          (functional.softplus(raw[..., 1]) + 1e-4) * scale)
    if likelihood == "negative-binomial":
        mu = (functional.softplus(raw[..., 0]) + 1e-6) * scale
        alpha = (functional.softplus(raw[..., 1]) + 1e-6) / torch.sqrt(scale)
        return d.NegativeBinomial(total_count=1.0 / alpha, probs=(mu * alpha / (1 + mu * alpha))
                                  .clamp(1e-6, 1 - 1e-6))
    if likelihood == "beta":
        return d.Beta(functional.softplus(raw[..., 0]) + 1e-3,
                      functional.softplus(raw[..., 1]) + 1e-3)
    return raw[..., 0] * scale  # deterministic-L1: the point forecast


def loss(likelihood: str, raw: torch.Tensor, target: torch.Tensor, scale: torch.Tensor,
         mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood (L1 for deterministic-L1) over the observed steps, in
    scaled units so that series of any size weigh alike."""
    if likelihood == "deterministic-L1":
        per_step = torch.abs(target - distribution(likelihood, raw, scale)) / scale
    else:
        if likelihood == "beta":
            target = target.clamp(1e-4, 1 - 1e-4)
        per_step = -distribution(likelihood, raw, scale).log_prob(target)
        if likelihood in ("gaussian", "student-T"):
            per_step = per_step - torch.log(scale)  # the density of target / scale
    return (per_step * mask).sum() / mask.sum().clamp(min=1.0)


def sample(likelihood: str, raw: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    dist = distribution(likelihood, raw, scale)
    if likelihood == "deterministic-L1":
        return dist
    return dist.sample()


class Features:
    """A series' per-step inputs (without lags) and its target, positions 0..length-1 plus
    ``extra`` future steps (for which dynamic features must be given)."""

    def __init__(self, series: Series, freq: Frequency, layout: Layout, extra: int = 0) -> None:
        length = len(series.target) + extra
        stamps = freq.index(series.start, length)
        calendar = freq.features(stamps)
        age = (np.log1p(np.arange(length)) / 10.0).astype(np.float32)[:, None]
        parts = [calendar, age]
        if layout.num_dynamic:
            assert series.dynamic_feat is not None
            parts.append(series.dynamic_feat[:, :length].T.astype(np.float32))
        self.covariates = np.concatenate(parts, axis=1)
        self.target = series.target
        cats = series.cat[:len(layout.cardinality)]
        self.cats = np.minimum(np.asarray(cats, dtype=np.int64),
                               np.asarray(layout.cardinality, dtype=np.int64) - 1) \
            if layout.cardinality else np.zeros(0, dtype=np.int64)


def window(features: Features, layout: Layout, end: int, length: int,
           scale: float) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Inputs (length x input_size), targets and mask of the steps end-length..end-1; steps
    before the series' start are padding (mask 0)."""
    positions = np.arange(end - length, end)
    y = np.nan_to_num(features.target / scale, nan=0.0)
    lagged = np.zeros((length, len(layout.lags)), dtype=np.float32)
    for j, lag in enumerate(layout.lags):
        source = positions - lag
        ok = source >= 0
        lagged[ok, j] = y[source[ok]]
    covariates = np.zeros((length, features.covariates.shape[1]), dtype=np.float32)
    valid = positions >= 0
    covariates[valid] = features.covariates[positions[valid]]
    log_scale = np.full((length, 1), math.log(scale), dtype=np.float32)
    inputs = np.concatenate([lagged, covariates, log_scale], axis=1)
    target = np.zeros(length)
    target[valid] = features.target[positions[valid]]
    mask = (valid & ~np.isnan(target)).astype(np.float32)
    return inputs, np.nan_to_num(target), mask


def forecast(net: DeepARNet, series: Series, freq: Frequency, num_samples: int,
             horizon: int | None = None) -> NDArray[np.float64]:
    """``num_samples`` sample paths (num_samples x prediction_length) after the series."""
    layout = net.layout
    horizon = horizon or layout.prediction_length
    net.eval()
    with torch.no_grad():
        return _forecast(net, series, freq, num_samples, horizon)


def _forecast(net: DeepARNet, series: Series, freq: Frequency, num_samples: int,
              horizon: int) -> NDArray[np.float64]:
    layout = net.layout
    features = Features(series, freq, layout, extra=horizon)
    history = len(series.target)
    context = min(layout.context_length, history)
    scale = scale_of(layout.likelihood, series.target[-layout.context_length:])
    inputs, _, _ = window(features, layout, history, context, scale)
    cats = torch.as_tensor(np.repeat(features.cats[None, :], num_samples, axis=0))
    x = torch.as_tensor(inputs)[None].expand(num_samples, -1, -1).contiguous()
    raw, state = net(x, cats)
    y = np.nan_to_num(series.target / scale, nan=0.0)
    paths = np.zeros((num_samples, history + horizon))
    paths[:, :history] = y
    scale_t = torch.tensor(1.0)
    for step in range(horizon):
        t = history + step
        lagged = np.stack([paths[:, t - lag] if t - lag >= 0 else np.zeros(num_samples)
                           for lag in layout.lags], axis=1)
        extra = np.concatenate([features.covariates[t], [math.log(scale)]])
        step_input = np.concatenate([lagged, np.repeat(extra[None], num_samples, axis=0)],
                                    axis=1).astype(np.float32)
        raw, state = net(torch.as_tensor(step_input)[:, None, :], cats, state)
        if layout.likelihood == "negative-binomial":
            drawn = sample(layout.likelihood, raw[:, 0], torch.tensor(scale)).numpy() / scale
        else:
            drawn = sample(layout.likelihood, raw[:, 0], scale_t).numpy()
        paths[:, t] = drawn
    out: NDArray[np.float64] = paths[:, history:] * scale
    return out
