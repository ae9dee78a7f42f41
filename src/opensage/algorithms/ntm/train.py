"""Training for the NTM built-in: word-count documents in, ``model_algo-1`` (safetensors) out.

Logs the containers' lines per epoch, ``#quality_metric: host=algo-1, epoch=3, train
total_loss <loss>=...`` (and ``validation total_loss/recons_loss/kld`` with a validation
channel), and ``test total_loss/recons_loss/kld/perplexity`` at the end; stops early when the
monitored loss (validation's, else train's) changed by less than ``tolerance`` (relative) over
``num_patience_epochs`` epochs. With an ``auxiliary`` channel (``vocab.txt``) each topic's top
words are logged, and the topic uniqueness.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.firstparty.training import is_sparse, log_metric, read_channel
from opensage.algorithms.ntm.model import TopicModel
from opensage.algorithms.ntm.spec import NAME, SPEC
from opensage.algorithms.torchsupport import Checkpoints, save_model, setup
from opensage.data import data_files


class Documents:
    """A channel's word counts (dense or CSR), handed out as dense float32 mini-batches."""

    def __init__(self, features: Any, channel: str) -> None:
        sparse = is_sparse(features)
        matrix: Any = features.tocsr() if sparse else np.asarray(features)
        self.features = matrix
        values: Any = matrix.data if sparse else matrix
        bad: Any = np.asarray(values) < 0
        if bad.any():
            if sparse:
                at = int(np.flatnonzero(bad)[0])
                row = int(np.searchsorted(matrix.indptr, at, side="right"))
            else:
                row = int(np.flatnonzero(bad.any(axis=1))[0]) + 1
            raise UserError(f"The {channel} channel's record {row} has a negative word count; "
                            f"NTM takes word counts (non-negative numbers).")
        self.rows = int(self.features.shape[0])

    def batch(self, index: Any, device: torch.device) -> torch.Tensor:
        part = self.features[index]
        dense = part.toarray() if is_sparse(part) else part
        return torch.as_tensor(np.asarray(dense, dtype=np.float32), device=device)

    def batches(self, size: int, device: torch.device,
                order: Any = None) -> Any:
        order = np.arange(self.rows) if order is None else order
        for start in range(0, len(order), size):
            yield self.batch(order[start:start + size], device)


def _documents(env: TrainingEnv, name: str, data_format: str, dim: int,
               required: bool) -> Documents | None:
    data = read_channel(env, name, data_format, default_label_size=0, feature_dim=dim,
                        required=required)
    return None if data is None else Documents(data.features, name)


def _vocabulary(env: TrainingEnv, dim: int) -> list[str] | None:
    if "auxiliary" not in env.input_data_config:
        return None
    files = data_files(env.channel_data("auxiliary"))
    named = [f for f in files if f.name == "vocab.txt"] or files
    if not named:
        raise UserError("The auxiliary channel has no vocab.txt.")
    words = named[0].read_text(encoding="utf-8").splitlines()
    if len(words) != dim:
        raise UserError(f"The auxiliary channel's {named[0].name} has {len(words)} words but "
                        f"feature_dim is {dim}: it must have one word per line, one line per "
                        f"feature.")
    return words


def _optimizer(hps: dict[str, Any], params: Any) -> torch.optim.Optimizer:
    lr, decay = hps["learning_rate"], hps["weight_decay"]
    name = hps["optimizer"]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=decay)
    # AdaDelta adapts its own step size (MXNet's, as SageMaker's NTM uses it, takes none).
    return torch.optim.Adadelta(params, lr=1.0, rho=0.9, weight_decay=decay)


def evaluate(model: TopicModel, docs: Documents, size: int,
             device: torch.device) -> dict[str, float]:
    """Per-document mean total loss, reconstruction loss and KL, and the perplexity
    (exp of the reconstruction NLL per word)."""
    model.eval()
    recons = kld = words = 0.0
    with torch.no_grad():
        for batch in docs.batches(size, device):
            r, k = model.losses(batch, sample=False)
            recons += float(r.sum())
            kld += float(k.sum())
            words += float(batch.sum())
    n = max(docs.rows, 1)
    return {"total_loss": (recons + kld) / n, "recons_loss": recons / n, "kld": kld / n,
            "perplexity": math.exp(min(recons / max(words, 1.0), 700.0))}


def train(env: TrainingEnv) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    device = setup(env)
    dim, topics = hps["feature_dim"], hps["num_topics"]
    vocabulary = _vocabulary(env, dim)
    train_docs = _documents(env, "train", formats["train"], dim, True)
    assert train_docs is not None
    validation = _documents(env, "validation", formats.get("validation", ""), dim, False)
    test = _documents(env, "test", formats.get("test", ""), dim, False)
    layers = ([3 * topics, 2 * topics] if hps["encoder_layers"] == "auto"
              else list(hps["encoder_layers"]))
    model = TopicModel(dim, topics, layers, hps["encoder_layers_activation"],
                       hps["batch_norm"]).to(device)
    optimizer = _optimizer(hps, model.parameters())
    size = hps["mini_batch_size"]
    clip = None if hps["clip_gradient"] in ("infinity", "inf") else hps["clip_gradient"]
    checkpoints = Checkpoints(env, {k: v for k, v in hps.items() if k != "epochs"})
    history: dict[str, Any] = {"losses": []}
    start = checkpoints.resume(model, optimizer, history)
    losses: list[float] = list(history["losses"])
    print(f"Training NTM: {train_docs.rows} documents, vocabulary {dim}, {topics} topics, "
          f"encoder layers {layers}, device {device}.", flush=True)
    rng = np.random.default_rng(start)
    for epoch in range(start, hps["epochs"]):
        began = time.monotonic()
        model.train()
        order = rng.permutation(train_docs.rows)
        if hps["sub_sample"] < 1.0:
            order = order[:max(1, round(len(order) * hps["sub_sample"]))]
        total, seen = 0.0, 0
        for batch in train_docs.batches(size, device, order):
            recons, kld = model.losses(batch, sample=True)
            loss = (recons + kld).mean()
            optimizer.zero_grad()
            loss.backward()
            if hps["rescale_gradient"] != 1.0:
                for p in model.parameters():
                    if p.grad is not None:
                        p.grad.mul_(hps["rescale_gradient"])
            if clip is not None:
                torch.nn.utils.clip_grad_value_(model.parameters(), clip)
            optimizer.step()
            total += float(loss) * len(batch)
            seen += len(batch)
        train_loss = total / max(seen, 1)
        log_metric("train", "total_loss", train_loss, loss=True, epoch=epoch)
        monitored = train_loss
        if validation is not None:
            scores = evaluate(model, validation, size, device)
            for metric in ("total_loss", "recons_loss", "kld"):
                log_metric("validation", metric, scores[metric], loss=True, epoch=epoch)
            monitored = scores["total_loss"]
        print(f"#progress_metric: host=algo-1, completed {epoch + 1} epochs "
              f"({time.monotonic() - began:.2f} s)", flush=True)
        losses.append(monitored)
        checkpoints.save(model, optimizer, epoch + 1, {"losses": losses})
        if _converged(losses, hps["num_patience_epochs"], hps["tolerance"]):
            print(f"Stopping early after epoch {epoch}: the loss changed by less than "
                  f"{hps['tolerance']} over {hps['num_patience_epochs']} epochs.", flush=True)
            break
    if test is not None:
        scores = evaluate(model, test, size, device)
        for metric in ("total_loss", "recons_loss", "kld", "perplexity"):
            log_metric("test", metric, scores[metric], loss=True)
    if vocabulary is not None:
        _log_topics(model, vocabulary)
    save_model(env.model_dir, model.state_dict(),
               {"algorithm": NAME, "feature_dim": dim, "num_topics": topics, "layers": layers,
                "activation": hps["encoder_layers_activation"],
                "batch_norm": hps["batch_norm"]})


def _converged(losses: list[float], patience: int, tolerance: float) -> bool:
    if len(losses) <= patience:
        return False
    before, now = losses[-patience - 1], losses[-1]
    return abs(before - now) / max(abs(before), 1e-12) < tolerance


def _log_topics(model: TopicModel, vocabulary: list[str], top: int = 10) -> None:
    with torch.no_grad():
        words = model.topic_words().cpu().numpy()
    tops = np.argsort(-words, axis=1)[:, :top]
    for topic, row in enumerate(tops):
        print(f"Topic {topic}: {' '.join(vocabulary[i] for i in row)}", flush=True)
    counts = np.bincount(tops.ravel(), minlength=len(vocabulary))
    uniqueness = float(np.mean(1.0 / counts[tops]))
    log_metric("train", "topic_uniqueness", uniqueness, loss=False)
