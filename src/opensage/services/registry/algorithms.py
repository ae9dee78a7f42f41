"""Algorithm resources (CreateAlgorithm): an image with its declared hyperparameters, channels,
metrics and instance types, that training jobs name with ``AlgorithmSpecification.
AlgorithmName`` and model packages with ``SourceAlgorithmSpecification``.

The declaration becomes an :class:`~opensage.algorithms.spec.AlgorithmSpec`, the same object a
built-in declares: one validation of a job's hyperparameters and channels for both, and the
tuner reads tunable ranges and objective metrics from it as from a built-in's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from opensage.algorithms.channels import ChannelSpec, split_content_type
from opensage.algorithms.errors import SpecError
from opensage.algorithms.params import Choice, Float, Int, Param, Text
from opensage.algorithms.spec import AlgorithmSpec, MetricDefinition
from opensage.errors import ValidationException
from opensage.runner.environments import framework_for_image
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.crud import arn_of, create
from opensage.services.registry.algorithm_states import LIFECYCLE, AlgorithmStatus
from opensage.services.registry.common import (
    check_inference_specification,
    load_named,
    registry_list_query,
    summaries,
)
from opensage.store.resources import Resource, StatusConflict

KIND = kinds.ALGORITHM
# Hyperparameters the platform adds to a job, never declared by an algorithm: the tuner's
# objective and the SDK's script-mode keys.
_PLATFORM_PREFIXES = ("sagemaker_", "_tuning_objective_metric")


@dataclass(frozen=True)
class DeclaredAlgorithm:
    """An algorithm resource as a training job needs it."""

    name: str
    arn: str
    image: str
    spec: AlgorithmSpec
    instance_types: tuple[str, ...]
    supports_distributed_training: bool
    supports_tuning: bool
    metric_definitions: list[dict[str, str]]

    def check_job(self, hyperparameters: dict[str, str], channels: dict[str, Any],
                  instance_type: str | None, instance_count: int) -> None:
        """A CreateTrainingJob request against the declaration: every problem in one
        ValidationException."""
        declared = {k: v for k, v in hyperparameters.items()
                    if not k.startswith(_PLATFORM_PREFIXES)}
        try:
            self.spec.validate(declared, channels)
        except SpecError as err:
            raise ValidationException(str(err)) from None
        if instance_type and self.instance_types and instance_type not in self.instance_types:
            raise ValidationException(
                f"Instance type {instance_type} is not supported by algorithm {self.name}; "
                f"supported: {', '.join(self.instance_types)}.")
        if instance_count > 1 and not self.supports_distributed_training:
            raise ValidationException(
                f"Algorithm {self.name} does not support distributed training: "
                "ResourceConfig.InstanceCount must be 1.")


def load_algorithm(ctx: Context, name_or_arn: str) -> Resource:
    return load_named(ctx, KIND, name_or_arn)


def find(ctx: Context, name_or_arn: str) -> DeclaredAlgorithm:
    """The algorithm a job names (``AlgorithmName``, a name or an ARN), ready to check it."""
    row = load_algorithm(ctx, name_or_arn)
    if row.status != AlgorithmStatus.COMPLETED:
        raise ValidationException(f"Algorithm {row.name} is not ready: its status is "
                                  f"{row.status}.")
    return declared(row.body)


def declared(body: dict[str, Any]) -> DeclaredAlgorithm:
    training = body["TrainingSpecification"]
    spec = _spec(body["AlgorithmName"], training)
    return DeclaredAlgorithm(
        name=body["AlgorithmName"], arn=body["AlgorithmArn"], image=training["TrainingImage"],
        spec=spec, instance_types=tuple(training.get("SupportedTrainingInstanceTypes") or ()),
        supports_distributed_training=bool(training.get("SupportsDistributedTraining")),
        supports_tuning=bool(training.get("SupportedTuningJobObjectiveMetrics")),
        metric_definitions=spec.metric_definitions())


# -- the API -------------------------------------------------------------------------------
def create_algorithm(ctx: Context, params: dict[str, Any]) -> Resource:
    name = params["AlgorithmName"]
    training = params["TrainingSpecification"]
    _check_training_image(ctx, training["TrainingImage"])
    _spec(name, training)  # refuses a bad declaration
    _check_objectives(ctx, name, training)
    if params.get("InferenceSpecification"):
        check_inference_specification(ctx, params["InferenceSpecification"],
                                      "InferenceSpecification", check_model_data=False)
    body = {k: v for k, v in params.items() if k != "Tags"}
    body["TrainingSpecification"] = {"SupportsDistributedTraining": False, **training}
    body.update(AlgorithmArn=arn_of(ctx, KIND, name), CreationTime=ctx.now(),
                CertifyForMarketplace=bool(params.get("CertifyForMarketplace")),
                AlgorithmStatus=AlgorithmStatus.PENDING,
                AlgorithmStatusDetails=_status_details(params))
    create(ctx, KIND, name, body, params.get("Tags") or [], noun="algorithm",
           status=AlgorithmStatus.PENDING)
    row = None
    for target, source in ((AlgorithmStatus.IN_PROGRESS, AlgorithmStatus.PENDING),
                           (AlgorithmStatus.COMPLETED, AlgorithmStatus.IN_PROGRESS)):
        row = _move(ctx, name, source, target)
    assert row is not None
    return row


def _move(ctx: Context, name: str, source: AlgorithmStatus,
          target: AlgorithmStatus, *more: AlgorithmStatus) -> Resource:
    def change(body: dict[str, Any]) -> None:
        body["AlgorithmStatus"] = target

    return ctx.resources.transition(KIND.name, name, LIFECYCLE.sources(target, source, *more),
                                    target, change, now=ctx.now())


def _status_details(params: dict[str, Any]) -> dict[str, Any]:
    """Validation profiles are accepted, not run: each is reported NotStarted."""
    profiles = (params.get("ValidationSpecification") or {}).get("ValidationProfiles") or []
    return {"ValidationStatuses": [{"Name": p["ProfileName"], "Status": "NotStarted"}
                                   for p in profiles]}


def describe_algorithm(ctx: Context, name_or_arn: str) -> dict[str, Any]:
    return load_algorithm(ctx, name_or_arn).body


def list_algorithms(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return summaries(ctx, KIND, registry_list_query(params), key="AlgorithmSummaryList",
                     fields=("AlgorithmName", "AlgorithmArn", "AlgorithmDescription",
                             "CreationTime", "AlgorithmStatus"))


def delete_algorithm(ctx: Context, name_or_arn: str) -> None:
    row = load_algorithm(ctx, name_or_arn)
    try:
        _move(ctx, row.name, AlgorithmStatus.COMPLETED, AlgorithmStatus.DELETING,
              AlgorithmStatus.FAILED)
    except StatusConflict as e:
        if e.current is None:
            raise KIND.not_found(row.arn, row.name) from None
        raise
    ctx.resources.delete(KIND.name, row.name)


# -- the declaration -----------------------------------------------------------------------
def _check_training_image(ctx: Context, image: str) -> None:
    """An image that can be trained here in no version is refused (a framework or built-in
    version opensage lacks); a user's own image is taken as given."""
    framework_for_image(image, script_mode=True)  # UnsupportedFramework: ValidationException
    ctx.algorithms.lookup(image)


def _check_objectives(ctx: Context, name: str, training: dict[str, Any]) -> None:
    emitted = {m["Name"] for m in training.get("MetricDefinitions") or []}
    builtin = ctx.algorithms.lookup(training["TrainingImage"])
    if builtin is not None:
        emitted |= {m["Name"] for m in builtin.metric_definitions()}
    for objective in training.get("SupportedTuningJobObjectiveMetrics") or []:
        if objective["MetricName"] not in emitted:
            raise ValidationException(
                f"Algorithm {name}: the tuning objective metric {objective['MetricName']!r} "
                "is not one of its MetricDefinitions.")


def _spec(name: str, training: dict[str, Any]) -> AlgorithmSpec:
    params: dict[str, Param] = {}
    for entry in training.get("SupportedHyperParameters") or []:
        if entry["Name"] in params:
            raise ValidationException(f"Algorithm {name}: hyperparameter {entry['Name']!r} "
                                      "is declared more than once.")
        params[entry["Name"]] = _param(name, entry)
    channels: dict[str, ChannelSpec] = {}
    for channel in training["TrainingChannels"]:
        if channel["Name"] in channels:
            raise ValidationException(f"Algorithm {name}: channel {channel['Name']!r} is "
                                      "declared more than once.")
        types = [split_content_type(t)[0] for t in channel["SupportedContentTypes"]]
        channels[channel["Name"]] = ChannelSpec(
            required=bool(channel.get("IsRequired")),
            content_types={t: t for t in types},
            default_content_type=types[0] if types else None,
            input_modes=tuple(channel["SupportedInputModes"]),
            compression_types=tuple(channel.get("SupportedCompressionTypes")
                                    or ("None", "Gzip")),
            description=channel.get("Description") or "")
    directions = {o["MetricName"]: o["Type"]
                  for o in training.get("SupportedTuningJobObjectiveMetrics") or []}
    metrics = [MetricDefinition(m["Name"], m["Regex"], directions.get(m["Name"]))
               for m in training.get("MetricDefinitions") or []]
    declared_names = {m.name for m in metrics}
    # An objective a built-in image emits without a declared regex: the built-in's own
    # definitions apply when the job runs; the direction is kept for the tuner.
    metrics += [MetricDefinition(metric, "", direction) for metric, direction in
                directions.items() if metric not in declared_names]
    return AlgorithmSpec(name, params, channels, [m for m in metrics],
                         input_modes=tuple(sorted({mode for c in channels.values()
                                                   for mode in c.input_modes})),
                         supports_distributed_training=bool(
                             training.get("SupportsDistributedTraining")))


def _param(algorithm: str, entry: dict[str, Any]) -> Param:
    name, kind = entry["Name"], entry["Type"]
    where = f"Algorithm {algorithm}: hyperparameter {name!r}"
    ranges = entry.get("Range") or {}
    required, tunable = bool(entry.get("IsRequired")), bool(entry.get("IsTunable"))
    description = entry.get("Description") or ""
    if required and entry.get("DefaultValue") is not None:
        raise ValidationException(f"{where} is required: it cannot have a DefaultValue.")
    param: Param
    if kind in ("Integer", "Continuous"):
        key = f"{kind}ParameterRangeSpecification"
        bounds = ranges.get(key)
        if bounds is None:
            raise ValidationException(f"{where} of type {kind} needs a Range.{key}.")
        low, high = _number(where, bounds["MinValue"]), _number(where, bounds["MaxValue"])
        if low > high:
            raise ValidationException(f"{where}: MinValue {bounds['MinValue']} is greater "
                                      f"than MaxValue {bounds['MaxValue']}.")
        if kind == "Integer":
            if not (low.is_integer() and high.is_integer()):
                raise ValidationException(f"{where}: an integer range needs integer bounds.")
            param = Int(int(low), int(high), required=required, tunable=tunable,
                        description=description)
        else:
            param = Float(low, high, required=required, tunable=tunable,
                          description=description)
    elif kind == "Categorical":
        values = (ranges.get("CategoricalParameterRangeSpecification") or {}).get("Values")
        if not values:
            raise ValidationException(
                f"{where} of type Categorical needs Range.CategoricalParameterRangeSpecification"
                ".Values.")
        param = Choice(list(values), required=required, tunable=tunable,
                       description=description)
    elif kind == "FreeText":
        if tunable:
            raise ValidationException(f"{where} of type FreeText cannot be tunable.")
        param = Text(required=required, description=description)
    else:  # the service model's enum is checked by the API layer
        raise ValidationException(f"{where} has an unknown Type {kind!r}.")
    default = entry.get("DefaultValue")
    if default is not None:
        try:
            param.default = param.parse(name, default)
        except SpecError as err:
            raise ValidationException(f"{where}: DefaultValue: {err}") from None
    return param


def _number(where: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidationException(f"{where}: range bound {text!r} is not a number.") from None
    if not math.isfinite(value):
        raise ValidationException(f"{where}: range bound {text!r} is not finite.")
    return value
