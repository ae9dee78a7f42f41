"""The JSONPath subset of ``DataProcessing`` (``InputFilter``, ``OutputFilter``): ``$``,
``$.key``, ``$[i]``, ``$[a:b]``, ``$[i,j:]``, ``$['k1','k2']``, over CSV rows (as arrays)
and JSON records."""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[([^\]]*)\]")
Selector = tuple[str, Any]  # ("key", name) | ("items", [int | slice | str, ...])


def parse_path(path: str) -> list[Selector]:
    """``$``, ``$.a.b``, ``$[0]``, ``$[1:]``, ``$[0,-1]``, ``$[0,5:]``, ``$['a','b']``."""
    path = path.strip()
    if not path.startswith("$"):
        raise ValueError(f"JSONPath {path!r} must start with $")
    steps: list[Selector] = []
    pos = 1
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            raise ValueError(f"unsupported JSONPath {path!r}")
        pos = match.end()
        if match.group(1) is not None:
            steps.append(("key", match.group(1)))
            continue
        items: list[Any] = []
        for part in match.group(2).split(","):
            part = part.strip()
            if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
                items.append(part[1:-1])
            elif ":" in part:
                start, _, stop = part.partition(":")
                items.append(slice(int(start) if start.strip() else None,
                                   int(stop) if stop.strip() else None))
            elif part == "*":
                items.append(slice(None))
            else:
                try:
                    items.append(int(part))
                except ValueError:
                    raise ValueError(f"unsupported JSONPath {path!r}") from None
        steps.append(("items", items))
    return steps


def apply_path(steps: list[Selector], value: Any) -> Any:
    for kind, arg in steps:
        if kind == "key":
            if not isinstance(value, dict):
                raise TypeError(f"cannot select key {arg!r} from a {type(value).__name__}")
            value = value[arg]
            continue
        if isinstance(value, dict):
            if not all(isinstance(i, str) for i in arg):
                raise TypeError("an object is selected by quoted keys")
            value = value[arg[0]] if len(arg) == 1 else {k: value[k] for k in arg}
            continue
        if not isinstance(value, list):
            raise TypeError(f"cannot index a {type(value).__name__}")
        picked: list[Any] = []
        for item in arg:
            if isinstance(item, slice):
                picked.extend(value[item])
            elif isinstance(item, int):
                if not -len(value) <= item < len(value):
                    raise IndexError(f"index {item} is out of range for {len(value)} fields")
                picked.append(value[item])
            else:
                raise TypeError(f"cannot select key {item!r} from an array")
        single = len(arg) == 1 and isinstance(arg[0], int)
        value = picked[0] if single else picked
    return value


def compiled(path: str | None) -> list[Selector] | None:
    """The steps of ``path``; None for no filter (none, or ``$``)."""
    if not path or path.strip() == "$":
        return None
    return parse_path(path)

