"""A pipeline definition (the JSON the SDK's ``Pipeline.definition()`` emits): parsed and
checked at CreatePipeline/UpdatePipeline, flattened into steps with their dependencies.

A step depends on the steps in its ``DependsOn``, on every step its arguments reference
(``Get Steps.X...``, a ``PropertyFile`` of X), and, when it sits in a Condition step's
``IfSteps``/``ElseSteps``, on that Condition step, whose outcome decides whether it runs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from opensage.errors import ValidationException
from opensage.services.pipelines.expressions import references, split_step_path

PARAMETER_TYPES = ("String", "Integer", "Float", "Boolean")
JOB_STEPS = {"Processing": "ProcessingJob", "Training": "TrainingJob",
             "Tuning": "TuningJob", "Transform": "TransformJob"}
# step types that need a service opensage does not have, and that service's name
UNSUPPORTED = {
    "Lambda": "AWS Lambda", "EMR": "Amazon EMR", "EMRServerless": "Amazon EMR Serverless",
    "ClarifyCheck": "SageMaker Clarify (a check step's baseline and violation logic)",
    "QualityCheck": "SageMaker Model Monitor (a check step's baseline and violation logic)",
    "AutoML": "SageMaker Autopilot (AutoML jobs)", "Notebook": "SageMaker notebook jobs",
    "EndpointConfig": "endpoint steps", "Endpoint": "endpoint steps",
    "InferenceComponent": "inference components", "Athena": "Amazon Athena",
    "BedrockCustomModel": "Amazon Bedrock", "BedrockCustomModelDeployment": "Amazon Bedrock",
    "BedrockProvisionedModelThroughput": "Amazon Bedrock",
    "BedrockModelImport": "Amazon Bedrock", "Lineage": "lineage steps",
}
KNOWN_TYPES = frozenset({*JOB_STEPS, "Model", "CreateModel", "RegisterModel", "Condition",
                         "Fail", "Callback", *UNSUPPORTED})
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


@dataclass(frozen=True)
class Step:
    name: str
    type: str
    raw: dict[str, Any]  # the step's object in the definition
    depends_on: frozenset[str]  # every step that must succeed first
    branch: tuple[str, bool] | None = None  # (Condition step, outcome it needs)

    @property
    def arguments(self) -> Any:
        return self.raw.get("Arguments", {})


@dataclass(frozen=True)
class Definition:
    document: dict[str, Any]
    parameters: dict[str, dict[str, Any]]
    steps: dict[str, Step] = field(default_factory=dict)  # in definition order

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.steps)


def parse(text: str) -> Definition:
    """The definition, or ``ValidationException`` naming what is wrong with it."""
    try:
        document = json.loads(text)
    except ValueError as err:
        raise ValidationException(f"Invalid pipeline definition: not valid JSON ({err})") \
            from None
    if not isinstance(document, dict):
        raise ValidationException("Invalid pipeline definition: expected a JSON object")
    parameters: dict[str, dict[str, Any]] = {}
    for parameter in document.get("Parameters") or []:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("Name"), str):
            raise ValidationException(
                f"Invalid pipeline definition: parameter {parameter!r} has no Name")
        kind = parameter.get("Type", "String")
        if kind not in PARAMETER_TYPES:
            raise ValidationException(
                f"Invalid pipeline definition: parameter {parameter['Name']} has Type "
                f"{kind!r}; expected one of {', '.join(PARAMETER_TYPES)}")
        if parameter["Name"] in parameters:
            raise ValidationException(
                f"Invalid pipeline definition: parameter {parameter['Name']} is defined twice")
        parameters[parameter["Name"]] = parameter
        if "DefaultValue" in parameter:
            coerce(parameter, parameter["DefaultValue"])
    steps = document.get("Steps")
    if not isinstance(steps, list):
        raise ValidationException("Invalid pipeline definition: 'Steps' must be a list")
    raw: list[tuple[dict[str, Any], tuple[str, bool] | None]] = []
    _collect(steps, None, raw)
    names = [s["Name"] for s, _ in raw]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ValidationException(
            f"Invalid pipeline definition: step name {duplicate!r} is used more than once")
    known = frozenset(names)
    flat: dict[str, Step] = {}
    for step, branch in raw:
        flat[step["Name"]] = _step(step, branch, known, parameters)
    _check_acyclic(flat)
    return Definition(document, parameters, flat)


def _collect(steps: list[Any], branch: tuple[str, bool] | None,
             into: list[tuple[dict[str, Any], tuple[str, bool] | None]]) -> None:
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("Name"), str) \
                or not step["Name"]:
            raise ValidationException(f"Invalid pipeline definition: step {step!r} has no Name")
        kind = step.get("Type")
        if not isinstance(kind, str):
            raise ValidationException(
                f"Invalid pipeline definition: step {step['Name']} has no Type")
        if kind not in KNOWN_TYPES:
            raise ValidationException(
                f"Invalid pipeline definition: step {step['Name']} has unknown Type {kind!r}")
        arguments = step.get("Arguments", {})
        if not isinstance(arguments, dict):
            raise ValidationException(
                f"Invalid pipeline definition: the Arguments of step {step['Name']} must be "
                "an object")
        into.append((step, branch))
        if kind == "Condition":
            if not isinstance(arguments.get("Conditions"), list):
                raise ValidationException(
                    f"Invalid pipeline definition: Condition step {step['Name']} needs a "
                    "Conditions list")
            for key, outcome in (("IfSteps", True), ("ElseSteps", False)):
                nested = arguments.get(key) or []
                if not isinstance(nested, list):
                    raise ValidationException(
                        f"Invalid pipeline definition: {key} of step {step['Name']} must be "
                        "a list")
                _collect(nested, (step["Name"], outcome), into)


def _step(step: dict[str, Any], branch: tuple[str, bool] | None, known: frozenset[str],
          parameters: dict[str, dict[str, Any]]) -> Step:
    name = step["Name"]
    depends = step.get("DependsOn") or []
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise ValidationException(
            f"Invalid pipeline definition: DependsOn of step {name} must be a list of names")
    needed = set(depends)
    scanned: Any = dict(step.get("Arguments", {}))
    if step["Type"] == "Condition":  # the branches' own references are theirs
        scanned = scanned.get("Conditions")
    for path in references([scanned, step.get("PropertyFiles")]):
        head = path.partition(".")[0]
        if head == "Steps":
            needed.add(split_step_path(path, known)[0])
        elif head == "Parameters" and path[len("Parameters."):] not in parameters:
            raise ValidationException(
                f"Invalid pipeline definition: step {name} refers to an undefined parameter "
                f"{path[len('Parameters.'):]!r}")
    missing = sorted(needed - known)
    if missing:
        raise ValidationException(
            f"Invalid pipeline definition: step {name} depends on step(s) that do not exist: "
            f"{', '.join(missing)}")
    if name in needed:
        raise ValidationException(f"Invalid pipeline definition: step {name} depends on itself")
    if branch is not None:
        needed.add(branch[0])
    for policy in step.get("RetryPolicies") or []:
        if not isinstance(policy, dict) or ("MaxAttempts" in policy) == (
                "ExpireAfterMin" in policy):
            raise ValidationException(
                f"Invalid pipeline definition: each retry policy of step {name} needs exactly "
                "one of MaxAttempts and ExpireAfterMin")
    cache = step.get("CacheConfig")
    if isinstance(cache, dict) and cache.get("ExpireAfter"):
        duration_seconds(str(cache["ExpireAfter"]), where=f"step {name}")
    return Step(name, step["Type"], step, frozenset(needed), branch)


def _check_acyclic(steps: dict[str, Step]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise ValidationException(
                f"Invalid pipeline definition: the steps form a cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for dep in sorted(steps[name].depends_on):
            visit(dep, [*trail, name])
        state[name] = 2

    for name in steps:
        visit(name, [])


def duration_seconds(text: str, *, where: str) -> float:
    """An ISO-8601 duration (``PT1H``, ``P30D``, ``PT10M30S``) in seconds."""
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT"):
        raise ValidationException(
            f"Invalid pipeline definition: CacheConfig.ExpireAfter of {where} is {text!r}, "
            "not an ISO-8601 duration such as PT1H or P30D")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(dt.timedelta(days=days, hours=hours, minutes=minutes,
                              seconds=seconds).total_seconds())


def coerce(parameter: dict[str, Any], value: Any) -> Any:
    """A parameter's value (StartPipelineExecution sends strings) as its declared Type."""
    name, kind = parameter["Name"], parameter.get("Type", "String")
    try:
        if kind == "Integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            result: Any = int(value) if not isinstance(value, str) else int(value.strip())
        elif kind == "Float":
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
        elif kind == "Boolean":
            if isinstance(value, bool):
                result = value
            elif str(value).lower() in ("true", "false"):
                result = str(value).lower() == "true"
            else:
                raise ValueError
        else:
            result = value if isinstance(value, str) else str(value)
    except (TypeError, ValueError):
        raise ValidationException(
            f"Value {value!r} of parameter {name} is not a valid {kind}") from None
    enum = parameter.get("EnumValues")
    if enum and result not in enum:
        raise ValidationException(
            f"Value {value!r} of parameter {name} is not one of its allowed values "
            f"{', '.join(map(str, enum))}")
    return result


def resolve_parameters(definition: Definition,
                       given: list[dict[str, str]]) -> dict[str, Any]:
    """The execution's parameter values: given ones coerced, the rest from their defaults."""
    values: dict[str, Any] = {}
    for item in given:
        name = item["Name"]
        if name not in definition.parameters:
            raise ValidationException(f"Unknown parameter '{name}'")
        if item.get("Value", "") == "" and definition.parameters[name].get("Type") != "String":
            raise ValidationException(
                f'Parameter {name} value "" is too short (length: 0, required minimum: 1).')
        values[name] = coerce(definition.parameters[name], item.get("Value", ""))
    for name, parameter in definition.parameters.items():
        if name not in values:
            if "DefaultValue" not in parameter:
                raise ValidationException(f"Parameter '{name}' is undefined.")
            values[name] = coerce(parameter, parameter["DefaultValue"])
    return values
