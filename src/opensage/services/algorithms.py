"""The server's view of the built-in algorithms: which image runs what, and its checks.

Only ``opensage.algorithms.registry`` is imported, never an algorithm's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from opensage.errors import ValidationException

if TYPE_CHECKING:  # imported when first looked up: the server starts without the algorithms
    from opensage.algorithms.registry import Algorithm


@dataclass(frozen=True)
class BuiltinAlgorithm:
    entry: Algorithm

    @property
    def module(self) -> str:
        return self.entry.module

    @property
    def environment(self) -> str | None:
        """The framework environment it runs in (``builtin-torch``), None: the server's."""
        return self.entry.environment

    def validate(self, hyperparameters: dict[str, str], channels: dict[str, str | None],
                 input_mode: str) -> None:
        from opensage.algorithms.errors import SpecError

        try:
            self.entry.validate(hyperparameters, channels)
        except SpecError as err:
            raise ValidationException(str(err)) from None

    @property
    def trains_across_hosts(self) -> bool:
        return self.entry.spec.trains_across_hosts

    def metric_definitions(self) -> list[dict[str, str]]:
        return [{"Name": m.name, "Regex": m.regex} for m in self.entry.spec.metrics]


class AlgorithmCatalog:
    def lookup(self, image: str) -> BuiltinAlgorithm | None:
        from opensage.algorithms import registry
        from opensage.algorithms.errors import SpecError

        try:
            entry = registry.lookup(image)
        except SpecError as err:  # an unsupported version, a missing extra
            raise ValidationException(str(err)) from None
        return BuiltinAlgorithm(entry) if entry is not None else None
