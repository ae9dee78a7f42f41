"""Processing jobs as the runner runs them: what a host's ``/opt/ml`` holds and how it is run.

Each host (``algo-1..N``) has a directory laid out as a processing container's ``/opt/ml``,
which the launcher bind-mounts on ``/opt/ml`` in a mount namespace of the host's own
(``runner.toolkit.isolation.enter_private_ml``), so the user's absolute paths
(``/opt/ml/processing/input/code/preprocess.py``) are its own and concurrent jobs never see
each other's files:

- ``processing/<...>``: every ``ProcessingInputs[].S3Input`` at its ``LocalPath`` (objects
  hard-linked from the store, as training channels are: :func:`runner.channels.materialize`,
  ``ShardedByS3Key`` giving host ``i`` every ``N``-th object), and every output's
  ``LocalPath``, created empty;
- ``config/processingjobconfig.json`` (the job's request, with its ARN) and
  ``config/resourceconfig.json`` (``current_host``, ``hosts``);
- ``output/message``: what the job writes there becomes ``ExitMessage`` (first 1 KB).

Framework environments are uv environments without pip; FrameworkProcessor's ``runproc.sh``
runs ``pip uninstall --yes typing`` and ``python -m pip install -r requirements.txt``. A small
``pip`` stand-in (:func:`pip_shim`, first on ``PYTHONPATH`` and ``PATH`` after the
environment's own) installs with uv into a directory of the host's own, on ``PYTHONPATH``: the
shared environment is never changed. ``pip uninstall`` is skipped, other commands go to
``uv pip``.

Outputs go to their ``S3Uri`` file by file (same relative paths) at the end (``EndOfJob``) or
as they appear (``Continuous``), with the one directory-to-prefix sync checkpoints use.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from opensage.runner.channels import ChannelError, materialize
from opensage.runner.checkpoints import CheckpointSync
from opensage.runner.environments import Framework
from opensage.runner.object_access import ObjectAccess
from opensage.runner.toolkit.contract import resource_config

LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
CONTAINER_ML = PurePosixPath("/opt/ml")
PROCESSING_ROOT = CONTAINER_ML / "processing"
EXIT_MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class ProcessingSpec:
    name: str
    arn: str
    region: str
    # None: the user's own ``image``, run by the container engine, or an image that cannot
    # run here (``unsupported_reason`` says why)
    framework: Framework | None
    unsupported_reason: str | None
    entrypoint: list[str]  # ContainerEntrypoint
    arguments: list[str]  # ContainerArguments
    inputs: list[dict[str, Any]]  # ProcessingInputs, AWS's defaults filled in
    outputs: list[dict[str, Any]]  # ProcessingOutputConfig.Outputs
    instance_type: str
    instance_count: int
    max_runtime: int
    job_config: dict[str, Any]  # processingjobconfig.json
    environment: dict[str, str] = field(default_factory=dict)
    network_isolation: bool = False
    image: str | None = None
    role_arn: str = ""  # RoleArn: the role the job acts as (``runner.job_role``)


def host_path(root: Path, local_path: str) -> Path:
    """Where a container path under ``/opt/ml/processing/`` lies in a host's directory."""
    pure = PurePosixPath(local_path)
    try:
        relative = pure.relative_to(CONTAINER_ML)
    except ValueError:
        raise ChannelError(f"LocalPath {local_path} is not under {PROCESSING_ROOT}") from None
    if ".." in relative.parts or relative.parts[:1] != ("processing",):
        raise ChannelError(f"LocalPath {local_path} is not under {PROCESSING_ROOT}")
    return root.joinpath(*relative.parts)


def stage(objects: ObjectAccess, spec: ProcessingSpec, root: Path, *, host_index: int,
          host_count: int) -> None:
    """Lay out host ``host_index``'s ``/opt/ml``: inputs, output directories, config."""
    for directory in (root / "processing", root / "config", root / "output"):
        directory.mkdir(parents=True, exist_ok=True)
    for item in spec.inputs:
        source = item.get("S3Input")
        if source is None:
            continue  # refused at create: only S3Input runs here
        channel = {"ChannelName": item["InputName"], "DataSource": {"S3DataSource": {
            "S3Uri": source["S3Uri"], "S3DataType": source.get("S3DataType", "S3Prefix"),
            "S3DataDistributionType": source.get("S3DataDistributionType",
                                                 "FullyReplicated")}}}
        try:
            materialize(objects, channel, host_path(root, source["LocalPath"]),
                        host_index=host_index, host_count=host_count)
        except ChannelError as err:
            raise ChannelError(f"Input {item['InputName']}: {err}") from None
    for output in spec.outputs:
        host_path(root, output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    host = f"algo-{host_index + 1}"
    (root / "config" / "processingjobconfig.json").write_text(json.dumps(spec.job_config,
                                                                         indent=1))
    (root / "config" / "resourceconfig.json").write_text(json.dumps(
        resource_config(spec.instance_type, spec.instance_count, host), indent=1))


def output_syncs(objects: ObjectAccess, spec: ProcessingSpec, root: Path, *,
                 continuous: bool) -> list[CheckpointSync]:
    """A sync of each output's LocalPath to its S3Uri (``continuous``: only the outputs
    whose S3UploadMode is Continuous)."""
    return [CheckpointSync(objects, output["S3Output"]["S3Uri"],
                           host_path(root, output["S3Output"]["LocalPath"]))
            for output in spec.outputs
            if not continuous or output["S3Output"].get("S3UploadMode") == "Continuous"]


def command(spec: ProcessingSpec) -> list[str]:
    """What the container runs: ``ContainerEntrypoint`` + ``ContainerArguments``."""
    return [*spec.entrypoint, *spec.arguments]


_PIP_MAIN = """\
import os, subprocess, sys
args = sys.argv[1:]
if args[:1] == ["uninstall"]:
    print("opensage: skipping pip uninstall: the framework environment is shared", flush=True)
    sys.exit(0)
uv = [os.environ["OPENSAGE_UV_PYTHON"], "-m", "uv", "pip"]
if args[:1] == ["install"]:
    rest = [a for a in args[1:] if a not in ("--user", "--no-cache-dir")]
    command = [*uv, "install", "--python", sys.executable, "--target",
               os.environ["OPENSAGE_PIP_TARGET"], *rest]
else:
    command = [*uv, *args, "--python", sys.executable]
sys.exit(subprocess.call(command))
"""


def pip_shim(root: Path) -> Path:
    """The ``pip`` stand-in under ``root`` (written once): ``lib/pip`` for ``python -m pip``,
    ``bin/pip`` for ``pip``."""
    package, script = root / "lib" / "pip", root / "bin" / "pip"
    if not script.exists():
        package.mkdir(parents=True, exist_ok=True)
        script.parent.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "__main__.py").write_text(_PIP_MAIN)
        partial = script.with_suffix(f".{os.getpid()}")
        partial.write_text('#!/bin/sh\nexec python -m pip "$@"\n')
        partial.chmod(0o755)
        partial.replace(script)
    return root


def environment(spec: ProcessingSpec, python: Path, base: dict[str, str], *,
                shim: Path, pip_target: Path) -> dict[str, str]:
    """The job's environment: the framework environment's interpreter and tools first on
    PATH (``python3 script.py`` runs there), the ``pip`` stand-in next, what it installs on
    PYTHONPATH, the job's ``Environment`` on top."""
    env = dict(base)
    for key in ("PYTHONHOME", "PYTHONPATH", "OPENSAGE_ML_ROOT"):
        env.pop(key, None)
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    env["PATH"] = os.pathsep.join([str(python.parent), str(shim / "bin"),
                                   env.get("PATH", os.defpath)])
    env["PYTHONPATH"] = os.pathsep.join([str(shim / "lib"), str(pip_target)])
    env.update(OPENSAGE_UV_PYTHON=sys.executable, OPENSAGE_PIP_TARGET=str(pip_target))
    env.update(AWS_REGION=spec.region, PYTHONUNBUFFERED="1")
    env.update(spec.environment)
    return env


def exit_message(root: Path) -> str | None:
    """``/opt/ml/output/message``'s first 1 KB, as ExitMessage reports it."""
    try:
        with open(root / "output" / "message", "rb") as source:
            text = source.read(EXIT_MESSAGE_LIMIT * 4).decode("utf-8", "replace")
    except OSError:
        return None
    return text[:EXIT_MESSAGE_LIMIT] or None
