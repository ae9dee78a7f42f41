"""Input checking and output shaping driven by botocore's service models.

``decode_input`` walks a request value along its input shape, converting wire types
(timestamps, blobs) and collecting every constraint AWS checks — required members, types,
lengths, ranges, enums and patterns (botocore's client-side ParamValidator skips the last
two) — into one ``ValidationException`` worded as AWS words it.
``encode_output`` trims a handler's plain dict to the output shape for a JSON protocol.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

import regex
from botocore.model import Shape

from opensage.errors import SerializationException, ValidationException

MAX_REPORTED_ERRORS = 10
# How deep a request may nest along its input shape. The served models' deepest
# non-recursive input is 11 levels (application-autoscaling PutScalingPolicy); only recursive
# shapes (SageMaker's SearchExpression) go further, and AWS bounds those too.
MAX_NESTING = 32
_PATTERNS: dict[str, regex.Pattern[str] | None] = {}
# Java spells "any astral character" as a UTF-16 surrogate-pair range; Python strings hold
# code points.
_JAVA_SURROGATES = (r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF")


def compile_pattern(pattern: str) -> regex.Pattern[str] | None:
    """The models' Java regexes (``\\p{L}``, ``\\p{Alnum}``...), read by the ``regex`` module.

    A pattern it still cannot read is not enforced rather than refusing valid requests.
    """
    if pattern not in _PATTERNS:
        try:
            _PATTERNS[pattern] = regex.compile(pattern.replace(*_JAVA_SURROGATES),
                                               regex.DOTALL | regex.V0)
        except regex.error:
            _PATTERNS[pattern] = None
    return _PATTERNS[pattern]


def member_path(parent: str, name: str) -> str:
    name = name[:1].lower() + name[1:]
    return f"{parent}.{name}" if parent else name


class _Problems:
    def __init__(self) -> None:
        self.constraints: list[str] = []
        self.serialization: str | None = None
        self.too_deep: str | None = None
        self.depth = 0

    def violated(self, value: Any, path: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{value}'"
        self.constraints.append(
            f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

    def wrong_type(self, path: str, expected: str, value: Any) -> None:
        if self.serialization is None:
            self.serialization = (f"Expected {expected} at '{path}' but found "
                                  f"{_json_type(value)} ({value!r:.60})")

    def not_unicode(self, path: str) -> None:
        if self.serialization is None:
            self.serialization = (f"Invalid string at '{path}': it holds a lone UTF-16 "
                                  "surrogate, which is no Unicode character")

    def raise_if_any(self) -> None:
        if self.too_deep:
            raise ValidationException(f"Value at '{self.too_deep}' is nested more than "
                                      f"{MAX_NESTING} levels deep")
        if self.serialization:
            raise SerializationException(self.serialization)
        if self.constraints:
            n = len(self.constraints)
            shown = "; ".join(self.constraints[:MAX_REPORTED_ERRORS])
            noun = "error" if n == 1 else "errors"
            raise ValidationException(f"{n} validation {noun} detected: {shown}")


def decode_input(shape: Shape | None, value: Any) -> dict[str, Any]:
    """Check and convert a request document; raise the AWS error that names every problem."""
    if shape is None:
        return {}
    if value is None:
        value = {}
    problems = _Problems()
    result = _decode(shape, value, "", problems)
    problems.raise_if_any()
    return result if isinstance(result, dict) else {}


def _decode(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    decoder = _DECODERS.get(shape.type_name)
    if decoder is None:
        return value
    if shape.type_name not in _NESTED:
        return decoder(shape, value, path, p)
    if p.depth >= MAX_NESTING:
        p.too_deep = p.too_deep or path.split(".", 1)[0]
        return None
    p.depth += 1
    try:
        return decoder(shape, value, path, p)
    finally:
        p.depth -= 1


def _decode_structure(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    if not isinstance(value, dict):
        p.wrong_type(path or "request", "an object", value)
        return None
    members = shape.members
    out: dict[str, Any] = {}
    stray = next((k for k in value if not isinstance(k, str)), None)
    if stray is not None:  # CBOR maps may have any key; a structure's are member names
        p.wrong_type(path or "request", "member names", stray)
        return None
    for name in shape.required_members:
        if value.get(name) is None:
            p.violated(None, member_path(path, name), "Member must not be null")
    for name, item in value.items():
        member = members.get(name)
        if member is None or item is None:
            continue  # unknown members are ignored, as AWS's JSON services do
        out[name] = _decode(member, item, member_path(path, name), p)
    return out


def _decode_list(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    if not isinstance(value, list):
        p.wrong_type(path, "a list", value)
        return None
    _check_size(shape, value, len(value), path, p, "length")
    member = shape.member
    return [_decode(member, item, f"{path}.{i}.member", p) for i, item in enumerate(value, 1)]


def _decode_map(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    if not isinstance(value, dict):
        p.wrong_type(path, "a map", value)
        return None
    _check_size(shape, value, len(value), path, p, "length")
    key_shape, value_shape = shape.key, shape.value
    out = {}
    for k, v in value.items():
        _decode(key_shape, k, f"{path}.key", p)
        out[k] = _decode(value_shape, v, f"{path}.{k}", p)
    return out


def _decode_string(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    if not isinstance(value, str):
        p.wrong_type(path, "a string", value)
        return None
    if not value.isascii() and not _encodable(value):
        p.not_unicode(path)
        return None
    _check_size(shape, value, len(value), path, p, "length")
    enum = shape.enum
    if enum and value not in enum:
        p.violated(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
    pattern = shape.metadata.get("pattern")
    if pattern:
        compiled = compile_pattern(pattern)
        if compiled is not None and compiled.fullmatch(value) is None:
            p.violated(value, path,
                       f"Member must satisfy regular expression pattern: {pattern}")
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _decode_integer(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            p.wrong_type(path, "an integer", value)
            return None
    bits = _INTEGER_BITS[shape.type_name]
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        p.wrong_type(path, f"a {bits}-bit integer", value)
        return None
    _check_range(shape, value, path, p)
    return value


def _decode_float(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        p.wrong_type(path, "a number", value)
        return None
    _check_range(shape, value, path, p)
    return float(value)


def _decode_boolean(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    if not isinstance(value, bool):
        p.wrong_type(path, "a boolean", value)
        return None
    return value


def _decode_timestamp(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    parsed = parse_timestamp(value)
    if parsed is None:
        p.wrong_type(path, "a timestamp", value)
    return parsed


def _decode_blob(shape: Shape, value: Any, path: str, p: _Problems) -> Any:
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        p.wrong_type(path, "base64 data", value)
        return None


def _check_size(shape: Shape, value: Any, size: int, path: str, p: _Problems, what: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        p.violated(_shown(value), path, f"Member must have {what} greater than or equal to {low}")
    if high is not None and size > high:
        p.violated(_shown(value), path, f"Member must have {what} less than or equal to {high}")


def _check_range(shape: Shape, value: float, path: str, p: _Problems) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        p.violated(value, path, f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        p.violated(value, path, f"Member must have value less than or equal to {high}")


def _shown(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 100:
        return value[:100] + "..."
    return value


# AWS reads ``integer`` members as 32-bit and ``long`` as 64-bit numbers: a value outside
# is a serialization error there (and would overflow the store's integers here).
_INTEGER_BITS = {"integer": 32, "long": 64}
_NESTED = frozenset({"structure", "list", "map"})
_DECODERS: dict[str, Callable[[Shape, Any, str, _Problems], Any]] = {
    "structure": _decode_structure,
    "list": _decode_list,
    "map": _decode_map,
    "string": _decode_string,
    "integer": _decode_integer,
    "long": _decode_integer,
    "float": _decode_float,
    "double": _decode_float,
    "boolean": _decode_boolean,
    "timestamp": _decode_timestamp,
    "blob": _decode_blob,
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


def parse_timestamp(value: Any) -> dt.datetime | None:
    """Epoch seconds (the JSON protocols' default) or ISO 8601, as UTC datetimes."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(value)
    if isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            return _from_epoch(seconds)
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _from_epoch(seconds: float) -> dt.datetime | None:
    """None for NaN, infinities and instants outside years 1-9999 (a caller's error)."""
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _epoch(value: dt.datetime) -> Any:
    return round(value.timestamp(), 3)


def encode_output(shape: Shape | None, value: Any,
                  timestamp: Callable[[dt.datetime], Any] = _epoch) -> Any:
    """Trim a plain result to the output shape, in an RPC protocol's wire types (timestamps
    as ``timestamp`` renders them: epoch seconds for JSON, datetimes for CBOR)."""
    if shape is None or value is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return None
        members = shape.members
        out = {}
        for name, member in members.items():
            item = value.get(name)
            if item is not None:
                encoded = encode_output(member, item, timestamp)
                if encoded is not None:
                    out[name] = encoded
        return out
    if kind == "list":
        return [encode_output(shape.member, v, timestamp)
                for v in value]
    if kind == "map":
        return {k: encode_output(shape.value, v, timestamp)
                for k, v in value.items()}
    if kind == "timestamp":
        parsed = parse_timestamp(value)
        return timestamp(parsed) if parsed else None
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else value
        return base64.b64encode(raw).decode()
    return value
