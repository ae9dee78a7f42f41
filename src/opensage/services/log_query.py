"""What CloudWatch Logs reads with: opaque pagination tokens and filter patterns."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opensage.errors import InvalidParameterException
from opensage.store import pagination

Matcher = Callable[[str], bool]


def encode_token(kind: str, *values: Any) -> str:
    """An opaque token of the ``kind`` of list it resumes, carrying a keyset position."""
    return pagination.encode((kind,), values)


def decode_token(token: str, expected: str, size: int) -> list[Any]:
    """``[expected, *position]`` of a token made by ``encode_token(expected, ...)`` with
    ``size - 1`` values."""
    return [expected, *pagination.decode(token, (expected,), size - 1, _invalid_token)]


def _invalid_token(message: str) -> Exception:
    return InvalidParameterException("The specified nextToken is invalid.")


@dataclass(frozen=True)
class TermPattern:
    """A term filter: every ``required`` term, at least one ``any_of`` (if given), no
    ``excluded`` term. Terms are case-sensitive substrings or ``%regex%`` expressions."""

    required: tuple[Matcher, ...] = ()
    any_of: tuple[Matcher, ...] = ()
    excluded: tuple[Matcher, ...] = ()

    def __call__(self, message: str) -> bool:
        return (all(m(message) for m in self.required)
                and (not self.any_of or any(m(message) for m in self.any_of))
                and not any(m(message) for m in self.excluded))


def parse_filter_pattern(pattern: str | None) -> Matcher | None:
    """A matcher for a Logs filter pattern; ``None`` when everything matches.

    Supported: plain terms (``ERROR``), quoted phrases (``"timed out"``), ``?term`` (any of),
    ``-term`` (none of) and ``%regex%`` terms. JSON (``{ $.x = 1 }``) and space-delimited
    (``[ip, user, ...]``) patterns are refused rather than silently matching nothing.
    """
    text = (pattern or "").strip()
    if not text:
        return None
    if text[0] in "{[":
        raise InvalidParameterException(
            "opensage supports term, phrase, ?term, -term and %regex% filter patterns only; "
            "JSON and space-delimited patterns are not supported")
    try:
        words = shlex.split(text, posix=True)
    except ValueError:
        raise InvalidParameterException(f"Invalid filter pattern: {pattern}") from None
    required: list[Matcher] = []
    any_of: list[Matcher] = []
    excluded: list[Matcher] = []
    for word in words:
        bucket = required
        if word[:1] == "?" and len(word) > 1:
            bucket, word = any_of, word[1:]
        elif word[:1] == "-" and len(word) > 1:
            bucket, word = excluded, word[1:]
        bucket.append(_term(word, pattern))
    if not (required or any_of or excluded):
        return None
    return TermPattern(tuple(required), tuple(any_of), tuple(excluded))


def _term(word: str, pattern: str | None) -> Matcher:
    if len(word) >= 2 and word[0] == word[-1] == "%":
        try:
            regex = re.compile(word[1:-1])
        except re.error:
            raise InvalidParameterException(f"Invalid filter pattern: {pattern}") from None
        return lambda message: regex.search(message) is not None
    return lambda message: word in message
