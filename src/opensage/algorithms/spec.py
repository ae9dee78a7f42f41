"""Declarative specs for built-in algorithms: everything a built-in declares, in one object.

A built-in declares its hyperparameters once, as constraint objects (``algorithms/params.py``),
and wraps them, with its channels (``algorithms/channels.py``) and metrics, in an
:class:`AlgorithmSpec`. That one object answers CreateTrainingJob's validation
(``spec.validate(hps, channels)`` before anything runs), gives the job its typed values (the
same call, inside the job), and describes the algorithm (``spec.training_specification()``, the
shape of DescribeAlgorithm's TrainingSpecification). ``validate`` gathers every problem into
one :class:`SpecValidationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from opensage.algorithms.channels import ChannelSpec, channel_settings
from opensage.algorithms.errors import (
    ChannelError,
    HyperparameterError,
    SpecError,
    SpecValidationError,
)
from opensage.algorithms.params import Param

__all__ = ["AlgorithmSpec", "Check", "MetricDefinition"]

Direction = Literal["Maximize", "Minimize"]


@dataclass(frozen=True)
class MetricDefinition:
    """A metric the algorithm logs, and the regex that finds it in the log."""

    name: str
    regex: str
    direction: Direction | None = None

    def as_api(self) -> dict[str, str]:
        """The ``MetricDefinition`` shape of the SageMaker API."""
        return {"Name": self.name, "Regex": self.regex}


# A cross-parameter check: (typed hyperparameters, channel name -> data format) -> problems.
Check = Callable[[Mapping[str, Any], Mapping[str, str]], Iterable[str]]


@dataclass(frozen=True)
class AlgorithmSpec:
    """Everything a built-in declares: hyperparameters, channels, metrics, input modes."""

    name: str
    hyperparameters: Mapping[str, Param]
    channels: Mapping[str, ChannelSpec]
    metrics: Sequence[MetricDefinition] = ()
    input_modes: tuple[str, ...] = ("File",)
    aliases: Mapping[str, str] = field(default_factory=dict)
    checks: Sequence[Check] = ()
    supports_distributed_training: bool = False
    # Its hosts train one model together (XGBoost's collective): InstanceCount hosts run,
    # meeting at OPENSAGE_COLLECTIVE_ADDRESS; the others run one host.
    trains_across_hosts: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hyperparameters", MappingProxyType(dict(self.hyperparameters)))
        object.__setattr__(self, "channels", MappingProxyType(dict(self.channels)))
        object.__setattr__(self, "aliases", MappingProxyType(dict(self.aliases)))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "checks", tuple(self.checks))
        unknown = set(self.aliases.values()) - set(self.hyperparameters)
        if unknown:
            raise ValueError(f"aliases point at undeclared hyperparameters: {sorted(unknown)}")

    # -- validation
    def validate(self, hyperparameters: Mapping[str, str],
                 channels: Mapping[str, Any] | None = None, *,
                 fill_defaults: bool = False) -> dict[str, Any]:
        """Check a training request and return its typed hyperparameters.

        ``hyperparameters`` is the API's string map. ``channels`` maps channel name to its
        ContentType (or None), or to the channel's whole config (a CreateTrainingJob
        ``InputDataConfig`` entry or an ``inputdataconfig.json`` value, from which
        ``ContentType`` and the input mode are read); leave it out to check hyperparameters
        only. Unknown names, missing required ones, bad values, missing or unknown channels
        and unsupported content types are all reported in one :class:`SpecValidationError`.
        Aliases (``learning_rate`` for ``eta``) come back under the canonical name. With
        ``fill_defaults`` the declared defaults of absent hyperparameters are added.
        """
        return self.validate_job(hyperparameters, channels, fill_defaults=fill_defaults)[0]

    def validate_job(self, hyperparameters: Mapping[str, str],
                     channels: Mapping[str, Any] | None = None, *,
                     fill_defaults: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
        """``validate``, plus each channel's data format (``data_formats``) from the same
        pass: what a training job needs to start."""
        errors: list[SpecError] = []
        values = self._parse_hyperparameters(hyperparameters, errors)
        formats: dict[str, str] = {}
        if channels is not None:
            formats = self._check_channels(channels, errors)
        if not errors:
            for check in self.checks:
                for problem in check(values, formats):
                    errors.append(SpecError(problem))
        if errors:
            raise SpecValidationError(errors)
        if fill_defaults:
            for name, param in self.hyperparameters.items():
                if name not in values and param.default is not None:
                    values[name] = param.default
        return values, formats

    def data_formats(self, channels: Mapping[str, Any]) -> dict[str, str]:
        """Channel name -> data format (``"csv"``, ``"libsvm"``...), or a SpecValidationError."""
        errors: list[SpecError] = []
        formats = self._check_channels(channels, errors)
        if errors:
            raise SpecValidationError(errors)
        return formats

    def _parse_hyperparameters(self, raw: Mapping[str, str],
                               errors: list[SpecError]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        given_as: dict[str, str] = {}
        for given, text in raw.items():
            name = self.aliases.get(given, given)
            param = self.hyperparameters.get(name)
            if param is None:
                errors.append(HyperparameterError(given, self._unknown_message(given)))
                continue
            if name in given_as:
                errors.append(HyperparameterError(
                    given, f"Hyperparameters '{given_as[name]}' and '{given}' are the same "
                           f"hyperparameter; give only one."))
                continue
            given_as[name] = given
            try:
                values[name] = param.parse(given, text)
            except HyperparameterError as e:
                errors.append(e)
        for name, param in self.hyperparameters.items():
            if param.required and name not in given_as:
                errors.append(HyperparameterError(
                    name, f"Missing required hyperparameter '{name}' "
                          f"({param.accepted()})."))
        return values

    def _unknown_message(self, name: str) -> str:
        import difflib

        candidates = list(self.hyperparameters) + list(self.aliases)
        close = difflib.get_close_matches(name, candidates, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return (f"Hyperparameter '{name}' is not accepted by the {self.name} algorithm."
                f"{hint}")

    def _check_channels(self, channels: Mapping[str, Any],
                        errors: list[SpecError]) -> dict[str, str]:
        formats: dict[str, str] = {}
        for name, config in channels.items():
            spec = self.channels.get(name)
            if spec is None:
                errors.append(ChannelError(
                    name, f"Channel '{name}' is not accepted by the {self.name} algorithm; "
                          f"accepted channels: {', '.join(self.channels)}."))
                continue
            content_type, mode, compression = channel_settings(config)
            if mode is not None and mode not in spec.input_modes:
                errors.append(ChannelError(
                    name, f"Channel '{name}' does not support input mode {mode!r}; "
                          f"supported: {', '.join(spec.input_modes)}."))
            if compression is not None and compression not in spec.compression_types:
                errors.append(ChannelError(
                    name, f"Channel '{name}' does not support CompressionType {compression!r};"
                          f" supported: {', '.join(spec.compression_types)}."))
            try:
                formats[name] = spec.data_format(name, content_type)
            except ChannelError as e:
                errors.append(e)
        for name, spec in self.channels.items():
            if spec.required and name not in channels:
                errors.append(ChannelError(
                    name, f"Missing required channel '{name}' for the {self.name} algorithm."))
        return formats

    # -- description
    def defaults(self) -> dict[str, Any]:
        return {n: p.default for n, p in self.hyperparameters.items() if p.default is not None}

    def metric_definitions(self) -> list[dict[str, str]]:
        """The built-in MetricDefinitions, as DescribeTrainingJob shows them."""
        return [m.as_api() for m in self.metrics]

    def objective_metrics(self) -> list[dict[str, str]]:
        """Metrics a tuning job may optimise (``SupportedTuningJobObjectiveMetrics``)."""
        return [{"Type": m.direction, "MetricName": m.name}
                for m in self.metrics if m.direction is not None]

    def training_specification(self) -> dict[str, Any]:
        """The algorithm as a SageMaker ``TrainingSpecification`` (DescribeAlgorithm)."""
        return {
            "SupportedHyperParameters": [p.specification(n)
                                         for n, p in self.hyperparameters.items()],
            "SupportsDistributedTraining": self.supports_distributed_training,
            "MetricDefinitions": self.metric_definitions(),
            "TrainingChannels": [
                {
                    "Name": name,
                    "Description": spec.description or name,
                    "IsRequired": spec.required,
                    "SupportedContentTypes": list(spec.content_types),
                    "SupportedCompressionTypes": list(spec.compression_types),
                    "SupportedInputModes": list(spec.input_modes),
                }
                for name, spec in self.channels.items()
            ],
            "SupportedTuningJobObjectiveMetrics": self.objective_metrics(),
        }
