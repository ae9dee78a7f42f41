"""The SageMaker training container contract, as seen from inside a job.

The runner lays out a job directory like ``/opt/ml`` (``input/config/*.json``,
``input/data/<channel>/``, ``model/``, ``output/``, ``checkpoints/``) and starts the algorithm
with ``OPENSAGE_ML_ROOT`` pointing at it. :class:`TrainingEnv` reads that layout;
:func:`run_main` runs a training function under the contract's failure rules: exit 0 on
success, otherwise write ``output/failure`` (it becomes the job's FailureReason) and exit 1.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn, Protocol

from opensage.algorithms.errors import SpecError
from opensage.data import DataError

ROOT_ENV = "OPENSAGE_ML_ROOT"
DEFAULT_ROOT = "/opt/ml"
FAILURE_REASON_LIMIT = 1024  # FailureReason's maximum length in the API


class UserError(Exception):
    """A problem with the job's own input (data, hyperparameters, channels): the job fails with
    this message as its reason, prefixed ``ClientError:``, without a traceback."""


class PeerFailure(Exception):
    """Another host of the job ended (it failed), breaking the hosts' collective: this host's
    failure only follows from it, so the runner reports the other host's reason."""


def is_peer_failure(reason: str | None) -> bool:
    """Whether a host's FailureReason is a :class:`PeerFailure` (another host's was first)."""
    return bool(reason) and f": {PeerFailure.__name__}:" in str(reason)[:40]


# Errors that are the job's input's fault, not the algorithm's.
USER_ERRORS: tuple[type[Exception], ...] = (UserError, SpecError, DataError)


class MlLayout:
    """The paths of SageMaker's ``/opt/ml`` layout under ``root``: the one definition shared
    by the job (``TrainingEnv``) and the runner that lays it out."""

    root: Path

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def config_dir(self) -> Path:
        return self.input_dir / "config"

    @property
    def data_dir(self) -> Path:
        return self.input_dir / "data"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def failure_path(self) -> Path:
        return self.output_dir / "failure"

    def channel_dir(self, name: str) -> Path:
        """``input/data/<name>``: the channel's files in File mode."""
        return self.data_dir / name

    def channel_pipe(self, name: str, epoch: int = 0) -> Path:
        """``input/data/<name>_<epoch>``: the channel's FIFO for one pass in Pipe mode."""
        return self.data_dir / f"{name}_{epoch}"

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def default_checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"


class TrainingEnv(MlLayout):
    """One training job's ``/opt/ml`` directory, read lazily.

    ``TrainingEnv.from_environ()`` takes the root from ``OPENSAGE_ML_ROOT`` (then the
    sagemaker-training toolkit's ``SAGEMAKER_BASE_DIR``), default ``/opt/ml``.
    """

    def __init__(self, root: str | os.PathLike[str],
                 environ: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        self.environ: Mapping[str, str] = os.environ if environ is None else environ

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> TrainingEnv:
        env = os.environ if environ is None else environ
        root = env.get(ROOT_ENV) or env.get("SAGEMAKER_BASE_DIR") or DEFAULT_ROOT
        return cls(root, env)

    # -- config files
    def _json(self, filename: str, default: Any) -> Any:
        path = self.config_dir / filename
        if not path.exists():
            return default
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise RuntimeError(f"cannot read {path}: {e}") from e

    @cached_property
    def hyperparameters(self) -> dict[str, str]:
        """``hyperparameters.json``: name -> string value (non-strings are stringified)."""
        raw = self._json("hyperparameters.json", {})
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}

    @cached_property
    def input_data_config(self) -> dict[str, dict[str, Any]]:
        """``inputdataconfig.json``: channel name -> {ContentType, TrainingInputMode, ...}."""
        return dict(self._json("inputdataconfig.json", {}))

    @cached_property
    def resource_config(self) -> dict[str, Any]:
        """``resourceconfig.json`` (a single ``algo-1`` host when absent)."""
        config = dict(self._json("resourceconfig.json", {}))
        config.setdefault("current_host", "algo-1")
        config.setdefault("hosts", [config["current_host"]])
        return config

    @cached_property
    def checkpoint_config(self) -> dict[str, Any]:
        """``checkpointconfig.json`` ({LocalPath, S3Uri}), empty when checkpoints are off."""
        return dict(self._json("checkpointconfig.json", {}))

    @property
    def checkpoint_dir(self) -> Path | None:
        """Where to save and find checkpoints, or None when the job has none.

        ``<root>/checkpoints`` when the runner created it (the directory it syncs), else
        ``LocalPath`` from checkpointconfig.json (a path under ``/opt/ml`` is moved under this
        job's root), else None.
        """
        default = self.root / "checkpoints"
        if default.is_dir():
            return default
        local = self.checkpoint_config.get("LocalPath")
        if local:
            path = Path(local)
            if path.is_absolute() and path.parts[:3] == ("/", "opt", "ml"):
                path = self.root.joinpath(*path.parts[3:])
            elif not path.is_absolute():
                path = self.root / path
            return path
        if self.checkpoint_config:
            return default
        return None

    # -- facts
    @property
    def channels(self) -> list[str]:
        return sorted(self.input_data_config)

    def content_type(self, channel: str) -> str | None:
        content_type: str | None = self.input_data_config.get(channel, {}).get("ContentType")
        return content_type

    def input_mode(self, channel: str) -> str:
        mode: str = self.input_data_config.get(channel, {}).get("TrainingInputMode", "File")
        return mode

    def channel_data(self, name: str) -> Path:
        """Where the channel's data is to be read: ``input/data/<name>`` in File and FastFile
        mode; in Pipe mode its first epoch (``<name>_0``) drained into a file under the job
        directory, so every reader can treat it as a file (the algorithms then iterate over
        epochs in memory)."""
        if self.input_mode(name) != "Pipe":
            return self.channel_dir(name)
        import shutil
        import tempfile

        target = Path(tempfile.mkdtemp(prefix=f"pipe-{name}-", dir=self.root)) / "data"
        with open(self.channel_pipe(name, 0), "rb") as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        return target

    @property
    def current_host(self) -> str:
        return str(self.resource_config["current_host"])

    @property
    def hosts(self) -> list[str]:
        return list(self.resource_config["hosts"])

    @property
    def num_cpus(self) -> int:
        """``SM_NUM_CPUS`` when the runner set it, else this machine's CPU count."""
        value = self.environ.get("SM_NUM_CPUS")
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                pass
        return os.cpu_count() or 1

    @property
    def job_name(self) -> str | None:
        return self.environ.get("TRAINING_JOB_NAME")

    # -- outputs
    def write_failure(self, message: str) -> None:
        """Write ``output/failure``: the job's FailureReason (the API keeps 1024 characters,
        so the reason comes first)."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        text = message if len(message) <= FAILURE_REASON_LIMIT else (
            message[: FAILURE_REASON_LIMIT - 3] + "...")
        self.failure_path.write_text(text)


def failure_reason(error: BaseException) -> str:
    """The FailureReason for an exception: ``ClientError: <reason>`` for the job's own input
    problems, ``AlgorithmError: <Type>: <message>`` for anything unexpected."""
    if isinstance(error, USER_ERRORS):
        return f"ClientError: {_one_line(str(error))}"
    detail = _one_line(str(error))
    name = type(error).__name__
    return f"AlgorithmError: {name}: {detail}" if detail else f"AlgorithmError: {name}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run_main(train_fn: Callable[[TrainingEnv], None], *,
             env: TrainingEnv | None = None) -> NoReturn:
    """Run ``train_fn(env)`` as a training job's main program and exit.

    Success exits 0. A :class:`UserError` or spec error writes ``ClientError: <reason>`` to
    ``output/failure`` and stderr; any other exception writes ``AlgorithmError: <type>:
    <message>`` plus a traceback on stderr. Both exit 1.
    """
    env = env or TrainingEnv.from_environ()
    try:
        train_fn(env)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - this is the job's last line of defence
        reason = failure_reason(error)
        if not isinstance(error, USER_ERRORS):
            traceback.print_exc(file=sys.stderr)
        print(reason, file=sys.stderr, flush=True)
        try:
            env.write_failure(reason)
        except OSError as e:
            print(f"cannot write {env.failure_path}: {e}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        sys.exit(1)
    sys.stdout.flush()
    sys.exit(0)


class EntryPoint(Protocol):
    """A container command's main function: ``argv`` defaults to ``sys.argv[1:]``."""

    def __call__(self, argv: list[str] | None = None) -> None: ...


def main_for(package: str) -> EntryPoint:
    """The ``python -m <package> train`` entry point of a built-in: runs
    ``<package>.train.train(env)`` under :func:`run_main`; a missing optional dependency is
    reported as the extra to install."""

    def train(env: TrainingEnv) -> None:
        import importlib

        try:
            module = importlib.import_module(package + ".train")
        except ImportError as e:
            raise RuntimeError(f"the {package.rsplit('.', 1)[-1]} algorithm cannot start ({e});"
                               f" install opensage with the 'algorithms' extra: "
                               f"pip install 'opensage[algorithms]'") from e
        module.train(env)

    def main(argv: list[str] | None = None) -> None:
        args = sys.argv[1:] if argv is None else argv
        if args != ["train"]:
            print(f"usage: python -m {package} train", file=sys.stderr)
            sys.exit(2)
        run_main(train)

    return main
