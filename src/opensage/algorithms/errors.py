"""What a built-in's spec rejects: client errors (a 400 at CreateTrainingJob, a clean
``Failed`` inside a job), never crashes."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ChannelError", "HyperparameterError", "SpecError", "SpecValidationError"]


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

