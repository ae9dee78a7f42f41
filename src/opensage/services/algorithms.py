"""The server's view of the built-in algorithms: which image runs what, and its checks.

Only ``opensage.algorithms.registry`` is imported, never an algorithm's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensage.errors import ValidationException


@dataclass(frozen=True)
class BuiltinAlgorithm:
    entry: Any  # the registry's Algorithm

    @property
    def module(self) -> str:
        return str(self.entry.module)

    def validate(self, hyperparameters: dict[str, str], channels: dict[str, str | None],
                 input_mode: str) -> None:
        from opensage.algorithms.errors import SpecError

        try:
            self.entry.validate(hyperparameters, channels)
        except SpecError as err:
            raise ValidationException(str(err)) from None

    def metric_definitions(self) -> list[dict[str, str]]:
        return [{"Name": m.name, "Regex": m.regex} for m in self.entry.spec.metrics]


class AlgorithmCatalog:
    def lookup(self, image: str) -> BuiltinAlgorithm | None:
        from opensage.algorithms import registry

        try:
            entry = registry.lookup(image)
        except registry.SpecError as err:  # an unsupported version, a missing extra
            raise ValidationException(str(err)) from None
        return BuiltinAlgorithm(entry) if entry is not None else None
