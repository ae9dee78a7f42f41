"""Input channels of a built-in: which are required, which content types, input modes and
compressions each takes, and the channel settings of a training request in one shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opensage.algorithms.errors import ChannelError

__all__ = ["ChannelSpec", "channel_configs", "channel_settings", "split_content_type"]


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


def channel_settings(config: Any) -> tuple[str | None, str | None, str | None]:
    """(content type, input mode, compression) from a content type or a channel config."""
    if config is None or isinstance(config, str):
        return config, None, None
    if isinstance(config, Mapping):
        mode = config.get("TrainingInputMode") or config.get("InputMode")
        return config.get("ContentType"), mode, config.get("CompressionType")
    raise TypeError(f"channel config must be a content type or a mapping, not {config!r}")
