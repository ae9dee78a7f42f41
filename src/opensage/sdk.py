"""Set-up for the SageMaker Python SDK v2, so that unchanged user code runs against opensage.

Two SDK habits bypass ``AWS_ENDPOINT_URL`` (see docs on the SDK call flow):

* choosing the default bucket asks STS at the hard-coded ``https://sts.<region>.amazonaws.com``
  for the account id;
* after ``fit()``/``deploy()`` it sends a telemetry GET to an AWS-hosted S3 URL.

The SDK's own config file switches both off: a ``DefaultS3Bucket`` means the SDK never needs
the account id, ``TelemetryOptOut`` stops the GET. ``write_sdk_config`` writes that file
(plus a default execution role, so ``role=`` may be left out). ``fast_polling`` is an opt-in
that shortens the SDK's waiter sleeps for local use.
"""

from __future__ import annotations

import importlib
import os
import sys
import time as _time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self

import yaml

USER_CONFIG_ENV = "SAGEMAKER_USER_CONFIG_OVERRIDE"  # read by sagemaker.config
DEFAULT_ROLE_NAME = "opensage"
# Where each kind of SageMaker resource takes its default role from (sagemaker.config_schema).
_ROLE_PATHS = (
    ("SageMaker", "TrainingJob", "RoleArn"),
    ("SageMaker", "ProcessingJob", "RoleArn"),
    ("SageMaker", "Model", "ExecutionRoleArn"),
    ("SageMaker", "CompilationJob", "RoleArn"),
    ("SageMaker", "EdgePackagingJob", "RoleArn"),
    ("SageMaker", "AutoMLJob", "RoleArn"),
    ("SageMaker", "AutoMLJobV2", "RoleArn"),
    ("SageMaker", "Pipeline", "RoleArn"),
    ("SageMaker", "FeatureGroup", "RoleArn"),
    ("SageMaker", "MonitoringSchedule", "MonitoringScheduleConfig", "MonitoringJobDefinition",
     "RoleArn"),
    ("SageMaker", "PythonSDK", "Modules", "RemoteFunction", "RoleArn"),
    ("SageMaker", "PythonSDK", "Modules", "NotebookJob", "RoleArn"),
    ("SageMaker", "PythonSDK", "Modules", "Serve", "RoleArn"),
)


def default_config_path() -> Path:
    """The user config file the SDK reads: ``$SAGEMAKER_USER_CONFIG_OVERRIDE`` or the
    platform's user config dir (``~/.config/sagemaker/config.yaml`` on Linux)."""
    override = os.environ.get(USER_CONFIG_ENV)
    if override:
        path = Path(override).expanduser()
        return path / "config.yaml" if path.is_dir() else path
    try:  # the SDK itself uses platformdirs (a dependency of sagemaker, not of opensage)
        from platformdirs import user_config_dir
        return Path(user_config_dir("sagemaker")) / "config.yaml"
    except ImportError:
        base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
        return Path(base) / "sagemaker" / "config.yaml"


def sdk_config(account_id: str, region: str, role_arn: str | None = None) -> dict[str, Any]:
    """The SDK config document opensage needs (schema ``sagemaker.config.config_schema``)."""
    role = role_arn or f"arn:aws:iam::{account_id}:role/{DEFAULT_ROLE_NAME}"
    doc: dict[str, Any] = {"SchemaVersion": "1.0"}
    for path in _ROLE_PATHS:
        _set(doc, path, role)
    modules = ("SageMaker", "PythonSDK", "Modules")
    _set(doc, (*modules, "Session", "DefaultS3Bucket"), f"sagemaker-{region}-{account_id}")
    _set(doc, (*modules, "TelemetryOptOut"), True)
    return doc


def write_sdk_config(endpoint_url: str, account_id: str, region: str,
                     path: str | Path | None = None, role_arn: str | None = None) -> Path:
    """Write (or merge into) the SDK's ``config.yaml`` and return its path.

    Keys already in the file that opensage does not set are kept. ``endpoint_url`` is only
    recorded in a comment: the SDK takes the endpoint from ``AWS_ENDPOINT_URL``.
    """
    target = Path(path).expanduser() if path else default_config_path()
    if target.is_dir():
        target = target / "config.yaml"
    existing: dict[str, Any] = {}
    if target.exists():
        loaded = yaml.safe_load(target.read_text()) or {}
        existing = loaded if isinstance(loaded, dict) else {}
    merged = _merge(existing, sdk_config(account_id, region, role_arn))
    target.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# SageMaker Python SDK defaults for opensage at {endpoint_url}\n"
              f"# (written by `opensage sdk-config`; export AWS_ENDPOINT_URL={endpoint_url})\n")
    target.write_text(header + yaml.safe_dump(merged, sort_keys=False))
    return target


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc.setdefault(key, {})
    doc[path[-1]] = value


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# -- fast polling ---------------------------------------------------------------------------

DEFAULT_MODULES = ("sagemaker.session",)  # every SDK v2 waiter and log tailer lives there


class _FastClock:
    """A stand-in for the ``time`` module: ``sleep`` is ``factor`` times shorter and
    ``time``/``monotonic`` run ``factor`` times faster from the moment it was made, so
    the SDK's "30 s since the last describe" arithmetic still holds in virtual seconds."""

    def __init__(self, real: ModuleType, factor: float) -> None:
        self._real = real
        self.factor: float = factor
        self._real_time: Callable[[], float] = real.time
        self._real_monotonic: Callable[[], float] = real.monotonic
        self._wall0: float = self._real_time()
        self._mono0: float = self._real_monotonic()

    def sleep(self, seconds: float) -> None:
        self._real.sleep(max(0.0, seconds) / self.factor)

    def time(self) -> float:
        return self._wall0 + (self._real_time() - self._wall0) * self.factor

    def monotonic(self) -> float:
        return self._mono0 + (self._real_monotonic() - self._mono0) * self.factor

    def __getattr__(self, name: str) -> Any:  # strftime, gmtime, ... stay real
        return getattr(self._real, name)


class FastPolling:
    """Shortens the SageMaker SDK's polling for local use. Opt-in; see ``fast_polling``."""

    def __init__(self, factor: float, modules: Iterable[str]) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self.factor, self.modules = float(factor), tuple(modules)
        self._saved: list[tuple[ModuleType, Any]] = []

    def enable(self) -> Self:
        if self._saved:
            return self
        for name in self.modules:
            module = sys.modules.get(name) or importlib.import_module(name)
            current = module.time
            self._saved.append((module, current))
            module.time = _FastClock(_time, self.factor)  # type: ignore[attr-defined]
        return self

    def disable(self) -> None:
        while self._saved:  # restore in reverse, so nested uses unwind correctly
            module, original = self._saved.pop()
            module.time = original  # type: ignore[attr-defined]

    def __enter__(self) -> Self:
        return self.enable()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.disable()


def fast_polling(factor: float = 10.0, modules: Iterable[str] = DEFAULT_MODULES) -> FastPolling:
    """Make the SDK's waits ``factor`` times shorter, from now on or for a block::

        opensage.sdk.fast_polling()            # a notebook: on until .disable()
        with opensage.sdk.fast_polling():      # a block: off again when it ends
            estimator.fit(inputs)              # first describe after 0.5 s instead of 5 s

    The SDK sleeps 5 s before its first ``DescribeTrainingJob``, tails logs every 10 s,
    re-describes at most every 30 s and waits 30 s before the first ``DescribeEndpoint``;
    against a local server those waits dominate. This replaces the ``time`` module seen by
    ``modules`` (default ``sagemaker.session``) with a clock that runs ``factor`` times
    faster. It is process-wide while enabled, and timeouts the SDK measures itself (e.g.
    ``logs_for_job(timeout=...)``) count virtual seconds. Results are the same without it.
    """
    return FastPolling(factor, modules).enable()
