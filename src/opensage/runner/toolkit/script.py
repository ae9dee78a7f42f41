"""Script mode: the user's own training code, run as the framework containers' toolkit runs it.

At CreateTrainingJob :func:`read_request` reads what the SDK sends (``sagemaker_program``,
``sagemaker_submit_directory``, the distribution flags), JSON-encoded; at run time
:func:`unpack_code` places ``sourcedir.tar.gz`` in the code directory (safe extraction only)
and :func:`command` gives each host's command line, which runs with the code directory as its
working directory:

- ``*.sh``: ``/bin/sh <program> <args>``;
- a package (``setup.py`` in the code directory): ``<python> -m <module> <args>``; it is not
  ``pip install``-ed: its modules import from the code directory, on ``PYTHONPATH``;
- otherwise ``<python> <program> <args>``;
- with ``torch_distributed`` or PyTorch DDP: ``torchrun --nnodes N --nproc_per_node 1
  --node_rank R --master_addr A --master_port P <program> <args>`` on every host (A: 127.0.0.1
  locally, algo-1's node on the Ray executor, which also sets ``MASTER_ADDR``/``MASTER_PORT``).

A failing script reads as the toolkit's ``ExecuteUserScriptError`` (:func:`failure_reason`).

A framework's training module may change the job before the script runs
(:meth:`ScriptMode.toolkit_hyperparameters`, :meth:`ScriptMode.toolkit_environment`): the
TensorFlow toolkit gives a tuning job's child its own S3 ``model_dir`` (the SDK's
``--model_dir`` hyperparameter, passed to the script as it is otherwise) and sets
``S3_REGION`` and ``TF_CPP_MIN_LOG_LEVEL``.
"""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from opensage.data.archives import ArchiveError, ArchiveLimits, extract_tar
from opensage.errors import AwsError, ValidationException
from opensage.runner.channels import split_s3_uri
from opensage.runner.environments import Framework
from opensage.runner.object_access import ObjectAccess
from opensage.runner.toolkit.contract import decode

PROGRAM = "sagemaker_program"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
TORCHRUN = "torchrun"
# Flags that ask for torchrun: torch_distributed, HuggingFace's pytorchddp, and the SDK's
# PyTorch estimator's rewrite of pytorchddp into smdistributed data parallel (no smddp here).
_TORCHRUN_FLAGS = ("sagemaker_torch_distributed_enabled", "sagemaker_pytorch_ddp_enabled",
                   "sagemaker_distributed_dataparallel_enabled")
_UNSUPPORTED_FLAGS = {"sagemaker_mpi_enabled": "MPI (distribution={'mpi': ...})",
                      "sagemaker_parameter_server_enabled": "parameter servers",
                      "sagemaker_multi_worker_mirrored_strategy_enabled":
                          "TensorFlow's MultiWorkerMirroredStrategy"}
# What SAGEMAKER_TRAINING_MODULE names in each framework's image (SM_FRAMEWORK_MODULE).
FRAMEWORK_MODULES = {"sklearn": "sagemaker_sklearn_container.training:main",
                     "pytorch": "sagemaker_pytorch_container.training:main",
                     "tensorflow": "sagemaker_tensorflow_container.training:main",
                     "xgboost": "sagemaker_xgboost_container.training:main",
                     "huggingface": "sagemaker_huggingface_pytorch_container.training:main"}
CONTAINER_ROOT = PurePosixPath("/opt/ml")
TUNING_OBJECTIVE = "_tuning_objective_metric"  # the tuner's mark on its children


class ScriptError(Exception):
    """The user's code cannot be set up; the message is the job's FailureReason."""


@dataclass(frozen=True)
class ScriptRequest:
    """What a script-mode job asks for, read from its hyperparameters at CreateTrainingJob."""

    program: str
    submit_directory: str
    launcher: str | None  # "torchrun" or None (one process per host)

    def state(self) -> dict[str, Any]:
        return {"program": self.program, "submit_directory": self.submit_directory,
                "launcher": self.launcher}


@dataclass(frozen=True)
class ScriptMode:
    """A script-mode job as the runner runs it: its framework environment and its code."""

    framework: Framework
    request: ScriptRequest

    @property
    def framework_module(self) -> str:
        return FRAMEWORK_MODULES.get(self.framework.name, "")

    def toolkit_hyperparameters(self, hyperparameters: dict[str, str],
                                job_name: str) -> dict[str, str]:
        """The hyperparameters the script sees (``SM_HPS``, its arguments): the TensorFlow
        toolkit appends ``/<job>/model`` to a tuning child's ``model_dir`` unless it is under
        ``/opt/ml``, so that the children do not write over each other."""
        model_dir = decode(hyperparameters.get("model_dir", "null"))
        if (self.framework.name != "tensorflow" or TUNING_OBJECTIVE not in hyperparameters
                or not isinstance(model_dir, str) or model_dir.startswith(str(CONTAINER_ROOT))):
            return hyperparameters
        return {**hyperparameters, "model_dir": json.dumps(f"{model_dir}/{job_name}/model")}

    def toolkit_environment(self, region: str) -> dict[str, str]:
        """Variables the framework's training module sets over the job's own: TensorFlow's
        ``s3_utils.configure`` (the S3 region of ``model_dir``, TensorFlow's log level)."""
        if self.framework.name != "tensorflow":
            return {}
        return {"S3_REGION": region, "TF_CPP_MIN_LOG_LEVEL": "1"}


def is_script_mode(hyperparameters: dict[str, str]) -> bool:
    return PROGRAM in hyperparameters


def read_request(hyperparameters: dict[str, str]) -> ScriptRequest:
    """The script-mode request in the hyperparameters; ValidationException naming what is
    missing or not supported."""
    missing = [k for k in (PROGRAM, SUBMIT_DIRECTORY) if not hyperparameters.get(k)]
    if missing:
        raise ValidationException(
            f"A framework image runs the training script named by the hyperparameters "
            f"{PROGRAM} and {SUBMIT_DIRECTORY} (the SDK's entry_point and source_dir); "
            f"missing: {', '.join(missing)}.")
    program, submit = (decode(hyperparameters[k]) for k in (PROGRAM, SUBMIT_DIRECTORY))
    if not isinstance(program, str) or not program or program.startswith("/") or (
            ".." in PurePosixPath(program).parts):
        raise ValidationException(
            f"Hyperparameter {PROGRAM} must name a file relative to the source directory; "
            f"got {hyperparameters[PROGRAM]!r}.")
    if not isinstance(submit, str) or not (
            submit.startswith("s3://") or _container_path(submit) is not None):
        raise ValidationException(
            f"Hyperparameter {SUBMIT_DIRECTORY} must be an s3:// URI of a sourcedir.tar.gz "
            f"(or a path under /opt/ml/input/data/); got {hyperparameters[SUBMIT_DIRECTORY]!r}.")
    for flag, what in _UNSUPPORTED_FLAGS.items():
        if decode(hyperparameters.get(flag, "false")) is True:
            raise ValidationException(
                f"Distributed training with {what} ({flag}) is not supported by opensage; "
                "use distribution={'torch_distributed': {'enabled': True}}.")
    torchrun = any(decode(hyperparameters.get(f, "false")) is True for f in _TORCHRUN_FLAGS)
    return ScriptRequest(program, submit, TORCHRUN if torchrun else None)


def request_from_state(state: dict[str, Any]) -> ScriptRequest:
    return ScriptRequest(state["program"], state["submit_directory"], state.get("launcher"))


def _container_path(path: str) -> PurePosixPath | None:
    """``/opt/ml/input/data/<channel>/...`` (the SDK's code channel under network isolation)
    as a path relative to the job's root; None for anything else."""
    pure = PurePosixPath(path)
    try:
        relative = pure.relative_to(CONTAINER_ROOT / "input" / "data")
    except ValueError:
        return None
    if ".." in relative.parts or not relative.parts:
        return None
    return PurePosixPath("input", "data", *relative.parts)


def unpack_code(objects: ObjectAccess, submit_directory: str, ml_root: Path, code_dir: Path,
                limits: ArchiveLimits) -> None:
    """``sourcedir.tar.gz`` (from S3, or from a channel under network isolation) unpacked
    into ``code_dir``: absolute names, ``..``, links out and special files are refused."""
    where = f"the source directory {submit_directory}"
    try:
        relative = _container_path(submit_directory)
        if relative is not None:
            local = ml_root.joinpath(*relative.parts)
            if local.is_dir():
                shutil.copytree(local, code_dir, symlinks=True, dirs_exist_ok=True)
            else:
                extract_tar(local, code_dir, limits)
            return
        bucket, key = split_s3_uri(submit_directory)
        _, stream = objects.open_object(bucket, key)
        with stream:
            extract_tar(stream, code_dir, limits)
    except ArchiveError as err:
        raise ScriptError(f"ClientError: Could not unpack {where}: {err}") from None
    except AwsError as err:
        raise ScriptError(f"ClientError: Could not download {where}: {err.message}") from None
    except OSError as err:
        raise ScriptError(f"ClientError: Could not read {where}: {err}") from None


def copy_code(code_dir: Path, other: Path) -> None:
    """Another host's copy of the unpacked code (links copied as links)."""
    shutil.copytree(code_dir, other, symlinks=True, dirs_exist_ok=True)


def command(script: ScriptMode, python: Path, code_dir: Path, args: Sequence[str], *,
            hosts: int, host_index: int, master_port: int,
            master_addr: str = "127.0.0.1") -> list[str]:
    """The host's command line, run with ``code_dir`` as its working directory; torchrun's
    rendezvous is at ``master_addr`` (algo-1's address: another node's on Ray)."""
    program = script.request.program
    if not (code_dir / program).is_file():
        raise ScriptError(f"ClientError: The entry point {program} is not in the source "
                          f"directory {script.request.submit_directory}")
    if script.request.launcher == TORCHRUN:
        if (code_dir / "setup.py").exists():
            raise ScriptError("ClientError: torch_distributed runs a script, not a Python "
                              "package: remove setup.py from the source directory")
        return [str(python.parent / "torchrun"), "--nnodes", str(hosts), "--nproc_per_node",
                "1", "--node_rank", str(host_index), "--master_addr", master_addr,
                "--master_port", str(master_port), program, *args]
    if program.endswith(".sh"):
        return ["/bin/sh", program, *args]
    if (code_dir / "setup.py").exists():
        module = program.removesuffix(".py").replace("/", ".")
        return [str(python), "-m", module, *args]
    return [str(python), program, *args]


def failure_reason(exit_code: int, cmd: Sequence[str], output: Sequence[str]) -> str:
    """The toolkit's ``ExecuteUserScriptError``, as FailureReason shows it on AWS, with the
    last line of the script's traceback as the message."""
    code = 128 - exit_code if exit_code < 0 else exit_code
    extra = ('\nExtraInfo "OutOfMemory: Process killed by SIGKILL (signal 9)"'
             if code == 137 else "")
    return (f'AlgorithmError: ExecuteUserScriptError:\nExitCode {code}\nErrorMessage '
            f'"{error_message(output)}"{extra}\nCommand "{shlex.join(cmd)}"')


def error_message(output: Sequence[str]) -> str:
    """The exception line that ends the last traceback in the output (``ValueError: bad
    input``), else the last line."""
    lines = [line for line in output if line.strip()]
    start = max((i for i, line in enumerate(lines)
                 if line.startswith("Traceback (most recent call last)")), default=None)
    if start is not None:
        after = [line for line in lines[start + 1:] if not line[:1].isspace()
                 and not line.startswith("#011")]
        if after:
            return after[0][:400]
    return lines[-1][:400] if lines else ""
