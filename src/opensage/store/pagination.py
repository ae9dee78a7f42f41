"""Opaque pagination tokens, one format for every list the server answers.

A token carries the keyset position of the last item returned (its sort key, then a unique
tie-breaker) and a fingerprint of the query it belongs to: items inserted between pages never
shift or repeat what a caller sees, and a token replayed against another query (another
filter, sort or resource) is refused instead of silently skipping rows. Each protocol refuses
a bad token with its own error, so the error is a parameter.

``page`` applies the same keyset rule to a list already sorted in memory (``Search``, the
trials of a tuning job, autoscaling's ``Describe*``); ``ResourceStore.list`` applies it in SQL.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from opensage.errors import ValidationException

T = TypeVar("T")
Invalid = Callable[[str], Exception]


def _invalid_token(message: str) -> Exception:
    return ValidationException(message)


def fingerprint(query: Sequence[Any]) -> str:
    """A short digest of what a list was asked for (kind, filters, sort)."""
    text = json.dumps(list(query), separators=(",", ":"), default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode(query: Sequence[Any], position: Sequence[Any]) -> str:
    """A token that resumes ``query`` after ``position`` (a JSON-able keyset position)."""
    raw = json.dumps([fingerprint(query), list(position)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, query: Sequence[Any], size: int | None = None,
           invalid: Invalid = _invalid_token) -> tuple[Any, ...]:
    """The position (``size`` values long, if given) a token made by ``encode(query, ...)``
    carries; nested lists come back as tuples, so positions compare as the keys they were
    made from."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        found, position = json.loads(raw)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise invalid("Invalid pagination token") from None
    if not isinstance(position, list) or size not in (None, len(position)):
        raise invalid("Invalid pagination token")
    if found != fingerprint(query):
        raise invalid("Invalid pagination token: it belongs to a different list request")
    return _tuples(position)


def page(items: Sequence[T], key: Callable[[T], tuple[Any, ...]], *, query: Sequence[Any],
         token: str | None, limit: int, descending: bool = False,
         invalid: Invalid = _invalid_token) -> tuple[list[T], str | None]:
    """One page of ``items`` (already sorted by ``key``, reversed when ``descending``) after
    the position ``token`` carries, and the token of the next page (None on the last)."""
    rest = list(items)
    if token:
        after = decode(token, query, invalid=invalid)
        try:
            rest = [i for i in rest if (key(i) < after if descending else key(i) > after)]
        except TypeError:  # a forged position of another shape
            raise invalid("Invalid pagination token") from None
    taken = rest[:limit]
    more = len(rest) > limit
    return taken, encode(query, key(taken[-1])) if more else None


def _tuples(values: list[Any]) -> tuple[Any, ...]:
    return tuple(_tuples(v) if isinstance(v, list) else v for v in values)
