"""Handlers registered by operation name: ``create_model`` serves ``CreateModel``."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from botocore import xform_name
from botocore.model import ServiceModel

from opensage.services.wiring import Services

# A handler gets the server's services and the validated params; answers the output (or None).
Handler = Callable[[Services, dict[str, Any]], dict[str, Any] | None]


def collect_handlers(model: ServiceModel, *modules: ModuleType) -> dict[str, Handler]:
    """Map each operation of ``model`` to the function named after it in ``modules``."""
    by_snake = {xform_name(op): op for op in model.operation_names}
    handlers: dict[str, Handler] = {}
    for module in modules:
        for attr, fn in vars(module).items():
            op = by_snake.get(attr)
            if op is not None and callable(fn) and getattr(fn, "__module__", None) == module.__name__:
                if op in handlers:
                    raise RuntimeError(f"two handlers for {op}")
                handlers[op] = fn
    return handlers
