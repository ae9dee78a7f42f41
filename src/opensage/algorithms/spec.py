"""Declarative specs for built-in algorithms, in the style of scikit-learn's parameter constraints.

A built-in declares its hyperparameters once, as constraint objects::

    HYPERPARAMETERS = {
        "num_round": Int(min=1, required=True, tunable=True),
        "eta": Float(0, 1, default=0.3, tunable=True),
        "booster": Choice(["gbtree", "gblinear", "dart"], default="gbtree"),
    }

and wraps them, with its channels and metrics, in an :class:`AlgorithmSpec`. That one object
answers CreateTrainingJob's validation (``spec.validate(hps, channels)`` before anything runs),
gives the job its typed values (the same call, inside the job), and describes the algorithm
(``spec.training_specification()``, the shape of DescribeAlgorithm's TrainingSpecification).

Every value arrives as a string (the API's HyperParameters is ``map<string,string>``); each
constraint's ``parse(name, raw)`` turns it into a typed value or raises
:class:`HyperparameterError` whose message says which hyperparameter, what is accepted and what
was given. ``validate`` gathers every problem into one :class:`SpecValidationError`.
"""

from __future__ import annotations

import ast
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "AlgorithmSpec",
    "Bool",
    "ChannelError",
    "ChannelSpec",
    "Choice",
    "Float",
    "HyperparameterError",
    "Int",
    "IntList",
    "MetricDefinition",
    "OrAuto",
    "Param",
    "Rejected",
    "SpecError",
    "SpecValidationError",
    "StrList",
    "Text",
    "channel_configs",
]

Closed = Literal["both", "left", "right", "neither"]
Direction = Literal["Maximize", "Minimize"]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# --------------------------------------------------------------------------------------- errors


class SpecError(ValueError):
    """A training request that an algorithm's spec rejects (a client error, not a crash)."""


class HyperparameterError(SpecError):
    """One hyperparameter is unknown, missing or has a value the spec does not accept."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class ChannelError(SpecError):
    """One input channel is missing, unknown or has an unsupported content type or mode."""

    def __init__(self, channel: str, message: str) -> None:
        super().__init__(message)
        self.channel = channel
        self.message = message


class SpecValidationError(SpecError):
    """Every problem ``AlgorithmSpec.validate`` found, reported together."""

    def __init__(self, errors: Sequence[SpecError]) -> None:
        self.errors = list(errors)
        messages = [str(e) for e in self.errors]
        if len(messages) == 1:
            text = messages[0]
        else:
            text = f"{len(messages)} problems: " + " ".join(messages)
        super().__init__(text)


def _fmt(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


class Rejected(ValueError):
    """Raised by a constraint's ``_parse`` to add a reason to the standard message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _invalid(name: str, accepted: str, raw: str, reason: str = "") -> HyperparameterError:
    because = f" ({reason})" if reason else ""
    return HyperparameterError(
        name, f"Hyperparameter '{name}' must be {accepted}; got {raw!r}{because}."
    )


# ---------------------------------------------------------------------------------- constraints


class Param:
    """One hyperparameter's constraint: how to parse it, what it accepts, how to describe it.

    Subclasses implement ``_parse`` (raise ``ValueError`` when the text is not acceptable) and
    ``accepted`` (a phrase completing "must be ..."); the rest is derived.
    """

    type_name = "FreeText"  # HyperParameterSpecification.Type

    def __init__(self, *, default: Any = None, required: bool = False, tunable: bool = False,
                 description: str = "") -> None:
        self.default = default
        self.required = required
        self.tunable = tunable
        self.description = description

    # -- to implement
    def _parse(self, raw: str) -> Any:
        return raw

    def accepted(self) -> str:
        return "a string"

    def invalid_examples(self) -> list[str]:
        """Strings this constraint must refuse (for generated tests, like sklearn's
        ``generate_invalid_param_val``)."""
        return []

    def valid_example(self) -> str:
        if self.default is not None:
            return self.format(self.default)
        return "x"

    def _range(self) -> dict[str, Any] | None:
        return None

    # -- derived
    def parse(self, name: str, raw: str) -> Any:
        """Parse ``raw`` (the string the API carried) or raise :class:`HyperparameterError`."""
        if not isinstance(raw, str):
            raw = str(raw)
        try:
            return self._parse(raw.strip())
        except Rejected as e:
            raise _invalid(name, self.accepted(), raw, e.reason) from None
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise _invalid(name, self.accepted(), raw) from None

    def format(self, value: Any) -> str:
        """The string form of a typed value (DefaultValue in DescribeAlgorithm)."""
        return _fmt(value)

    def specification(self, name: str) -> dict[str, Any]:
        """This hyperparameter as a SageMaker ``HyperParameterSpecification``."""
        spec: dict[str, Any] = {
            "Name": name,
            "Description": self.description or name,
            "Type": self.type_name,
            "IsTunable": self.tunable,
            "IsRequired": self.required,
        }
        rng = self._range()
        if rng is not None:
            spec["Range"] = rng
        if self.default is not None:
            spec["DefaultValue"] = self.format(self.default)
        return spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.accepted()})"


class _Interval(Param):
    kind = "number"

    def __init__(self, min: float | None = None, max: float | None = None, *,
                 closed: Closed = "both", default: Any = None, required: bool = False,
                 tunable: bool = False, description: str = "") -> None:
        super().__init__(default=default, required=required, tunable=tunable,
                         description=description)
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be both, left, right or neither, not {closed!r}")
        self.min = min
        self.max = max
        self.closed = closed

    @property
    def min_closed(self) -> bool:
        return self.closed in ("both", "left")

    @property
    def max_closed(self) -> bool:
        return self.closed in ("both", "right")

    def contains(self, value: float) -> bool:
        below = self.min is not None and (
            value < self.min or (value == self.min and not self.min_closed))
        above = self.max is not None and (
            value > self.max or (value == self.max and not self.max_closed))
        return not (below or above)

    def interval(self) -> str:
        left = "-inf" if self.min is None else _fmt(self.min)
        right = "inf" if self.max is None else _fmt(self.max)
        lb = "[" if self.min is not None and self.min_closed else "("
        rb = "]" if self.max is not None and self.max_closed else ")"
        return f"{lb}{left}, {right}{rb}"

    def accepted(self) -> str:
        if self.min is None and self.max is None:
            return f"{self.kind}"
        return f"{self.kind} in the range {self.interval()}"

    def _outside(self) -> list[float]:
        out: list[float] = []
        if self.min is not None:
            out.append(self.min if not self.min_closed else self.min - 1)
        if self.max is not None:
            out.append(self.max if not self.max_closed else self.max + 1)
        return out


class Int(_Interval):
    """An integer, optionally bounded: ``Int(min=1)``, ``Int(0, 1)``, ``Int(closed="neither")``."""

    type_name = "Integer"
    kind = "an integer"

    def _parse(self, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            number = float(raw)  # "10.0" and "1e3" are integers written as floats
            if not math.isfinite(number) or not number.is_integer():
                raise
            value = int(number)
        if not self.contains(value):
            raise ValueError(raw)
        return value

    def invalid_examples(self) -> list[str]:
        return ["abc", "1.5", ""] + [_fmt(v) for v in self._outside()]

    def valid_example(self) -> str:
        if self.default is not None:
            return self.format(self.default)
        low = self.min if self.min is not None else 0
        value = int(low) if self.min_closed or self.min is None else int(low) + 1
        return str(value)

    def _range(self) -> dict[str, Any]:
        low = self.min if self.min is not None else INT32_MIN
        high = self.max if self.max is not None else INT32_MAX
        if self.min is not None and not self.min_closed:
            low = self.min + 1
        if self.max is not None and not self.max_closed:
            high = self.max - 1
        return {"IntegerParameterRangeSpecification": {"MinValue": _fmt(low),
                                                       "MaxValue": _fmt(high)}}


class Float(_Interval):
    """A finite float, optionally bounded: ``Float(0, 1)``, ``Float(0, None, closed="neither")``."""

    type_name = "Continuous"
    kind = "a float"

    def _parse(self, raw: str) -> float:
        value = float(raw)
        if not math.isfinite(value) or not self.contains(value):
            raise ValueError(raw)
        return value

    def invalid_examples(self) -> list[str]:
        return ["abc", "nan", ""] + [_fmt(v) for v in self._outside()]

    def valid_example(self) -> str:
        if self.default is not None:
            return self.format(self.default)
        if self.min is not None and self.max is not None:
            return _fmt((self.min + self.max) / 2)
        if self.min is not None:
            return _fmt(self.min + 1)
        if self.max is not None:
            return _fmt(self.max - 1)
        return "0.5"

    def _range(self) -> dict[str, Any]:
        low = self.min if self.min is not None else -sys.float_info.max
        high = self.max if self.max is not None else sys.float_info.max
        return {"ContinuousParameterRangeSpecification": {"MinValue": _fmt(low),
                                                          "MaxValue": _fmt(high)}}


class Choice(Param):
    """One of a fixed set of strings: ``Choice({"gbtree", "gblinear", "dart"})``.

    A set is listed sorted in messages; a list, tuple or dict keeps its order.
    """

    type_name = "Categorical"

    def __init__(self, values: Iterable[str], *, case_sensitive: bool = True, default: Any = None,
                 required: bool = False, tunable: bool = False, description: str = "") -> None:
        super().__init__(default=default, required=required, tunable=tunable,
                         description=description)
        ordered = sorted(values) if isinstance(values, (set, frozenset)) else list(values)
        self.values: tuple[str, ...] = tuple(dict.fromkeys(ordered))
        self.case_sensitive = case_sensitive
        self._lookup = {(v if case_sensitive else v.lower()): v for v in self.values}

    def _parse(self, raw: str) -> str:
        key = raw if self.case_sensitive else raw.lower()
        if key not in self._lookup:
            raise ValueError(raw)
        return self._lookup[key]

    def accepted(self) -> str:
        listed = ", ".join(repr(v) for v in self.values)
        return f"one of {listed}"

    def invalid_examples(self) -> list[str]:
        return ["not-a-choice", ""]

    def valid_example(self) -> str:
        return self.default if self.default is not None else self.values[0]

    def _range(self) -> dict[str, Any]:
        return {"CategoricalParameterRangeSpecification": {"Values": list(self.values)}}


class Bool(Param):
    """A boolean in any of SageMaker's spellings: true/false, True/False, 1/0 (any case)."""

    type_name = "Categorical"
    TRUE = frozenset({"true", "1"})
    FALSE = frozenset({"false", "0"})

    def _parse(self, raw: str) -> bool:
        low = raw.lower()
        if low in self.TRUE:
            return True
        if low in self.FALSE:
            return False
        raise ValueError(raw)

    def accepted(self) -> str:
        return "true or false"

    def format(self, value: Any) -> str:
        return "true" if value else "false"

    def invalid_examples(self) -> list[str]:
        return ["maybe", "2", ""]

    def valid_example(self) -> str:
        return self.format(bool(self.default))

    def _range(self) -> dict[str, Any]:
        return {"CategoricalParameterRangeSpecification": {"Values": ["true", "false"]}}


class OrAuto(Param):
    """The literal ``auto`` (any case; the algorithm picks the value) or what ``inner``
    accepts: ``OrAuto(Float(0, 1, closed="neither"))``. ``auto`` parses to ``"auto"``; ranges
    and tunability are the inner constraint's."""

    def __init__(self, inner: Param, *, words: tuple[str, ...] = ("auto",),
                 default: Any = "auto", required: bool = False, tunable: bool = False,
                 description: str = "") -> None:
        super().__init__(default=default, required=required, tunable=tunable,
                         description=description)
        self.inner = inner
        self.words = words  # literals accepted besides the inner values ("auto", "balanced")
        self.type_name = inner.type_name

    def _parse(self, raw: str) -> Any:
        if raw.lower() in self.words:
            return raw.lower()
        return self.inner._parse(raw)

    def accepted(self) -> str:
        listed = " or ".join(repr(w) for w in self.words)
        return f"{listed} or {self.inner.accepted()}"

    def format(self, value: Any) -> str:
        return value if value in self.words else self.inner.format(value)

    def invalid_examples(self) -> list[str]:
        return [v for v in self.inner.invalid_examples() if v.lower() not in self.words]

    def valid_example(self) -> str:
        return "auto"

    def _range(self) -> dict[str, Any] | None:
        return self.inner._range()

    def contains(self, value: float) -> bool:
        """Whether a numeric value is inside the inner range (tuning ranges are checked
        against it; ``auto`` is no number)."""
        return bool(self.inner.contains(value))  # type: ignore[attr-defined]


class Text(Param):
    """Free text, optionally matching a regular expression (``fullmatch``)."""

    def __init__(self, pattern: str | None = None, *, what: str | None = None,
                 default: Any = None, required: bool = False, tunable: bool = False,
                 description: str = "") -> None:
        super().__init__(default=default, required=required, tunable=tunable,
                         description=description)
        self.pattern = re.compile(pattern) if pattern else None
        self.what = what

    def _parse(self, raw: str) -> str:
        if self.pattern is not None and not self.pattern.fullmatch(raw):
            raise ValueError(raw)
        return raw

    def accepted(self) -> str:
        if self.what:
            return self.what
        if self.pattern is not None:
            return f"a string matching {self.pattern.pattern!r}"
        return "a string"

    def invalid_examples(self) -> list[str]:
        return ["\x00bad"] if self.pattern is not None else []


class StrList(Param):
    """A separated list of strings, each checked by ``item`` (a Param) when given:
    ``StrList(Choice({"a", "b"}))`` accepts ``"a,b"``. Parses to a tuple."""

    def __init__(self, item: Param | None = None, *, sep: str = ",", min_items: int = 1,
                 default: Any = None, required: bool = False, tunable: bool = False,
                 description: str = "") -> None:
        super().__init__(default=default, required=required, tunable=tunable,
                         description=description)
        self.item = item
        self.sep = sep
        self.min_items = min_items

    def _parse(self, raw: str) -> tuple[Any, ...]:
        if raw.startswith("[") and raw.endswith("]"):
            # The SDK sends lists JSON-encoded ('["msd", "ssd"]'); '[msd,ssd]' is accepted too.
            raw = self.sep.join(p.strip().strip("'\"") for p in raw[1:-1].split(","))
        parts = [p.strip() for p in raw.split(self.sep)] if raw else []
        if len(parts) < self.min_items or any(p == "" for p in parts):
            raise ValueError(raw)
        if self.item is None:
            return tuple(parts)
        items = []
        for part in parts:
            try:
                items.append(self.item._parse(part))
            except Rejected:
                raise
            except (ValueError, SyntaxError, TypeError):
                raise Rejected(f"{part!r} is not accepted") from None
        return tuple(items)

    def accepted(self) -> str:
        what = f"a {self.sep!r}-separated list"
        if self.item is not None:
            what += f" of items each {self.item.accepted()}"
        return what

    def format(self, value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return self.sep.join(str(v) for v in value)
        return str(value)

    def valid_example(self) -> str:
        if self.default is not None:
            return self.format(self.default)
        return self.item.valid_example() if self.item is not None else "x"

    def invalid_examples(self) -> list[str]:
        bad = ["", f"a{self.sep}{self.sep}b"]
        if self.item is not None:
            bad += [v for v in self.item.invalid_examples() if v and self.sep not in v]
        return bad


class IntList(Param):
    """A list of integers written as ``(1,0,-1)``, ``[1,0,-1]`` or ``1,0,-1``; with
    ``nested=True`` a list of such lists (``[[0,1],[2,3]]``). Items may be bounded."""

    def __init__(self, min: int | None = None, max: int | None = None, *, nested: bool = False,
                 default: Any = None, required: bool = False, tunable: bool = False,
                 description: str = "") -> None:
        super().__init__(default=default, required=required, tunable=tunable,
                         description=description)
        self.min = min
        self.max = max
        self.nested = nested

    def _item(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(value)
        if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max):
            raise ValueError(value)
        return value

    def _flat(self, value: object) -> list[int]:
        if isinstance(value, int):
            value = (value,)
        if not isinstance(value, (list, tuple)):
            raise TypeError(value)
        return [self._item(v) for v in value]

    def _parse(self, raw: str) -> Any:
        if len(raw) > 100_000:
            raise ValueError("too long")
        value = ast.literal_eval(raw)
        if not self.nested:
            return tuple(self._flat(value))
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(raw)
        if all(isinstance(v, int) for v in value):  # "[0,1]": one group
            return [self._flat(value)]
        return [self._flat(v) for v in value]

    def accepted(self) -> str:
        bounds = ""
        if self.min is not None and self.max is not None:
            bounds = f" in [{self.min}, {self.max}]"
        elif self.min is not None:
            bounds = f" >= {self.min}"
        elif self.max is not None:
            bounds = f" <= {self.max}"
        if self.nested:
            return f"a list of lists of integers{bounds}, like [[0, 1], [2, 3]]"
        return f"a list of integers{bounds}, like (1, 0, -1)"

    def format(self, value: Any) -> str:
        if self.nested:
            return "[" + ",".join("[" + ",".join(map(str, g)) + "]" for g in value) + "]"
        return "(" + ",".join(map(str, value)) + ")"

    def invalid_examples(self) -> list[str]:
        bad = ["abc", "(1, 'a')", "__import__('os')"]
        if self.min is not None:
            bad.append(f"[[{self.min - 1}]]" if self.nested else f"({self.min - 1},)")
        if self.max is not None:
            bad.append(f"[[{self.max + 1}]]" if self.nested else f"({self.max + 1},)")
        return bad

    def valid_example(self) -> str:
        low = self.min if self.min is not None else 0
        return f"[[{low}]]" if self.nested else f"({low},)"


# ------------------------------------------------------------------------------------- channels


def split_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``"text/csv; label_size=1"`` -> ``("text/csv", {"label_size": "1"})`` (type lower-cased)."""
    base, *rest = content_type.split(";")
    params: dict[str, str] = {}
    for part in rest:
        key, sep, value = part.partition("=")
        if not sep:
            continue
        params[key.strip().lower()] = value.strip().strip('"')
    return base.strip().lower(), params


@dataclass(frozen=True)
class ChannelSpec:
    """One input channel: whether it is required and which content types it takes.

    ``content_types`` maps each accepted media type (lower case, no parameters) to the data
    format name the algorithm reads (``{"text/csv": "csv", "csv": "csv"}``); ``parameters``
    restricts media-type parameters (``{"label_size": ("1",)}``); ``default_content_type`` is
    used when the channel has no ContentType.
    """

    required: bool = False
    content_types: Mapping[str, str] = field(default_factory=dict)
    default_content_type: str | None = None
    parameters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    input_modes: tuple[str, ...] = ("File",)
    compression_types: tuple[str, ...] = ("None", "Gzip")
    description: str = ""

    def data_format(self, channel: str, content_type: str | None) -> str:
        """The data format for ``content_type`` or a :class:`ChannelError` that says why not."""
        if content_type is None or content_type == "":
            if self.default_content_type is None:
                raise ChannelError(channel, f"Channel '{channel}' needs a ContentType; "
                                            f"accepted: {self._listed()}.")
            content_type = self.default_content_type
        base, params = split_content_type(content_type)
        if base not in self.content_types:
            raise ChannelError(channel, f"Channel '{channel}' does not accept ContentType "
                                        f"{content_type!r}; accepted: {self._listed()}.")
        for key, value in params.items():
            allowed = self.parameters.get(key)
            if allowed is None:
                continue  # parameters we do not know (charset, ...) are ignored
            if value not in allowed:
                choices = ", ".join(f"{key}={a}" for a in allowed)
                raise ChannelError(channel, f"Channel '{channel}' ContentType {content_type!r}"
                                            f" is not accepted: only {choices} is supported.")
        return self.content_types[base]

    def _listed(self) -> str:
        return ", ".join(self.content_types)


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


# ------------------------------------------------------------------------------------ algorithm


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
            content_type, mode, compression = _channel_config(config)
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


def channel_configs(input_data_config: Iterable[Mapping[str, Any]],
                    training_input_mode: str | None = None) -> dict[str, dict[str, Any]]:
    """CreateTrainingJob's ``InputDataConfig`` list as ``validate`` takes it: channel name ->
    {ContentType, TrainingInputMode, CompressionType}, the channel's InputMode falling back to
    ``AlgorithmSpecification.TrainingInputMode`` (the shape of ``inputdataconfig.json``)."""
    out: dict[str, dict[str, Any]] = {}
    for channel in input_data_config:
        entry: dict[str, Any] = {}
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        mode = channel.get("InputMode") or training_input_mode
        if mode:
            entry["TrainingInputMode"] = mode
        if channel.get("CompressionType"):
            entry["CompressionType"] = channel["CompressionType"]
        out[channel["ChannelName"]] = entry
    return out


def _channel_config(config: Any) -> tuple[str | None, str | None, str | None]:
    """(content type, input mode, compression) from a content type or a channel config."""
    if config is None or isinstance(config, str):
        return config, None, None
    if isinstance(config, Mapping):
        mode = config.get("TrainingInputMode") or config.get("InputMode")
        return config.get("ContentType"), mode, config.get("CompressionType")
    raise TypeError(f"channel config must be a content type or a mapping, not {config!r}")
