"""The pipeline definition's expression language, evaluated against one execution.

What the SDK emits (``sagemaker.workflow``): ``{"Get": "Parameters.<name>"}``,
``{"Get": "Execution.<variable>"}``, ``{"Get": "Steps.<step>.<Describe path>"}`` (dots,
``[int]`` positional and ``['key']`` keyed list access: the element whose ``...Name`` is the
key, as ``FinalMetricDataList['accuracy']``), ``{"Get": "PipelineExperimentConfig.<field>"}``,
``{"Std:Join": {"On", "Values"}}``, ``{"Std:JsonGet": {"PropertyFile" | "S3Uri", "Path"}}``,
and the conditions (Equals, GreaterThan(OrEqualTo), LessThan(OrEqualTo), In, Not, Or; a list
of conditions is their AND). Anything else is a literal.

Evaluation is pure: a :class:`Scope` answers for parameters, execution variables, step
properties and property files; a reference that cannot be resolved raises
:class:`ExpressionError`, whose message becomes the step's ``FailureReason``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

FUNCTIONS = ("Get", "Std:Join", "Std:JsonGet")
EXECUTION_VARIABLES = ("PipelineExecutionId", "PipelineExecutionArn", "StartDateTime",
                       "CurrentDateTime", "PipelineName", "PipelineArn", "TrainingJobName",
                       "ProcessingJobName")
_TOKEN = re.compile(r"""\.?([^.\[\]]+)|\[(-?\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")


class ExpressionError(ValueError):
    """An expression that cannot be evaluated (a missing reference, a type clash)."""


@dataclass
class Scope:
    """What expressions of one execution can see."""

    parameters: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)
    experiment: dict[str, Any] = field(default_factory=dict)
    # a succeeded step's properties (its child's Describe answer), or None
    properties: Callable[[str], dict[str, Any] | None] = lambda step: None
    # the JSON document of a property file: (step, PropertyFileName) -> parsed JSON
    property_file: Callable[[str, str], Any] = lambda step, name: None
    # the JSON document at an S3 URI (``Std:JsonGet`` with ``S3Uri``)
    read_json: Callable[[str], Any] = lambda uri: None
    step_names: frozenset[str] = frozenset()


def is_function(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FUNCTIONS


def evaluate(value: Any, scope: Scope) -> Any:
    """``value`` with every expression in it replaced by its value."""
    if is_function(value):
        (name, argument), = value.items()
        if name == "Get":
            return _get(argument, scope)
        if name == "Std:Join":
            return _join(argument, scope)
        return _json_get(argument, scope)
    if isinstance(value, dict):
        return {k: evaluate(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    return value


def references(value: Any) -> Iterator[str]:
    """Every ``Get`` path in ``value`` (data dependencies are its ``Steps.`` ones)."""
    if isinstance(value, dict):
        if is_function(value) and "Get" in value and isinstance(value["Get"], str):
            yield value["Get"]
            return
        for v in value.values():
            yield from references(v)
    elif isinstance(value, list):
        for v in value:
            yield from references(v)


def split_step_path(path: str, step_names: frozenset[str]) -> tuple[str, str]:
    """``Steps.<step>.<rest>`` -> (step, rest); the longest step name that fits (a step
    name may hold dots)."""
    body = path[len("Steps."):]
    for name in sorted(step_names, key=len, reverse=True):
        if body == name or body.startswith(name + "."):
            return name, body[len(name) + 1:]
    step, _, rest = body.partition(".")
    return step, rest


def tokens(path: str) -> list[str | int]:
    """``Outputs['train'].S3Output.S3Uri`` -> ["Outputs", "'train", "S3Output", "S3Uri"]:
    names as str, positions as int, keys as str prefixed with a quote."""
    found: list[str | int] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"Invalid property path {path!r} at {path[position:]!r}")
        name, index, key1, key2 = match.groups()
        if name is not None:
            found.append(name)
        elif index is not None:
            found.append(int(index))
        else:
            found.append("'" + (key1 if key1 is not None else key2))
        position = match.end()
    return found


def lookup(document: Any, path: str, *, what: str) -> Any:
    """The value at ``path`` of a Describe answer (or any JSON document)."""
    current = document
    for token in tokens(path):
        if isinstance(token, int):
            if not isinstance(current, list) or not -len(current) <= token < len(current):
                raise ExpressionError(f"{what}: no element [{token}] at {path!r}")
            current = current[token]
        elif token.startswith("'"):
            current = _keyed(current, token[1:], path, what)
        elif isinstance(current, dict) and token in current:
            current = current[token]
        else:
            raise ExpressionError(f"{what}: the property {token!r} of {path!r} does not "
                                  "exist")
    return current


def _keyed(current: Any, key: str, path: str, what: str) -> Any:
    if isinstance(current, dict):
        if key in current:
            return current[key]
    elif isinstance(current, list):
        for item in current:
            if isinstance(item, dict) and any(
                    k.endswith("Name") and v == key for k, v in item.items()):
                return item
    raise ExpressionError(f"{what}: no element [{key!r}] at {path!r}")


def _get(path: Any, scope: Scope) -> Any:
    if not isinstance(path, str):
        raise ExpressionError(f"Get expects a string path, not {path!r}")
    head, _, rest = path.partition(".")
    if head == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"Parameter '{rest}' is undefined.")
        return scope.parameters[rest]
    if head == "Execution":
        if rest not in scope.execution:
            raise ExpressionError(f"Execution variable '{rest}' is not available here.")
        return scope.execution[rest]
    if head == "PipelineExperimentConfig":
        if rest not in scope.experiment:
            raise ExpressionError(f"PipelineExperimentConfig.{rest} is not set.")
        return scope.experiment[rest]
    if head == "Steps":
        step, inner = split_step_path(path, scope.step_names)
        if inner.startswith("PropertyFiles."):
            raise ExpressionError(f"{path!r}: a property file is read with Std:JsonGet")
        properties = scope.properties(step)
        if properties is None:
            raise ExpressionError(f"Step '{step}' has no properties: it did not succeed")
        return lookup(properties, inner, what=f"Step '{step}'") if inner else properties
    raise ExpressionError(f"Unknown reference {path!r}")


def _join(argument: Any, scope: Scope) -> str:
    if not isinstance(argument, dict) or not isinstance(argument.get("Values"), list):
        raise ExpressionError("Std:Join expects {'On': separator, 'Values': [...]}")
    separator = evaluate(argument.get("On", ""), scope)
    return str(separator).join(_text(evaluate(v, scope)) for v in argument["Values"])


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _json_get(argument: Any, scope: Scope) -> Any:
    if not isinstance(argument, dict) or "Path" not in argument:
        raise ExpressionError("Std:JsonGet expects a Path and a PropertyFile or S3Uri")
    json_path = evaluate(argument["Path"], scope)
    if "PropertyFile" in argument:
        source = argument["PropertyFile"]
        reference = source.get("Get") if isinstance(source, dict) else None
        if not isinstance(reference, str) or not reference.startswith("Steps."):
            raise ExpressionError(f"Std:JsonGet: invalid PropertyFile {source!r}")
        step, inner = split_step_path(reference, scope.step_names)
        if not inner.startswith("PropertyFiles."):
            raise ExpressionError(f"Std:JsonGet: invalid PropertyFile {reference!r}")
        name = inner[len("PropertyFiles."):]
        document = scope.property_file(step, name)
        what = f"Property file {name} of step '{step}'"
    elif "S3Uri" in argument:
        uri = evaluate(argument["S3Uri"], scope)
        document = scope.read_json(str(uri))
        what = f"The JSON file {uri}"
    else:
        raise ExpressionError("Std:JsonGet expects a PropertyFile or an S3Uri")
    path = str(json_path)
    if path.startswith("$"):
        path = path[1:].lstrip(".")
    return lookup(document, path, what=what) if path else document


# -- conditions ----------------------------------------------------------------------------
_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "GreaterThan": lambda a, b: a > b, "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b, "LessThanOrEqualTo": lambda a, b: a <= b,
}
CONDITION_TYPES = frozenset({"Equals", "In", "Not", "Or", *_ORDERINGS})


def outcome(conditions: list[Any], scope: Scope) -> bool:
    """The AND of ``conditions`` (a Condition step's ``Conditions``)."""
    return all(condition(c, scope) for c in conditions)


def condition(spec: Any, scope: Scope) -> bool:
    if not isinstance(spec, dict) or spec.get("Type") not in CONDITION_TYPES:
        raise ExpressionError(f"Unknown condition {spec!r}")
    kind = spec["Type"]
    if kind == "Not":
        return not condition(spec.get("Condition"), scope)
    if kind == "Or":
        return any(condition(c, scope) for c in spec.get("Conditions") or [])
    if kind == "In":
        query = evaluate(spec.get("QueryValue"), scope)
        return any(_equal(query, evaluate(v, scope)) for v in spec.get("Values") or [])
    left = evaluate(spec.get("LeftValue"), scope)
    right = evaluate(spec.get("RightValue"), scope)
    if kind == "Equals":
        return _equal(left, right)
    if _number(left) and _number(right) or isinstance(left, str) and isinstance(right, str):
        return _ORDERINGS[kind](left, right)
    raise ExpressionError(f"Condition {kind} cannot compare {left!r} with {right!r}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    if _number(left) and _number(right):
        return float(left) == float(right)
    if isinstance(left, bool) or isinstance(right, bool):
        if isinstance(left, str) or isinstance(right, str):  # "True" from a Join/parameter
            return str(left).lower() == str(right).lower()
        return left is right
    return bool(left == right)
