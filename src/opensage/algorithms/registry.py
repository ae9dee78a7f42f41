"""Training image URI -> built-in algorithm, the way fsspec maps a protocol to a class.

The algorithm is recognised by the image's ECR repository name (the last path segment, tag
and digest stripped), not by account or region::

    683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1  -> xgboost
    sagemaker-xgboost:1.7-1                                                -> xgboost

``lookup(image_uri)`` answers None for an image that is no built-in (a user's own container),
an :class:`Algorithm` for a supported one, and raises a :class:`~opensage.algorithms.errors.
SpecError` subclass for a built-in with an unsupported tag or whose packages are not
installed. Algorithm packages are imported only when looked up.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any

from opensage.algorithms.errors import SpecError
from opensage.algorithms.spec import AlgorithmSpec

__all__ = ["KNOWN", "Algorithm", "AlgorithmUnavailable", "ImageRef", "UnsupportedImage",
           "lookup", "parse_image_uri"]

# ECR repository name -> the algorithm's package (it exposes SPEC, MODULE, REQUIRES, EXTRA and
# check_image_tag(repository, tag) -> version; a deep-learning one also ENVIRONMENT, the
# framework environment it runs in, e.g. "builtin-torch").
KNOWN: Mapping[str, str] = MappingProxyType({
    "sagemaker-xgboost": "opensage.algorithms.xgboost",
    "xgboost": "opensage.algorithms.xgboost",
    "kmeans": "opensage.algorithms.kmeans",
    "knn": "opensage.algorithms.knn",
    "randomcutforest": "opensage.algorithms.randomcutforest",
    "linear-learner": "opensage.algorithms.linear_learner",
    "factorization-machines": "opensage.algorithms.factorization_machines",
    "ipinsights": "opensage.algorithms.ipinsights",
    "pca": "opensage.algorithms.pca",
    "ntm": "opensage.algorithms.ntm",
    "object2vec": "opensage.algorithms.object2vec",
    "seq2seq": "opensage.algorithms.seq2seq",
    "lda": "opensage.algorithms.lda",
    "blazingtext": "opensage.algorithms.blazingtext",
    "forecasting-deepar": "opensage.algorithms.deepar",
    "image-classification": "opensage.algorithms.image_classification",
})


class UnsupportedImage(SpecError):
    """A built-in algorithm's image whose tag (version) opensage does not support."""


class AlgorithmUnavailable(SpecError):
    """A built-in algorithm whose packages are not installed; the message names the extra."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed image URI: ``[registry/]path/repository[:tag][@digest]``."""

    uri: str
    registry: str | None
    repository: str
    tag: str | None
    digest: str | None


_DIGEST = re.compile(r"@(sha256:[0-9a-fA-F]+)$")


def parse_image_uri(uri: str) -> ImageRef:
    """Split an image URI into registry, repository (last path segment), tag and digest."""
    rest = uri.strip()
    digest = None
    match = _DIGEST.search(rest)
    if match:
        digest, rest = match.group(1), rest[: match.start()]
    registry = None
    path = rest
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    last = path.rsplit("/", 1)[-1]
    repository, sep, tag = last.partition(":")
    return ImageRef(uri=uri, registry=registry, repository=repository.lower(),
                    tag=tag if sep and tag else None, digest=digest)


@dataclass(frozen=True)
class Algorithm:
    """A built-in algorithm that an image URI names."""

    name: str
    image: ImageRef
    version: str
    spec: AlgorithmSpec
    module: str  # run as: python -m <module> train
    package: ModuleType
    # The framework environment whose interpreter runs it (``runner.environments.
    # builtin_environment``), None for the server's own: REQUIRES are then that environment's.
    environment: str | None = None

    def command(self, python: str | None = None) -> list[str]:
        """The argv that runs a training job (in the job directory's environment)."""
        return [python or sys.executable, "-m", self.module, "train"]

    def validate(self, hyperparameters: Mapping[str, str],
                 channels: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``spec.validate``: typed hyperparameters, or a SpecValidationError."""
        return self.spec.validate(hyperparameters, channels)


def preload_modules() -> list[str]:
    """Modules a fork server imports so that built-in jobs start without import time: those
    of every built-in whose packages are installed."""
    modules: list[str] = []
    for target in sorted(set(KNOWN.values())):
        package = importlib.import_module(target)
        if getattr(package, "ENVIRONMENT", None) is not None:
            continue  # runs in its own environment's interpreter, never forked
        if all(importlib.util.find_spec(name) is not None for name in package.REQUIRES):
            modules += [target, *getattr(package, "PRELOAD", package.REQUIRES)]
    return modules


def lookup(image_uri: str) -> Algorithm | None:
    """The built-in algorithm ``image_uri`` names, or None when it names none."""
    image = parse_image_uri(image_uri)
    target = KNOWN.get(image.repository)
    if target is None:
        return None
    package = importlib.import_module(target)
    try:
        version = package.check_image_tag(image.repository, image.tag)
    except SpecError as e:
        raise UnsupportedImage(str(e)) from None
    environment: str | None = getattr(package, "ENVIRONMENT", None)
    missing = [] if environment is not None else [
        name for name in package.REQUIRES if importlib.util.find_spec(name) is None]
    if missing:
        raise AlgorithmUnavailable(
            f"The {package.SPEC.name} algorithm ({image.repository}) needs "
            f"{', '.join(missing)}, which is not installed on this server: install opensage "
            f"with the '{package.EXTRA}' extra (pip install 'opensage[{package.EXTRA}]').")
    return Algorithm(name=package.SPEC.name, image=image, version=version, spec=package.SPEC,
                     module=package.MODULE, package=package, environment=environment)
