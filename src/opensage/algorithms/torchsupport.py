"""What the deep-learning built-ins (NTM, Object2Vec, seq2seq...) share: the device, threads and
seed of a job, models and checkpoints as safetensors (never pickle), per-epoch metric lines.

Imported only inside the ``builtin-torch`` environment (the package's ``ENVIRONMENT``), which
has torch, NumPy, SciPy, pyarrow and safetensors; the server's interpreter never imports it.

* :func:`setup` — threads (``SM_NUM_CPUS``), a fixed seed, CUDA when the machine has it.
* :func:`save_model` / :func:`load_model` — ``model_algo-1``: a safetensors file of the
  model's state dict with a JSON header (``{"algorithm": ..., hyperparameters...}``) in its
  metadata; written atomically.
* :class:`Checkpoints` — the model's and optimizer's state after each epoch in the job's
  checkpoint directory (``checkpoints/``, synced with ``CheckpointConfig.S3Uri``), resumed
  from when the job starts again (spot interruptions, or a new job on the same S3 prefix).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from opensage.algorithms.contract import TrainingEnv

__all__ = ["MODEL_FILENAME", "Checkpoints", "load_model", "save_model", "setup"]

MODEL_FILENAME = "model_algo-1"
CHECKPOINT_FILENAME = "opensage-checkpoint.safetensors"
_HEADER = "opensage"


def setup(env: TrainingEnv | None = None, *, seed: int = 0) -> torch.device:
    """Threads as the instance's CPUs, a fixed seed, and the device to train on."""
    cpus = env.num_cpus if env is not None else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cpus))
    torch.manual_seed(seed)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _save(path: Path, tensors: Mapping[str, torch.Tensor], header: Mapping[str, Any]) -> None:
    from safetensors.torch import save_file

    partial = path.with_name(path.name + ".partial")
    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()},
              str(partial), metadata={_HEADER: json.dumps(dict(header))})
    os.replace(partial, path)


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        for key in f.keys():  # noqa: SIM118 - a safetensors handle
            tensors[key] = f.get_tensor(key)
    return tensors, json.loads(metadata.get(_HEADER, "{}"))


def save_model(model_dir: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor],
               header: Mapping[str, Any], filename: str = MODEL_FILENAME) -> Path:
    """Write the model (``state_dict()`` and any other tensors) with its header."""
    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    _save(path, tensors, header)
    return path


def load_model(model_dir: str | os.PathLike[str], algorithm: str,
               filename: str = MODEL_FILENAME) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and header of a saved model; a RuntimeError says what is wrong."""
    path = Path(model_dir) / filename
    if not path.is_file():
        raise RuntimeError(f"model.tar.gz has no {filename} file")
    try:
        tensors, header = _load(path)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise RuntimeError(f"Unable to load the model {filename}: {e}") from None
    if header.get("algorithm") != algorithm:
        raise RuntimeError(f"{filename} is not a {algorithm} model (it says "
                           f"{header.get('algorithm')!r})")
    return tensors, header


class Checkpoints:
    """The job's checkpoints: model and optimizer state after each epoch, resumed at start.

    A checkpoint records the epochs done and a fingerprint of the hyperparameters: one made
    with other hyperparameters is not resumed from (the job starts afresh, saying so)."""

    def __init__(self, env: TrainingEnv, fingerprint: Mapping[str, Any]) -> None:
        directory = env.checkpoint_dir
        self.path = directory / CHECKPOINT_FILENAME if directory is not None else None
        self.fingerprint = json.dumps(dict(fingerprint), sort_keys=True, default=str)

    def resume(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               extra: dict[str, Any] | None = None) -> int:
        """Load the last checkpoint into ``model`` and ``optimizer``; the epochs it had done
        (0 without one). ``extra`` receives the saved extra state."""
        if self.path is None or not self.path.is_file():
            return 0
        try:
            tensors, header = _load(self.path)
        except Exception as e:  # noqa: BLE001
            print(f"Ignoring an unreadable checkpoint {self.path.name}: {e}", flush=True)
            return 0
        if header.get("fingerprint") != self.fingerprint:
            print("Ignoring a checkpoint made with other hyperparameters.", flush=True)
            return 0
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim/"):
                _, index, name = key.split("/", 2)
                state.setdefault(int(index), {})[name] = value
        if state:
            optimizer.load_state_dict({"state": state,
                                       "param_groups": optimizer.state_dict()["param_groups"]})
        if extra is not None:
            extra.update(header.get("extra") or {})
        epochs = int(header.get("epochs", 0))
        print(f"Resuming from the checkpoint after epoch {epochs}.", flush=True)
        return epochs

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epochs: int,
             extra: Mapping[str, Any] | None = None) -> None:
        if self.path is None:
            return
        tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
        for index, values in optimizer.state_dict()["state"].items():
            for name, value in values.items():
                tensors[f"optim/{index}/{name}"] = (value if isinstance(value, torch.Tensor)
                                                    else torch.tensor(value))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _save(self.path, tensors, {"fingerprint": self.fingerprint, "epochs": epochs,
                                   "extra": dict(extra or {})})
