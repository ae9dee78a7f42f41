"""The ``/opt/ml`` + ``SM_*`` contract a job sees, as the sagemaker-training toolkit makes it.

The rules follow the toolkit's ``environment.py`` and ``mapping.py``: hyperparameter values
are JSON-decoded (the raw string when that fails); the ``sagemaker_*`` keys (and
``_tuning_objective_metric``) are the platform's and never reach the script's arguments,
``SM_HPS`` or ``SM_HP_*``; arguments are ``--key value`` (``-k`` for a one-letter key) in key
order, with ``str()`` of the value (``True``, ``[64, 32]``) and dicts as ``a=1,b=x``;
environment values are strings as they are, anything else compact JSON with sorted keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opensage.algorithms.contract import MlLayout

# Keys the toolkit keeps out of the user's hyperparameters (params.SAGEMAKER_HYPERPARAMETERS),
# besides every key starting with "sagemaker_".
PLATFORM_KEYS = frozenset({"_tuning_objective_metric", "default_user_module_name"})
# Of the sagemaker_* keys, those that are not SM_FRAMEWORK_PARAMS.
_STANDARD_KEYS = frozenset({
    "sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region", "sagemaker_container_log_level", "sagemaker_job_name",
    "sagemaker_s3_output", "default_user_module_name", "_tuning_objective_metric"})


@dataclass(frozen=True)
class UserEntry:
    """Script mode's part of the environment (``None`` for a built-in)."""

    module_dir: str  # sagemaker_submit_directory as sent (the toolkit reports it so)
    program: str  # sagemaker_program, e.g. "train.py" or "src/train.py"
    framework_module: str  # what SAGEMAKER_TRAINING_MODULE names in the framework image


def decode(value: str) -> Any:
    """A hyperparameter's value as the toolkit reads it: JSON, else the raw string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def is_platform_key(key: str) -> bool:
    return key.startswith("sagemaker_") or key in PLATFORM_KEYS


def user_hyperparameters(hyperparameters: dict[str, str]) -> dict[str, Any]:
    """The user's own hyperparameters, decoded: what the script gets as arguments."""
    return {k: decode(v) for k, v in hyperparameters.items() if not is_platform_key(k)}


def framework_parameters(hyperparameters: dict[str, str]) -> dict[str, Any]:
    """``SM_FRAMEWORK_PARAMS``: the sagemaker_* keys beyond the standard ones (distribution)."""
    return {k: decode(v) for k, v in hyperparameters.items()
            if is_platform_key(k) and k not in _STANDARD_KEYS}


def to_cmd_args(values: dict[str, Any]) -> list[str]:
    """The toolkit's ``mapping.to_cmd_args``."""
    args: list[str] = []
    for key in sorted(values):
        value = values[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def env_value(value: Any) -> str:
    """The toolkit's ``mapping.to_env_vars`` value rendering."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def aws_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """What an AWS SDK (boto3) in a job's script or a model's handlers needs to call this
    server, as a container on AWS gets its role's credentials and region: the endpoint, the
    region, and credentials opensage accepts. The job's or model's ``Environment`` wins."""
    return {"AWS_ENDPOINT_URL": endpoint_url, "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region, "AWS_ACCESS_KEY_ID": "opensage",
            "AWS_SECRET_ACCESS_KEY": "opensage"}


def without_aws(environ: Mapping[str, str]) -> dict[str, str]:
    """The server's environment less its own ``AWS_*`` configuration: its credentials,
    profile and endpoints are not the job's (a per-service ``AWS_ENDPOINT_URL_S3`` would
    send the job's S3 calls elsewhere)."""
    return {k: v for k, v in environ.items() if not k.startswith("AWS_")}


def resource_config(instance_type: str, instance_count: int,
                    current_host: str = "algo-1") -> dict[str, Any]:
    """``resourceconfig.json`` of one host of the job."""
    hosts = [f"algo-{i}" for i in range(1, instance_count + 1)]
    return {"current_host": current_host, "hosts": hosts, "network_interface_name": "eth0",
            "current_group_name": "homogeneousCluster", "current_instance_type": instance_type,
            "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                 "instance_type": instance_type, "hosts": hosts}]}


def container_env(ws: MlLayout, *, job_name: str, job_arn: str, region: str,
                  hyperparameters: dict[str, str], input_data_config: dict[str, Any],
                  resource: dict[str, Any], num_cpus: int, user_env: dict[str, str],
                  entry: UserEntry | None = None,
                  aws: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the platform and the sagemaker-training toolkit give a job's process:
    ``TRAINING_JOB_NAME``/``_ARN``, ``AWS_REGION``, ``aws`` (:func:`aws_environment`), every
    ``SM_*`` variable (with ``SM_TRAINING_ENV``, the toolkit's whole environment as JSON),
    then the job's ``Environment``, which wins."""
    channels = sorted(input_data_config)
    hps = user_hyperparameters(hyperparameters)
    args = to_cmd_args(hps)
    log_level = decode(hyperparameters.get("sagemaker_container_log_level", "20"))
    program = entry.program if entry else ""
    module_name = program.removesuffix(".py")
    hosts = list(resource["hosts"])
    training_env: dict[str, Any] = {
        "additional_framework_parameters": framework_parameters(hyperparameters),
        "channel_input_dirs": {c: str(ws.channel_dir(c)) for c in channels},
        "current_host": resource["current_host"],
        "current_instance_group": resource.get("current_group_name", "homogeneousCluster"),
        "current_instance_group_hosts": hosts,
        "current_instance_type": resource["current_instance_type"],
        "distribution_hosts": hosts, "distribution_instance_groups": [],
        "framework_module": entry.framework_module if entry else "",
        "hosts": hosts, "hyperparameters": hps,
        "input_config_dir": str(ws.config_dir), "input_data_config": input_data_config,
        "input_dir": str(ws.input_dir),
        "instance_groups": [g["instance_group_name"] for g in resource["instance_groups"]],
        "instance_groups_dict": {g["instance_group_name"]: g
                                 for g in resource["instance_groups"]},
        "is_hetero": False, "is_master": resource["current_host"] == hosts[0],
        "is_modelparallel_enabled": None, "is_smddpmprun_installed": False,
        "is_smddprun_installed": False,
        "job_name": job_name, "log_level": log_level, "master_hostname": hosts[0],
        "model_dir": str(ws.model_dir), "module_dir": entry.module_dir if entry else "",
        "module_name": module_name, "network_interface_name": "eth0",
        "num_cpus": num_cpus, "num_gpus": 0, "num_neurons": 0,
        "output_data_dir": str(ws.output_data_dir), "output_dir": str(ws.output_dir),
        "output_intermediate_dir": str(ws.output_dir / "intermediate"),
        "resource_config": resource, "user_entry_point": program,
    }
    sm = {
        "hosts": hosts, "network_interface_name": "eth0", "hps": hps,
        "user_entry_point": program, "framework_params": training_env[
            "additional_framework_parameters"],
        "resource_config": resource, "input_data_config": input_data_config,
        "output_data_dir": training_env["output_data_dir"], "channels": channels,
        "current_host": resource["current_host"],
        "current_instance_type": resource["current_instance_type"],
        "current_instance_group": training_env["current_instance_group"],
        "current_instance_group_hosts": hosts,
        "instance_groups": training_env["instance_groups"],
        "instance_groups_dict": training_env["instance_groups_dict"], "is_hetero": False,
        "module_name": module_name, "log_level": log_level,
        "framework_module": training_env["framework_module"],
        "input_dir": training_env["input_dir"],
        "input_config_dir": training_env["input_config_dir"],
        "output_dir": training_env["output_dir"], "num_cpus": num_cpus, "num_gpus": 0,
        "num_neurons": 0, "model_dir": training_env["model_dir"],
        "module_dir": training_env["module_dir"], "training_env": training_env,
        "user_args": args, "output_intermediate_dir": training_env["output_intermediate_dir"],
    }
    env = {**(aws or {}), **{f"SM_{key.upper()}": env_value(value) for key, value in sm.items()}}
    env.update({
        "TRAINING_JOB_NAME": job_name, "TRAINING_JOB_ARN": job_arn, "AWS_REGION": region,
        "SAGEMAKER_JOB_NAME": job_name, "CURRENT_HOST": resource["current_host"],
        "SAGEMAKER_REGION": region,
        "OPENSAGE_ML_ROOT": str(ws.root),
        "OMP_NUM_THREADS": str(num_cpus),
        # Jobs share their cores with the server and other jobs: spinning OpenMP threads
        # made XGBoost up to 10x slower under load; sleeping ones cost ~5% when idle.
        "OMP_WAIT_POLICY": "PASSIVE",
    })
    for name in channels:
        env[f"SM_CHANNEL_{name.upper()}"] = str(ws.channel_dir(name))
    for key, value in hps.items():
        env[f"SM_HP_{key.upper()}"] = env_value(value)
    env.update(user_env)
    return env
