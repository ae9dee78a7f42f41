"""The user's own images through a container engine (see :mod:`.engine`)."""

from opensage.containers.engine import (
    CONTAINER_PORT,
    ContainerEngine,
    ContainerError,
    ContainerProcess,
    ContainerSpec,
    Mount,
    engine_sockets,
    engine_url,
    find_engine,
    missing_image,
    no_engine_reason,
)

__all__ = ["CONTAINER_PORT", "ContainerEngine", "ContainerError", "ContainerProcess",
           "ContainerSpec", "Mount", "engine_sockets", "engine_url", "find_engine", "missing_image",
           "no_engine_reason"]
