"""Hyperparameter constraints, in the style of scikit-learn's parameter constraints.

A built-in declares each hyperparameter once, as a constraint object::

    HYPERPARAMETERS = {
        "num_round": Int(min=1, required=True, tunable=True),
        "eta": Float(0, 1, default=0.3, tunable=True),
        "booster": Choice(["gbtree", "gblinear", "dart"], default="gbtree"),
    }

Every value arrives as a string (the API's HyperParameters is ``map<string,string>``); each
constraint's ``parse(name, raw)`` turns it into a typed value or raises
:class:`HyperparameterError` whose message says which hyperparameter, what is accepted and what
was given. A constraint also describes itself (``specification``, DescribeAlgorithm's
HyperParameterSpecification, with the range tuning jobs are checked against) and offers
invalid examples for generated tests.
"""

from __future__ import annotations

import ast
import math
import re
import sys
from collections.abc import Iterable
from typing import Any, Literal

from opensage.algorithms.errors import HyperparameterError

__all__ = ["Bool", "Choice", "Float", "Int", "IntList", "OrAuto", "Param", "Rejected",
           "StrList", "Text"]

Closed = Literal["both", "left", "right", "neither"]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


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
        return self.words[0]

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

