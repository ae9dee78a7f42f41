"""Training for the image classification built-in: MXNet image RecordIO or ``.lst`` + images in,
``model_algo-1`` (safetensors ResNet state dict) out.

Each epoch logs MXNet's lines, ``Epoch[N] Train-accuracy=...`` (``Train-top_k_accuracy_K``
with ``top_k``), ``Epoch[N] Validation-accuracy=...`` and ``Epoch[N] Time cost=...``; the model
of the best validation epoch is kept (SageMaker's default), and with ``checkpoint_frequency``
every N-th epoch's model is also written (``model_algo-1-epoch-NNNN``). ``early_stopping``
stops after ``early_stopping_patience`` epochs without a relative improvement of
``early_stopping_tolerance`` (not before ``early_stopping_min_epochs``).

``use_pretrained_model=1`` never downloads: it starts from
``$OPENSAGE_PRETRAINED_MODELS_DIR/image-classification-resnet-<num_layers>.safetensors`` (a
state dict of this ResNet; its ``fc`` layer is replaced for ``num_classes``), default
``~/.cache/opensage/pretrained``, and fails the job when the file is not there.

With a ``model`` channel (the model.tar.gz of an earlier job with the same num_layers,
image_shape and num_classes) training starts from that model: incremental training."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.image_classification.data import (
    Example,
    center_crop,
    check_labels,
    decode,
    iter_batches,
    read_lst,
    read_recordio,
)
from opensage.algorithms.image_classification.model import ResNet, architecture
from opensage.algorithms.image_classification.spec import IMAGE_FORMAT, NAME, SPEC
from opensage.algorithms.torchsupport import Checkpoints, save_model, setup

PRETRAINED_ENV = "OPENSAGE_PRETRAINED_MODELS_DIR"
MEAN = {3: (123.68, 116.779, 103.939), 1: (117.0,)}
STD = {3: (58.393, 57.12, 57.375), 1: (57.6,)}


def pretrained_dir() -> Path:
    configured = os.environ.get(PRETRAINED_ENV)
    return Path(configured) if configured else Path.home() / ".cache/opensage/pretrained"


def parse_shape(text: str) -> tuple[int, int, int]:
    channels, height, width = (int(p) for p in text.split(","))
    return channels, height, width


def load_channel(env: TrainingEnv, channel: str, data_format: str, shape: tuple[int, int, int],
                 resize: int | None) -> tuple[list[NDArray[np.uint8]], list[Example]]:
    if data_format == IMAGE_FORMAT:
        examples = read_lst(env.channel_data(f"{channel}_lst"), env.channel_data(channel),
                            channel)
    else:
        examples = read_recordio(env.channel_data(channel), channel)
    channels, height, width = shape
    images = [decode(e.image, channels, resize, height, width, e.where) for e in examples]
    return images, examples


class Batcher:
    """uint8 images -> normalised float batches: centre crops, or the augmentation's random
    crops, flips, colour jitter and affine transforms."""

    def __init__(self, shape: tuple[int, int, int], augmentation: str | None,
                 device: torch.device) -> None:
        self.channels, self.height, self.width = shape
        self.augmentation = augmentation
        self.device = device
        self.mean = torch.tensor(MEAN[self.channels], device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(STD[self.channels], device=device).view(1, -1, 1, 1)

    def _random_crop(self, image: NDArray[Any], rng: np.random.Generator) -> NDArray[Any]:
        h, w = self.height, self.width
        if image.shape[0] == h and image.shape[1] == w:  # pad so that a crop can move
            pad = max(2, h // 8)
            image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
        top = int(rng.integers(0, image.shape[0] - h + 1))
        left = int(rng.integers(0, image.shape[1] - w + 1))
        crop = image[top:top + h, left:left + w]
        return crop[:, ::-1] if rng.random() < 0.5 else crop

    def batch(self, images: list[NDArray[Any]], rng: np.random.Generator | None
              ) -> torch.Tensor:
        augment = rng is not None and self.augmentation is not None
        crops = [self._random_crop(i, rng) if augment and rng is not None
                 else center_crop(i, self.height, self.width) for i in images]
        array = np.stack([np.ascontiguousarray(c) for c in crops]).transpose(0, 3, 1, 2)
        x = torch.as_tensor(array, device=self.device).float()
        if augment and rng is not None and self.augmentation in ("crop_color",
                                                                 "crop_color_transform"):
            x = self._color(x, rng)
        x = (x - self.mean) / self.std
        if augment and rng is not None and self.augmentation == "crop_color_transform":
            x = self._affine(x, rng)
        return x

    def _color(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        n = x.shape[0]

        def factor(spread: float) -> torch.Tensor:
            values = rng.uniform(1 - spread, 1 + spread, size=n).astype(np.float32)
            return torch.as_tensor(values, device=x.device).view(n, 1, 1, 1)

        x = x * factor(0.3)  # brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * factor(0.3) + mean  # contrast
        if self.channels == 3:
            grey = x.mean(dim=1, keepdim=True)
            x = (x - grey) * factor(0.3) + grey  # saturation
        return x.clamp(0, 255)

    def _affine(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        n = x.shape[0]
        angle = rng.uniform(-10, 10, size=n) * math.pi / 180
        shear = rng.uniform(-0.1, 0.1, size=n)
        aspect = np.sqrt(rng.uniform(0.8, 1.25, size=n))
        theta = np.zeros((n, 2, 3), dtype=np.float32)
        theta[:, 0, 0] = np.cos(angle) * aspect
        theta[:, 0, 1] = -np.sin(angle) + shear
        theta[:, 1, 0] = np.sin(angle)
        theta[:, 1, 1] = np.cos(angle) / aspect
        grid = torch.nn.functional.affine_grid(torch.as_tensor(theta, device=x.device),
                                               list(x.shape), align_corners=False)
        return torch.nn.functional.grid_sample(x, grid, align_corners=False)


def _optimizer(model: torch.nn.Module, hps: dict[str, Any]) -> torch.optim.Optimizer:
    lr, wd = hps["learning_rate"], hps["weight_decay"]
    params = model.parameters()
    if hps["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(hps["beta_1"], hps["beta_2"]),
                                eps=hps["eps"], weight_decay=wd)
    if hps["optimizer"] == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=hps["gamma"], eps=hps["eps"],
                                   weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=hps["momentum"], weight_decay=wd,
                           nesterov=hps["optimizer"] == "nag" and hps["momentum"] > 0)


def _load_pretrained(model: ResNet, num_layers: int) -> None:
    path = pretrained_dir() / f"image-classification-resnet-{num_layers}.safetensors"
    if not path.is_file():
        raise UserError(
            f"use_pretrained_model=1 needs pretrained ResNet-{num_layers} weights, which "
            f"opensage never downloads: none found at {path}. Put a safetensors state dict of "
            f"opensage's ResNet-{num_layers} there (the directory is set by {PRETRAINED_ENV} "
            f"on the server), or train from scratch with use_pretrained_model=0.")
    from safetensors.torch import load_file

    weights = {k: v for k, v in load_file(str(path)).items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or [k for k in missing if not k.startswith("fc.")]:
        raise UserError(f"{path.name} does not hold weights of opensage's "
                        f"ResNet-{num_layers} for this image_shape (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]}).")
    print(f"Starting from the pretrained weights in {path}.", flush=True)


def _load_incremental(model: ResNet, config: dict[str, Any], location: Path) -> None:
    """Start from the model in the ``model`` channel (a model.tar.gz or its files)."""
    import tarfile
    import tempfile

    from opensage.algorithms.torchsupport import load_model

    files = [location] if location.is_file() else sorted(p for p in location.rglob("*")
                                                         if p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        directory = None
        for path in files:
            if path.name == "model_algo-1":
                directory = path.parent
            elif tarfile.is_tarfile(path):
                with tarfile.open(path) as archive:
                    member = next((m for m in archive.getmembers()
                                   if m.isfile() and m.name.split("/")[-1] == "model_algo-1"),
                                  None)
                    if member is not None:
                        target = Path(tmp) / "model_algo-1"
                        source = archive.extractfile(member)
                        if source is not None:
                            target.write_bytes(source.read())
                            directory = Path(tmp)
            if directory is not None:
                break
        if directory is None:
            raise UserError("The model channel holds no image-classification model "
                            "(model.tar.gz with model_algo-1).")
        try:
            tensors, header = load_model(directory, NAME)
        except RuntimeError as e:
            raise UserError(f"model channel: {e}") from None
    previous = header.get("config", {})
    for key in ("num_layers", "channels", "height", "width", "num_classes", "multi_label"):
        if previous.get(key) != config[key]:
            raise UserError(f"The model channel's model has {key} {previous.get(key)!r}, this "
                            f"job {config[key]!r}: incremental training needs the same "
                            f"num_layers, image_shape, num_classes and multi_label.")
    model.load_state_dict(tensors)
    print("Starting from the model in the model channel (incremental training).", flush=True)


def evaluate(model: ResNet, batcher: Batcher, images: list[NDArray[Any]],
             labels: NDArray[Any], size: int, multi_label: bool) -> float:
    model.eval()
    correct = 0.0
    with torch.no_grad():
        for index in iter_batches(len(images), size, None):
            logits = model(batcher.batch([images[i] for i in index], None)).float()
            correct += _correct(logits, torch.as_tensor(labels[index], device=logits.device),
                                multi_label)
    model.train()
    return correct / len(images)


def _correct(logits: torch.Tensor, target: torch.Tensor, multi_label: bool) -> float:
    if multi_label:  # the fraction of labels right, per image
        return float(((logits > 0).float() == target).float().mean(dim=1).sum())
    return float((logits.argmax(dim=1) == target).sum())


def train(env: TrainingEnv) -> None:
    hps, formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                     fill_defaults=True)
    shape = parse_shape(hps["image_shape"])
    channels, height, width = shape
    try:
        architecture(hps["num_layers"], height)
    except ValueError as e:
        raise UserError(str(e)) from None
    multi_label = bool(hps["multi_label"])
    device = setup(env)
    started = time.monotonic()
    train_images, train_examples = load_channel(env, "train", formats["train"], shape,
                                                hps.get("resize"))
    validation_images, validation_examples = load_channel(
        env, "validation", formats["validation"], shape, hps.get("resize"))
    num_classes = hps["num_classes"]
    train_labels = check_labels(train_examples, num_classes, multi_label)
    validation_labels = check_labels(validation_examples, num_classes, multi_label)
    del train_examples, validation_examples
    if len(train_images) != hps["num_training_samples"]:
        print(f"num_training_samples is {hps['num_training_samples']}, the train channel has "
              f"{len(train_images)} images; using {len(train_images)}.", flush=True)
    config = {"num_layers": hps["num_layers"], "channels": channels, "height": height,
              "width": width, "num_classes": num_classes, "multi_label": multi_label,
              "resize": hps.get("resize")}
    model = ResNet(config)
    if "model" in formats:
        _load_incremental(model, config, env.channel_data("model"))
    elif hps["use_pretrained_model"]:
        _load_pretrained(model, hps["num_layers"])
    model.to(device)
    optimizer = _optimizer(model, hps)
    batcher = Batcher(shape, hps.get("augmentation_type"), device)
    steps = [int(s) for s in (hps.get("lr_scheduler_step") or "").split(",") if s]
    weights = None
    if multi_label and hps["use_weighted_loss"]:
        positive = train_labels.mean(axis=0).clip(1e-3, 1 - 1e-3)
        weights = torch.as_tensor((1 - positive) / positive, device=device)
    half = hps["precision_dtype"] == "float16" and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=half)
    checkpoints = Checkpoints(env, {k: v for k, v in hps.items() if k != "epochs"})
    state: dict[str, Any] = {"best": None, "best_epoch": -1, "stale": 0}
    start = checkpoints.resume(model, optimizer, state)
    best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    top_k = hps.get("top_k")
    size = hps["mini_batch_size"]
    print(f"Training ResNet-{hps['num_layers']} on {len(train_images)} images "
          f"({hps['image_shape']}), {len(validation_images)} for validation, {num_classes} "
          f"classes, device {device}; data read in {time.monotonic() - started:.1f}s.",
          flush=True)
    for epoch in range(start, hps["epochs"]):
        tic = time.monotonic()
        for group in optimizer.param_groups:
            group["lr"] = hps["learning_rate"] * hps["lr_scheduler_factor"] ** sum(
                1 for s in steps if epoch >= s)
        rng = np.random.default_rng(epoch)
        model.train()
        correct = top_correct = 0.0
        for index in iter_batches(len(train_images), size, rng):
            if len(index) < 2 and len(train_images) > 1:
                continue  # batch norm needs two images
            x = batcher.batch([train_images[i] for i in index], rng)
            target = torch.as_tensor(train_labels[index], device=device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=half):
                logits = model(x)
                if multi_label:
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(
                        logits.float(), target, pos_weight=weights)
                else:
                    loss = torch.nn.functional.cross_entropy(logits.float(), target)
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            correct += _correct(logits.detach().float(), target, multi_label)
            if top_k and not multi_label:
                k = min(top_k, num_classes)
                top_correct += float((logits.detach().topk(k, dim=1).indices
                                      == target[:, None]).any(dim=1).sum())
        print(f"Epoch[{epoch}] Train-accuracy={correct / len(train_images):f}", flush=True)
        if top_k and not multi_label:
            print(f"Epoch[{epoch}] Train-top_k_accuracy_{top_k}="
                  f"{top_correct / len(train_images):f}", flush=True)
        print(f"Epoch[{epoch}] Time cost={time.monotonic() - tic:.3f}", flush=True)
        accuracy = evaluate(model, batcher, validation_images, validation_labels, size,
                            multi_label)
        print(f"Epoch[{epoch}] Validation-accuracy={accuracy:f}", flush=True)
        best = state["best"]
        if best is None or accuracy > best:
            improved = best is None or accuracy > best * (1 + hps["early_stopping_tolerance"])
            state.update(best=accuracy, best_epoch=epoch)
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            state["stale"] = 0 if improved else state["stale"] + 1
        else:
            state["stale"] += 1
        frequency = hps.get("checkpoint_frequency")
        if frequency and (epoch + 1) % frequency == 0:
            save_model(env.model_dir, model.state_dict(), {"algorithm": NAME, "config": config},
                       filename=f"model_algo-1-epoch-{epoch + 1:04d}")
        checkpoints.save(model, optimizer, epoch + 1, state)
        if (hps["early_stopping"] and epoch + 1 >= hps["early_stopping_min_epochs"]
                and state["stale"] >= hps["early_stopping_patience"]):
            print(f"Early stopping after epoch {epoch}: validation accuracy did not improve "
                  f"for {state['stale']} epochs.", flush=True)
            break
    print(f"Keeping the model of epoch {state['best_epoch']} (validation accuracy "
          f"{state['best']}).", flush=True)
    save_model(env.model_dir, best_weights, {"algorithm": NAME, "config": config})
