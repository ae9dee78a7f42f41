"""The linear-learner math, on NumPy arrays (dense float32 or SciPy CSR).

Like SageMaker's linear learner, ``num_models`` linear models are trained at once with
mini-batch SGD / Adam / RMSProp, each with its own learning rate, L2 (``wd``) and L1 penalty
(and, for ``positive_example_weight_mult=auto``, positive-class weight): their weights form a
``(d, models * outputs)`` matrix so that one mini-batch costs two matrix products for all of
them. Features are standardised (mean/std from the first ``num_point_for_scaler`` records;
shifted only when dense) by folding the scaler into the weights, so the data are never copied.
After training the best model is picked on the validation data (else the training data) and,
for binary classifiers, its decision threshold is calibrated for the selection criterion.

Several hosts (``group``, :mod:`opensage.algorithms.collective`) train the models together,
data-parallel: the scaler's statistics (from each host's first ``num_point_for_scaler /
hosts`` records), the counts (rows, positives, classes) and every step's gradient sums are
summed over the hosts; every host makes ``ceil(n / mini_batch_size)`` steps an epoch, each on
its share of the batch, so every host applies the same update (one host's update with the
whole batch) and holds the same weights; epoch losses, selection losses and (binary) the
calibration scores are gathered the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from opensage.algorithms.collective import LOCAL, Collective
from opensage.algorithms.firstparty.scoring import binary_scores

BLOCK = 1 << 16  # rows per evaluation block
AUTO_MODELS = 32
AUTO_CALIBRATION = 100_000

# the name of the per-epoch objective in ``epoch=N, train <name>_objective`` lines
OBJECTIVE_NAMES = {
    "logistic": "binary_classification_cross_entropy",
    "hinge_loss": "binary_classification_hinge_loss",
    "softmax_loss": "multiclass_cross_entropy",
    "squared_loss": "mse",
    "absolute_loss": "absolute_loss",
    "eps_insensitive_squared_loss": "eps_insensitive_squared_loss",
    "eps_insensitive_absolute_loss": "eps_insensitive_absolute_loss",
    "quantile_loss": "quantile_loss",
    "huber_loss": "huber_loss",
}


F64: TypeAlias = npt.NDArray[np.float64]
# float32 or float64: the epoch loop computes in float32, evaluation in float64
Floats: TypeAlias = npt.NDArray[np.floating[Any]]
Labels: TypeAlias = npt.NDArray[np.int64]  # class indices
# dense float32 (rows, d) or a scipy.sparse CSR matrix (scipy ships no types: Any)
Features: TypeAlias = Any


def is_sparse(x: Features) -> bool:
    return hasattr(x, "tocsr")


@dataclass
class Config:
    predictor_type: str
    loss: str
    num_classes: int = 2
    epochs: int = 15
    mini_batch_size: int = 1000
    num_models: int | str = "auto"
    optimizer: str = "adam"
    learning_rate: float | str = "auto"
    wd: float | str = "auto"
    l1: float | str = "auto"
    momentum: float | str = "auto"
    beta_1: float | str = "auto"
    beta_2: float | str = "auto"
    bias_lr_mult: float | str = "auto"
    bias_wd_mult: float | str = "auto"
    use_bias: bool = True
    use_lr_scheduler: bool = True
    lr_scheduler_step: int | str = "auto"
    lr_scheduler_factor: float | str = "auto"
    lr_scheduler_minimum_lr: float | str = "auto"
    init_method: str = "uniform"
    init_scale: float = 0.07
    init_sigma: float = 0.01
    init_bias: float = 0.0
    normalize_data: bool | str = True
    normalize_label: bool | str = "auto"
    unbias_data: bool | str = "auto"
    unbias_label: bool | str = "auto"
    num_point_for_scaler: int = 10000
    positive_example_weight_mult: float | str = 1.0
    balance_multiclass_weights: bool = False
    margin: float = 1.0
    quantile: float = 0.5
    loss_insensitivity: float = 0.01
    huber_delta: float = 1.0
    early_stopping_patience: int = 3
    early_stopping_tolerance: float = 0.001
    selection_criterion: str = "accuracy"
    target_recall: float = 0.8
    target_precision: float = 0.8
    f_beta: float = 1.0
    num_calibration_samples: int | str = "auto"
    accuracy_top_k: int = 3
    seed: int = 0
    log: Callable[[int, str, float], None] | None = None  # (epoch, channel, value) per epoch


@dataclass
class Model:
    """The chosen model, in the original feature and label units: ``raw = x @ w + b``."""

    predictor_type: str
    loss: str
    weights: F64  # (d, outputs)
    bias: F64  # (outputs,)
    threshold: float = 0.5
    hyperparameters: dict[str, float] = field(default_factory=dict)

    def raw(self, x: Features) -> F64:
        out = x @ self.weights.astype(np.float32 if x.dtype == np.float32 else np.float64)
        return np.asarray(out, dtype=np.float64) + self.bias

    def scores(self, x: Features) -> Floats:
        """Probabilities (logistic, softmax) or raw outputs."""
        return transform(self.raw(x), self.predictor_type, self.loss)

    def predict(self, x: Features) -> dict[str, Floats | Labels]:
        score = self.scores(x)
        if self.predictor_type == "regressor":
            return {"score": score[:, 0]}
        if self.predictor_type == "binary_classifier":
            return {"score": score[:, 0],
                    "predicted_label": (score[:, 0] >= self.threshold).astype(np.int64)}
        return {"score": score, "predicted_label": np.argmax(score, axis=1).astype(np.int64)}


# ------------------------------------------------------------------------------------ losses


def sigmoid(z: Floats) -> Floats:
    from scipy.special import expit

    p: Floats = expit(z)  # same shape and dtype as z
    return p


def softmax(z: Floats, axis: int = -1) -> Floats:
    e: Floats = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def transform(raw: Floats, predictor_type: str, loss: str) -> Floats:
    if predictor_type == "multiclass_classifier":
        return softmax(raw, axis=-1)
    if predictor_type == "binary_classifier" and loss == "logistic":
        return sigmoid(raw)
    return raw


@dataclass
class Loss:
    """Pointwise loss and its derivative in the raw output ``z`` (label ``y`` broadcast)."""

    name: str
    margin: float = 1.0
    quantile: float = 0.5
    eps: float = 0.01
    delta: float = 1.0

    def value(self, z: Floats, y: Floats) -> Floats:
        out: Floats  # numpy's ufuncs are typed as returning Any
        if self.name == "logistic":
            out = np.logaddexp(0, z) - y * z
        elif self.name == "hinge_loss":
            out = np.maximum(0, self.margin - (2 * y - 1) * z)
        else:
            out = self._residual_value(z - y)
        return out

    def grad(self, z: Floats, y: Floats) -> Floats:
        out: Floats
        if self.name == "logistic":
            out = sigmoid(z) - y
        elif self.name == "hinge_loss":
            s = 2 * y - 1
            out = np.where(s * z < self.margin, -s, 0).astype(z.dtype)
        else:
            out = self._residual_grad(z - y)
        return out

    def _residual_value(self, r: Floats) -> Floats:
        """The regression losses, of the residual ``r = z - y``."""
        n = self.name
        out: Floats
        if n == "squared_loss":
            out = r * r
        elif n == "absolute_loss":
            out = np.abs(r)
        elif n == "eps_insensitive_squared_loss":
            gap: Floats = np.maximum(0, np.abs(r) - self.eps)
            out = gap * gap
        elif n == "eps_insensitive_absolute_loss":
            out = np.maximum(0, np.abs(r) - self.eps)
        elif n == "quantile_loss":
            out = np.where(r < 0, -self.quantile * r, (1 - self.quantile) * r)
        elif n == "huber_loss":
            a = np.abs(r)
            out = np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))
        else:
            raise ValueError(n)
        return out

    def _residual_grad(self, r: Floats) -> Floats:
        n = self.name
        out: Floats
        if n == "squared_loss":
            out = 2 * r
        elif n == "absolute_loss":
            out = np.sign(r)
        elif n == "eps_insensitive_squared_loss":
            out = 2 * np.sign(r) * np.maximum(0, np.abs(r) - self.eps)
        elif n == "eps_insensitive_absolute_loss":
            out = np.where(np.abs(r) > self.eps, np.sign(r), 0).astype(r.dtype)
        elif n == "quantile_loss":
            out = np.where(r < 0, -self.quantile, 1 - self.quantile).astype(r.dtype)
        elif n == "huber_loss":
            out = np.clip(r, -self.delta, self.delta)
        else:
            raise ValueError(n)
        return out


def softmax_loss(z: Floats, y: Labels) -> Floats:
    """Cross-entropy per row and model: z (n, K, C), y int (n,) -> (n, K)."""
    m = z.max(axis=-1, keepdims=True)
    lse: Floats = np.log(np.exp(z - m).sum(axis=-1)) + m[..., 0]
    return lse - np.take_along_axis(z, y[:, None, None].repeat(z.shape[1], 1), -1)[..., 0]


# ------------------------------------------------------------------------------ preprocessing


@dataclass
class Scaler:
    x_shift: F64
    x_scale: F64
    y_shift: float = 0.0
    y_scale: float = 1.0


def _moments(sample: Features, group: Collective) -> tuple[F64, F64]:
    """Column means and standard deviations of ``sample`` (of every host's sample)."""
    if is_sparse(sample):
        sums = np.concatenate([np.asarray(sample.sum(axis=0), dtype=np.float64).ravel(),
                               np.asarray(sample.multiply(sample).sum(axis=0),
                                          dtype=np.float64).ravel(), [sample.shape[0]]])
        total = group.sum(sums)
        d = sample.shape[1]
        count = max(float(total[-1]), 1.0)
        mean, sq = total[:d] / count, total[d:2 * d] / count
        return mean, np.sqrt(np.maximum(sq - mean * mean, 0))
    s64 = np.asarray(sample, dtype=np.float64)
    if s64.ndim == 1:
        s64 = s64[:, None]
    total = group.sum(np.append(s64.sum(axis=0), len(s64)))
    count = max(float(total[-1]), 1.0)
    mean = total[:-1] / count
    return mean, np.sqrt(group.sum(((s64 - mean) ** 2).sum(axis=0)) / count)


def fit_scaler(x: Features, y: F64, cfg: Config, group: Collective = LOCAL) -> Scaler:
    d = x.shape[1]
    sample = x[: math.ceil(cfg.num_point_for_scaler / group.size)]
    shift, scale = np.zeros(d), np.ones(d)
    if cfg.normalize_data in (True, "auto"):
        mean, std = _moments(sample, group)
        unbias = cfg.unbias_data if cfg.unbias_data != "auto" else not is_sparse(sample)
        if unbias and cfg.use_bias:
            shift = mean
        scale = np.where(std > 1e-12, std, 1.0)
    elif cfg.unbias_data is True and cfg.use_bias:
        shift, _ = _moments(sample, group)
    scaler = Scaler(shift, scale)
    if cfg.predictor_type == "regressor":
        ys = y[: sample.shape[0]].astype(np.float64)
        normalize = cfg.normalize_label if cfg.normalize_label != "auto" else True
        unbias = cfg.unbias_label if cfg.unbias_label != "auto" else normalize
        y_mean, y_std = _moments(ys, group)
        if normalize:
            label_std = float(y_std[0])
            scaler.y_scale = label_std if label_std > 1e-12 else 1.0
        if unbias and cfg.use_bias:
            scaler.y_shift = float(y_mean[0])
    return scaler


# ------------------------------------------------------------------------- model population


@dataclass
class Population:
    """Per-model hyperparameters (each an array over models)."""

    lr: F64
    wd: F64
    l1: F64
    pos_weight: F64

    @property
    def size(self) -> int:
        return len(self.lr)

    def describe(self, k: int) -> dict[str, float]:
        return {"learning_rate": float(self.lr[k]), "wd": float(self.wd[k]),
                "l1": float(self.l1[k]), "positive_example_weight_mult":
                float(self.pos_weight[k])}


DEFAULT_LR = {"adam": 0.005, "rmsprop": 0.005, "sgd": 0.05}


def population(cfg: Config, balanced_weight: float, rng: np.random.Generator) -> Population:
    """``num_models`` settings: model 0 uses the given (or default) values; for every
    hyperparameter left ``auto`` the others draw theirs from a log-uniform range (stratified,
    so the range is covered), the way SageMaker's parallel models explore it."""
    k = AUTO_MODELS if cfg.num_models == "auto" else int(cfg.num_models)

    def spread(low: float, high: float) -> F64:
        u = (rng.permutation(k) + rng.random(k)) / k
        return 10 ** (math.log10(low) + u * (math.log10(high) - math.log10(low)))

    if cfg.learning_rate == "auto":
        low, high = (1e-3, 0.3) if cfg.optimizer != "sgd" else (1e-3, 1.0)
        lr = spread(low, high)
        lr[0] = DEFAULT_LR[cfg.optimizer]
    else:
        lr = np.full(k, float(cfg.learning_rate))
    if cfg.wd == "auto":
        wd = np.where(np.arange(k) % 2 == 0, 0.0, spread(1e-7, 1e-2))
        wd[0] = 0.0
    else:
        wd = np.full(k, float(cfg.wd))
    if cfg.l1 == "auto":
        l1 = np.where(np.arange(k) % 4 == 3, spread(1e-7, 1e-3), 0.0)
        l1[0] = 0.0
    else:
        l1 = np.full(k, float(cfg.l1))
    weight = cfg.positive_example_weight_mult
    if weight == "balanced":
        pos = np.full(k, balanced_weight)
    elif weight == "auto":
        pos = balanced_weight ** (np.arange(k) % 3 / 2.0)  # 1, sqrt(balanced), balanced
    else:
        pos = np.full(k, float(weight))
    return Population(lr, wd, l1, pos)


# ----------------------------------------------------------------------------------- training


class Optimizer:
    """Vectorised SGD (momentum) / Adam / RMSProp over a (d, M) weight matrix and (M,) bias."""

    def __init__(self, cfg: Config, shape: tuple[int, int]) -> None:
        self.kind = cfg.optimizer
        self.momentum = 0.0 if cfg.momentum == "auto" else float(cfg.momentum)
        self.beta1 = 0.9 if cfg.beta_1 == "auto" else float(cfg.beta_1)
        self.beta2 = (0.999 if self.kind == "adam" else 0.9) if cfg.beta_2 == "auto" \
            else float(cfg.beta_2)
        self.eps = 1e-8
        self.t = 0
        self.state = {name: (np.zeros(shape), np.zeros(shape[1])) for name in ("m", "v")}

    def step(self, params: list[F64], grads: list[F64],
             lrs: list[F64]) -> None:
        self.t += 1
        for i, (p, g, lr) in enumerate(zip(params, grads, lrs, strict=True)):
            m, v = self.state["m"][i], self.state["v"][i]
            if self.kind == "adam":
                m *= self.beta1
                m += (1 - self.beta1) * g
                v *= self.beta2
                v += (1 - self.beta2) * g * g
                c = math.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
                p -= lr * c * m / (np.sqrt(v) + self.eps)
            elif self.kind == "rmsprop":
                v *= self.beta2
                v += (1 - self.beta2) * g * g
                update = lr * g / (np.sqrt(v) + 1e-6)
                if self.momentum:
                    m *= self.momentum
                    m += update
                    update = m
                p -= update
            else:
                if self.momentum:
                    m *= self.momentum
                    m += g
                    g = m
                p -= lr * g


def _batches(n: int, size: int, rng: np.random.Generator, shuffle_rows: bool,
             steps: int | None = None) -> Iterator[npt.NDArray[np.intp] | slice]:
    if steps is not None:  # this host's share of each of the hosts' steps
        if shuffle_rows:
            yield from np.array_split(rng.permutation(n), steps)
        else:
            bounds = [int(p[0]) if len(p) else n for p in np.array_split(np.arange(n), steps)]
            ends = [*bounds[1:], n]
            for i in rng.permutation(steps):
                yield slice(bounds[i], ends[i])
        return
    if shuffle_rows:
        order = rng.permutation(n)
        for start in range(0, n, size):
            yield order[start:start + size]
    else:  # large data: contiguous batches (no copy) in a random order
        starts = np.arange(0, n, size)
        for start in rng.permutation(starts):
            yield slice(int(start), int(min(start + size, n)))


@dataclass
class Fitted:
    cfg: Config
    scaler: Scaler
    pop: Population
    W: F64  # (d, K*C) in standardised units
    b: F64  # (K*C,)
    outputs: int
    epochs_run: int = 0

    def effective(self) -> tuple[F64, F64]:
        """Weights and bias on raw features, outputs in label units: (d, K*C), (K*C,)."""
        s = self.scaler
        w = self.W / s.x_scale[:, None]
        b = self.b - s.x_shift @ w
        return w * s.y_scale, b * s.y_scale + s.y_shift

    def raw(self, x: Features, w: F64 | None = None, b: F64 | None = None,
            ) -> F64:
        """Raw outputs of every model: (n, K) or (n, K, C)."""
        if w is None or b is None:
            w, b = self.effective()
        z = np.asarray(x @ w.astype(np.float32 if x.dtype == np.float32 else np.float64),
                       dtype=np.float64) + b
        return z if self.outputs == 1 else z.reshape(len(z), -1, self.outputs)

    def model(self, k: int, threshold: float = 0.5) -> Model:
        w, b = self.effective()
        c = self.outputs
        return Model(self.cfg.predictor_type, self.cfg.loss, w[:, k * c:(k + 1) * c].copy(),
                     b[k * c:(k + 1) * c].copy(), threshold, self.pop.describe(k))


def losses(fitted: Fitted, x: Features, y: F64, group: Collective = LOCAL) -> F64:
    """Mean objective loss of every model on (x, y) (every host's), in label units: (K,)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _losses(fitted, x, y, group)


def _losses(fitted: Fitted, x: Features, y: F64, group: Collective) -> F64:
    cfg = fitted.cfg
    w, b = fitted.effective()
    total = np.zeros(fitted.pop.size)
    loss = make_loss(cfg, 1.0)
    for start in range(0, x.shape[0], BLOCK):
        z = fitted.raw(x[start:start + BLOCK], w, b)
        yb = y[start:start + BLOCK]
        if fitted.outputs > 1:
            total += softmax_loss(z, yb.astype(np.int64)).sum(axis=0)
        else:
            total += loss.value(z, yb[:, None]).sum(axis=0)
    summed = group.sum(np.append(total, x.shape[0]))
    mean: F64 = summed[:-1] / max(summed[-1], 1)
    return mean


def make_loss(cfg: Config, label_scale: float) -> Loss:
    return Loss(cfg.loss, margin=cfg.margin, quantile=cfg.quantile,
                eps=cfg.loss_insensitivity / label_scale, delta=cfg.huber_delta / label_scale)


def fit(x: Features, y: F64, cfg: Config, *, validation: tuple[Features, F64] | None = None,
        group: Collective = LOCAL) -> Fitted:
    """Train ``num_models`` models on (x, y) (this host's rows of ``group``'s) with early
    stopping; returns all of them. Models whose weights blow up (a learning rate too large)
    drop out of the race. ``validation``, when given, is the whole channel on every host."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _fit(x, y, cfg, validation, group)


def _fit(x: Features, y: F64, cfg: Config, validation: tuple[Features, F64] | None,
         group: Collective) -> Fitted:
    rng = np.random.default_rng(cfg.seed)  # the same on every host: the start
    own = rng if group.size == 1 else np.random.default_rng([cfg.seed, group.rank])
    local_n, d = x.shape
    binary = cfg.predictor_type == "binary_classifier"
    multiclass = cfg.predictor_type == "multiclass_classifier"
    c = cfg.num_classes if multiclass else 1
    scaler = fit_scaler(x, y, cfg, group)
    counted = group.sum([local_n, float(np.count_nonzero(y == 1)) if binary else 0.0])
    n, positives = round(float(counted[0])), float(counted[1])
    balanced = (n - positives) / positives if binary and positives else 1.0
    pop = population(cfg, balanced, rng)
    k = pop.size
    m_cols = k * c
    if cfg.init_method == "normal":
        W = rng.normal(0, cfg.init_sigma, size=(d, m_cols))
    else:
        W = rng.uniform(-cfg.init_scale, cfg.init_scale, size=(d, m_cols))
    b = np.full(m_cols, cfg.init_bias if cfg.use_bias else 0.0)
    fitted = Fitted(cfg, scaler, pop, W, b, c)
    loss = make_loss(cfg, scaler.y_scale)
    # the targets: class indices (multiclass) or standardised labels (the others)
    classes: Labels = y.astype(np.int64) if multiclass else np.empty(0, np.int64)
    targets: npt.NDArray[np.float32] = np.empty(0, np.float32) if multiclass \
        else ((y - scaler.y_shift) / scaler.y_scale).astype(np.float32)
    class_weight = None
    if multiclass and cfg.balance_multiclass_weights:
        counts = group.sum(np.bincount(classes, minlength=c).astype(np.float64))
        class_weight = np.where(counts > 0, n / (c * np.maximum(counts, 1)), 0.0)
    lr = np.repeat(pop.lr, c)
    wd = np.repeat(pop.wd, c)
    l1 = np.repeat(pop.l1, c)
    bias_lr = 1.0 if cfg.bias_lr_mult == "auto" else float(cfg.bias_lr_mult)
    bias_wd = 0.0 if cfg.bias_wd_mult == "auto" else float(cfg.bias_wd_mult)
    opt = Optimizer(cfg, (d, m_cols))
    size = max(1, min(cfg.mini_batch_size, n))
    per_epoch = math.ceil(n / size)
    steps = per_epoch if group.size > 1 else None
    step = per_epoch if cfg.lr_scheduler_step == "auto" else int(cfg.lr_scheduler_step)
    factor = 0.99 if cfg.lr_scheduler_factor == "auto" else float(cfg.lr_scheduler_factor)
    min_lr = 1e-5 if cfg.lr_scheduler_minimum_lr == "auto" else float(
        cfg.lr_scheduler_minimum_lr)
    decay = 1.0
    shift = scaler.x_shift.astype(np.float32)
    inv_scale = 1.0 / scaler.x_scale
    pos_w = pop.pos_weight.astype(np.float32)
    weighted = binary and bool(np.any(pos_w != 1))
    logistic = cfg.loss == "logistic"
    dense = not is_sparse(x)
    shuffle_rows = not dense or local_n * d <= 20_000_000
    if dense:
        x = np.ascontiguousarray(x, dtype=np.float32)
    best_loss, best_epoch = math.inf, 0
    track = validation is not None
    best_models = np.full(k, math.inf)
    best_W, best_b = W.copy(), b.copy()
    updates = 0
    for epoch in range(cfg.epochs):
        epoch_loss = np.zeros(k)
        for idx in _batches(local_n, size, own, shuffle_rows, steps):
            xb = x[idx]
            nb = xb.shape[0]
            w_eff = (W * inv_scale[:, None]).astype(np.float32)
            b_eff = (b - shift @ w_eff).astype(np.float32)
            z = xb @ w_eff
            z += b_eff
            if multiclass:
                cb = classes[idx]
                z3 = z.reshape(nb, k, c)
                p = softmax(z3)
                onehot_rows = np.arange(nb)
                logp = np.log(np.maximum(p[onehot_rows, :, cb], 1e-30))
                p[onehot_rows, :, cb] -= 1
                if class_weight is not None:
                    sw = class_weight[cb].astype(np.float32)
                    p *= sw[:, None, None]
                    logp *= sw[:, None]
                epoch_loss -= logp.sum(axis=0)
                g = p.reshape(nb, m_cols)
            else:
                yb = targets[idx]
                if logistic:  # the loss from the gradient's probabilities: fewer passes
                    p = sigmoid(z)
                    lv = -np.log(np.maximum(np.where(yb[:, None] > 0.5, p, 1 - p), 1e-30))
                    g = p
                    g -= yb[:, None]
                else:
                    g = loss.grad(z, yb[:, None])
                    lv = loss.value(z, yb[:, None])
                if weighted:
                    sw = 1 + yb[:, None] * (pos_w - 1)
                    g *= sw
                    lv *= sw
                epoch_loss += lv.sum(axis=0)
            gsum = g.sum(axis=0, dtype=np.float64)
            gx = np.asarray(xb.T @ g, dtype=np.float64)
            if steps is not None:  # the whole batch's gradient and size: summed over hosts
                total = group.sum(np.concatenate([gx.ravel(), gsum, [nb]]))
                gx, gsum, nb = (total[:gx.size].reshape(gx.shape), total[gx.size:-1],
                                round(float(total[-1])))
                if nb == 0:  # every host's share of this step was empty
                    continue
            gw = (gx - np.outer(shift, gsum)) * inv_scale[:, None] / nb
            gw += wd * W
            gb = gsum / nb + bias_wd * wd * b
            rate = lr * decay
            params, grads, rates = [W], [gw], [rate]
            if cfg.use_bias:
                params.append(b)
                grads.append(gb)
                rates.append(rate * bias_lr)
            opt.step(params, grads, rates)
            if np.any(l1):
                W[:] = np.sign(W) * np.maximum(np.abs(W) - rate * l1, 0)
            updates += 1
            if cfg.use_lr_scheduler and updates % step == 0:
                decay = max(decay * factor, min_lr / max(float(lr.max()), 1e-30))
        # a numeric blow-up (too large a learning rate) takes that model out, not the job
        bad = ~np.isfinite(W).all(axis=0) | ~np.isfinite(b)
        bad = np.repeat(bad.reshape(k, c).any(axis=1), c) | (lr == 0)
        if bad.any():
            W[:, bad], b[bad], lr[bad] = 0.0, 0.0, 0.0
            for weight_state, bias_state in opt.state.values():
                weight_state[:, bad] = 0.0
                bias_state[bad] = 0.0
        epoch_loss = group.sum(epoch_loss)
        train_loss = epoch_loss / n * (scaler.y_scale ** 2 if cfg.loss in (
            "squared_loss", "eps_insensitive_squared_loss", "huber_loss") else scaler.y_scale)
        train_loss = np.where(np.isfinite(train_loss), train_loss, np.inf)
        bad_models = bad.reshape(k, c).any(axis=1)
        train_loss[bad_models] = np.inf
        if cfg.log:
            cfg.log(epoch, "train", float(train_loss.min()))
        if track:
            assert validation is not None
            current = losses(fitted, *validation)
            current = np.where(np.isfinite(current), current, np.inf)
            current[bad_models] = np.inf
            if cfg.log:
                cfg.log(epoch, "validation", float(current.min()))
            improved = np.repeat(current < best_models, c)
            best_models = np.minimum(best_models, current)
            best_W[:, improved], best_b[improved] = W[:, improved], b[improved]
            watched = float(current.min())
        else:
            watched = float(train_loss.min())
        fitted.epochs_run = epoch + 1
        if watched < best_loss * (1 - cfg.early_stopping_tolerance) or epoch == 0:
            best_loss, best_epoch = min(watched, best_loss), epoch
        elif epoch - best_epoch >= cfg.early_stopping_patience:
            break
    if track:
        fitted.W, fitted.b = best_W, best_b
    return fitted


# ---------------------------------------------------------------------- selection, threshold


def calibrate(scores: Floats, y: F64, cfg: Config) -> tuple[F64, F64]:
    """For each model (column of ``scores``), the best decision threshold for the selection
    criterion and the criterion's value there: (values (K,), thresholds (K,))."""
    n, k = scores.shape
    st = np.ascontiguousarray(scores.T)  # (K, n): rows sort fast
    order = np.argsort(-st, axis=1)
    s = np.take_along_axis(st, order, axis=1)
    tp = np.cumsum(y[order], axis=1, dtype=np.float64)
    fp = np.arange(1, n + 1, dtype=np.float64) - tp
    pos = float(y.sum())
    neg = n - pos
    # a cut after sorted row i is possible only where the next score differs; column 0 is
    # the cut with no positive prediction
    distinct = np.ones((k, n + 1), dtype=bool)
    distinct[:, 1:n] = s[:, :-1] > s[:, 1:]
    zero = np.zeros((k, 1))
    tp = np.hstack([zero, tp])
    fp = np.hstack([zero, fp])
    npred = tp + fp
    precision = np.where(npred > 0, tp / np.maximum(npred, 1), 1.0)
    recall = tp / pos if pos else np.zeros_like(tp)
    criterion = cfg.selection_criterion
    if criterion == "f_beta":
        b2 = cfg.f_beta ** 2
        denom = b2 * precision + recall
        value = np.where(denom > 0, (1 + b2) * precision * recall / np.maximum(denom, 1e-300),
                         0.0)
    elif criterion == "precision_at_target_recall":
        value = np.where(recall >= cfg.target_recall, precision, -1.0)
    elif criterion == "recall_at_target_precision":
        value = np.where(precision >= cfg.target_precision, recall, -1.0)
    else:  # accuracy
        value = (tp + (neg - fp)) / n
    value = np.where(distinct, value, -np.inf)
    at = np.argmax(value, axis=1)
    rows = np.arange(k)
    best = value[rows, at]
    # threshold between the last predicted positive and the first predicted negative score
    upper = s[rows, np.maximum(at - 1, 0)]
    lower = s[rows, np.minimum(at, n - 1)]
    threshold = np.where(at == 0, np.nextafter(s[:, 0], np.inf),
                         np.where(at == n, s[:, n - 1], (upper + lower) / 2))
    return best, threshold


def select(fitted: Fitted, x: Features, y: F64,
           group: Collective = LOCAL) -> tuple[int, float]:
    """The best model (index) on (x, y) (every host's rows of ``group``) and, for binary
    classifiers, its threshold."""
    cfg = fitted.cfg
    limit = AUTO_CALIBRATION if cfg.num_calibration_samples == "auto" \
        else int(cfg.num_calibration_samples)
    local_n = x.shape[0]
    n = local_n if group.size == 1 else round(float(group.sum([local_n])[0]))
    if n > limit:  # a random sample of the selection data (each host its share)
        seed = cfg.seed + 1 if group.size == 1 else [cfg.seed + 1, group.rank]
        want = min(local_n, math.ceil(limit * local_n / n))
        pick = np.sort(np.random.default_rng(seed).choice(local_n, want, replace=False))
        x, y = x[pick], y[pick]
    loss = losses(fitted, x, y, group)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    if not np.isfinite(loss).any() or not fitted.W.any():
        raise FloatingPointError("every model diverged")
    if cfg.predictor_type != "binary_classifier" or cfg.selection_criterion == "loss_function":
        best = int(np.argmin(loss))
        default = 0.5 if cfg.loss == "logistic" else 0.0
        return best, default
    scores = transform(fitted.raw(x), cfg.predictor_type, cfg.loss)
    if group.size > 1:  # calibrated on every host's scores
        gathered = group.gather_rows(np.column_stack([scores, y]))
        scores, y = gathered[:, :-1], gathered[:, -1]
    values, thresholds = calibrate(scores, y, cfg)
    values = np.where(np.isfinite(loss), values, -np.inf)
    top = np.flatnonzero(values >= values.max() - 1e-12)
    best = int(top[np.argmin(loss[top])])
    return best, float(thresholds[best])


# ------------------------------------------------------------------------------------ metrics


def roc_auc(scores: Floats, y: npt.NDArray[np.bool_]) -> float:
    from scipy.stats import rankdata

    pos = int(y.sum())
    neg = len(y) - pos
    if not pos or not neg:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def evaluate(model: Model, x: Features, y: F64, cfg: Config) -> dict[str, float]:
    """The metrics SageMaker reports for a channel, by predictor type."""
    raw = np.vstack([model.raw(x[s:s + BLOCK]) for s in range(0, x.shape[0], BLOCK)])
    out: dict[str, float] = {}
    if cfg.predictor_type == "multiclass_classifier":
        labels = y.astype(np.int64)
        out["objective_loss"] = float(softmax_loss(raw[:, None, :], labels).mean())
        pred = raw.argmax(axis=1)
        out["multiclass_accuracy"] = float(np.mean(pred == labels))
        top = min(cfg.accuracy_top_k, raw.shape[1])
        true_score = raw[np.arange(len(raw)), labels]
        rank = (raw > true_score[:, None]).sum(axis=1)  # 0 = best
        out["multiclass_top_k_accuracy"] = float(np.mean(rank < top))
        c = raw.shape[1]
        tp = np.bincount(labels[pred == labels], minlength=c).astype(np.float64)
        npred = np.bincount(pred, minlength=c).astype(np.float64)
        nact = np.bincount(labels, minlength=c).astype(np.float64)
        prec = np.where(npred > 0, tp / np.maximum(npred, 1), 0.0)
        rec = np.where(nact > 0, tp / np.maximum(nact, 1), 0.0)
        b2 = cfg.f_beta ** 2
        denom = b2 * prec + rec
        fb = np.where(denom > 0, (1 + b2) * prec * rec / np.maximum(denom, 1e-300), 0.0)
        present = nact > 0
        out["macro_f_beta"] = float(fb[present].mean())
        out["macro_precision"] = float(prec[present].mean())
        out["macro_recall"] = float(rec[present].mean())
        out["dcg"] = float(np.mean(1.0 / np.log2(rank + 2.0)))
        return out
    z = raw[:, 0]
    loss = make_loss(cfg, 1.0)
    out["objective_loss"] = float(loss.value(z, y).mean())
    if cfg.predictor_type == "regressor":
        r = z - y
        out["mse"] = float(np.mean(r * r))
        out["absolute_loss"] = float(np.mean(np.abs(r)))
        out["rmse"] = math.sqrt(out["mse"])
        return out
    score = transform(z, cfg.predictor_type, cfg.loss)
    truth = y == 1
    found = binary_scores(score >= model.threshold, truth, cfg.f_beta)
    out["binary_classification_accuracy"] = found["accuracy"]
    out["binary_f_beta"] = found["f_beta"]
    out["precision"] = found["precision"]
    out["recall"] = found["recall"]
    out["roc_auc_score"] = roc_auc(score, truth)
    return out
