"""Which built-in algorithm serves a model's image: shared by endpoints and batch transform."""

from __future__ import annotations

import importlib.util

from opensage.errors import AwsError
from opensage.services.algorithms import AlgorithmCatalog


class NotServable(Exception):
    """The image cannot be served; the message says why (a FailureReason's tail)."""


def serving_module(algorithms: AlgorithmCatalog, image: str) -> str:
    """The module of the built-in algorithm whose ``serve`` loads models of ``image``."""
    try:
        algorithm = algorithms.lookup(image)
    except AwsError as e:
        raise NotServable(f"Image {image} cannot be served: {e.message}") from None
    if algorithm is None:
        raise NotServable(f"Image {image} is not a built-in algorithm opensage can serve.")
    if importlib.util.find_spec(algorithm.module + ".serve") is None:
        raise NotServable(f"The {algorithm.module} algorithm has no inference handler yet.")
    return algorithm.module
