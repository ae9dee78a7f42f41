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


def resource_config(instance_type: str, instance_count: int) -> dict[str, Any]:
    hosts = [f"algo-{i}" for i in range(1, instance_count + 1)]
    return {"current_host": "algo-1", "hosts": hosts, "network_interface_name": "eth0",
            "current_group_name": "homogeneousCluster", "current_instance_type": instance_type,
            "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                 "instance_type": instance_type, "hosts": hosts}]}


def cpus_for(instance_type: str) -> int:
    """vCPUs of an ``ml.<family>.<size>`` instance (large = 2, xlarge = 4, Nxlarge = 4N),
    capped at what this machine has."""
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
    return max(1, min(wanted, len(os.sched_getaffinity(0))))


def container_env(ws: Workspace, *, job_name: str, job_arn: str, region: str,
                  hyperparameters: dict[str, str], input_data_config: dict[str, Any],
                  resource: dict[str, Any], num_cpus: int,
                  user_env: dict[str, str]) -> dict[str, str]:
    """The environment the platform and the sagemaker-training toolkit give a job."""
    channels = sorted(input_data_config)
    decoded = {k: _json_or_raw(v) for k, v in hyperparameters.items()}
    env = {
        "TRAINING_JOB_NAME": job_name, "TRAINING_JOB_ARN": job_arn, "AWS_REGION": region,
        "OPENSAGE_ML_ROOT": str(ws.root),
        "SM_MODEL_DIR": str(ws.model_dir), "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps(decoded), "SM_HOSTS": json.dumps(resource["hosts"]),
        "SM_CURRENT_HOST": resource["current_host"],
        "SM_CURRENT_INSTANCE_TYPE": resource["current_instance_type"],
        "SM_NUM_CPUS": str(num_cpus), "SM_NUM_GPUS": "0",
        "SM_INPUT_DIR": str(ws.root / "input"), "SM_INPUT_CONFIG_DIR": str(ws.config_dir),
        "SM_INPUT_DATA_CONFIG": json.dumps(input_data_config),
        "SM_RESOURCE_CONFIG": json.dumps(resource),
        "SM_OUTPUT_DIR": str(ws.output_dir), "SM_OUTPUT_DATA_DIR": str(ws.output_data_dir),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(ws.output_dir / "intermediate"),
        "SM_NETWORK_INTERFACE_NAME": "eth0", "SM_LOG_LEVEL": "20",
        "SM_USER_ARGS": json.dumps([a for k, v in decoded.items()
                                    if not k.startswith("sagemaker_")
                                    for a in (f"--{k}", str(v))]),
        "OMP_NUM_THREADS": str(num_cpus),
        # Jobs share their cores with the server and other jobs: spinning OpenMP threads
        # made XGBoost up to 10x slower under load; sleeping ones cost ~5% when idle.
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    for name in channels:
        env[f"SM_CHANNEL_{name.upper()}"] = str(ws.channel_dir(name))
    for key, value in decoded.items():
        if not key.startswith("sagemaker_"):
            env[f"SM_HP_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    env.update(user_env)
    return env


def _json_or_raw(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
