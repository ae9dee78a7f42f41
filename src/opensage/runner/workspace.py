"""A job's directory laid out as SageMaker's ``/opt/ml`` container contract."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensage.algorithms.contract import MlLayout


@dataclass(frozen=True)
class Workspace(MlLayout):
    """A job directory the runner lays out, fills and cleans up."""

    root: Path

    def create(self) -> None:
        """A fresh layout; a previous attempt's files are removed (checkpoints come from S3).

        ``checkpoints/`` exists only when the job has a CheckpointConfig: built-ins such as
        XGBoost checkpoint every round when it is there, which costs time."""
        if self.root.exists():
            shutil.rmtree(self.root)
        for d in (self.config_dir, self.data_dir, self.model_dir, self.output_data_dir,
                  self.code_dir):
            d.mkdir(parents=True, exist_ok=True)

    def write_config(self, hyperparameters: dict[str, str], input_data_config: dict[str, Any],
                     resource_config: dict[str, Any],
                     checkpoint_config: dict[str, Any] | None = None) -> None:
        files = {"hyperparameters.json": hyperparameters,
                 "inputdataconfig.json": input_data_config,
                 "resourceconfig.json": resource_config}
        if checkpoint_config:
            files["checkpointconfig.json"] = checkpoint_config
        for name, content in files.items():
            (self.config_dir / name).write_text(json.dumps(content, indent=1))

    def read_failure(self, limit: int = 1024) -> str | None:
        try:
            text = self.failure_path.read_text(errors="replace").strip()
        except OSError:
            return None
        return text[:limit] or None

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def cpus_for(instance_type: str) -> int:
    """vCPUs of an ``ml.<family>.<size>`` instance (large = 2, xlarge = 4, Nxlarge = 4N),
    capped at what this machine has."""
    return max(1, min(vcpus_for(instance_type), len(os.sched_getaffinity(0))))


def vcpus_for(instance_type: str) -> int:
    """vCPUs of an ``ml.<family>.<size>`` instance (large = 2, xlarge = 4, Nxlarge = 4N);
    an unknown size: this machine's count."""
    size = instance_type.rsplit(".", 1)[-1]
    if size in ("medium", "small"):
        wanted = 1
    elif size == "large":
        wanted = 2
    elif size.endswith("xlarge"):
        factor = size.removesuffix("xlarge")
        wanted = 4 * (int(factor) if factor.isdigit() else 1)
    else:
        wanted = os.cpu_count() or 1
    return wanted


# GPUs per instance of the GPU families (by size); a size not listed has one.
_GPUS = {
    "p2": {"8xlarge": 8, "16xlarge": 16}, "p3": {"8xlarge": 4, "16xlarge": 8},
    "p3dn": {"24xlarge": 8}, "p4d": {"24xlarge": 8}, "p4de": {"24xlarge": 8},
    "p5": {"48xlarge": 8}, "g4dn": {"12xlarge": 4, "metal": 8},
    "g5": {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8}, "g6": {"12xlarge": 4,
                                                               "24xlarge": 4, "48xlarge": 8},
}


def gpus_for(instance_type: str) -> int:
    """GPUs of an ``ml.<family>.<size>`` instance: 0 for the CPU families."""
    family, _, size = instance_type.removeprefix("ml.").partition(".")
    if family not in _GPUS:
        return 0
    return _GPUS[family].get(size, 1)


# GiB of memory per vCPU of an instance family (its first letter): c5.xlarge 8 GiB,
# m5.xlarge 16 GiB, r5.xlarge 32 GiB, x1 ~16 GiB/vCPU; others as m.
_GIB_PER_VCPU = {"c": 2, "m": 4, "t": 4, "r": 8, "z": 8, "x": 16, "g": 4, "p": 8, "i": 8}


def memory_for(instance_type: str, vcpus: int) -> int | None:
    """The memory limit of a container on ``instance_type`` with ``vcpus`` vCPUs (the
    instance's share per vCPU), capped at this machine's memory; None when unknown."""
    family = instance_type.removeprefix("ml.")[:1]
    wanted = _GIB_PER_VCPU.get(family, 4) * vcpus * 1024**3
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return wanted
    return min(wanted, physical)


def ray_resources(instance_type: str) -> dict[str, float]:
    """What one host or model instance of ``instance_type`` asks a Ray cluster for: its
    vCPUs (``CPU``), its memory in bytes (``memory``) and, for the GPU families, its GPUs
    (``GPU``) -- a training host's placement bundle and a serving actor's options alike."""
    cpus = vcpus_for(instance_type)
    wanted: dict[str, float] = {"CPU": cpus}
    memory = memory_for(instance_type, cpus)
    if memory is not None:
        wanted["memory"] = memory
    if gpus := gpus_for(instance_type):
        wanted["GPU"] = gpus
    return wanted
