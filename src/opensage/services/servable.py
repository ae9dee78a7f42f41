"""What serves a model's container: shared by endpoints and batch transform.

A built-in algorithm's image is served by its ``serve`` module (forkable workers; a
deep-learning built-in's in its framework environment, ``builtin-torch``, with only the
opensage package on the interpreter's path). A
framework image (``sagemaker-scikit-learn``, ``pytorch-inference``, ``tensorflow-inference``,
``sagemaker-xgboost`` with ``SAGEMAKER_PROGRAM``, ... training or inference repositories
alike) is served in script mode: the framework's environment runs ``framework_worker.py``
with the user's inference handlers, found as the inference containers find them:

- ``SAGEMAKER_SUBMIT_DIRECTORY`` absent or under ``/opt/ml/model`` (the SDK's repack puts
  ``code/`` in ``model.tar.gz``): that directory of the unpacked model;
- an ``s3://`` ``sourcedir.tar.gz``: fetched and unpacked (safely) beside the model;
- ``file://`` (the SDK's local code): that directory.

A ``requirements.txt`` in the code directory selects an overlay environment.

Any other image is the user's own: its container runs ``serve`` through the container
engine, when the server has one (CreateModel refuses such an image otherwise).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from opensage.containers import ContainerEngine, no_engine_reason
from opensage.errors import AwsError, ValidationException
from opensage.runner.environments import (
    EnvironmentBuildError,
    Framework,
    builtin_environment,
    framework_for_image,
)
from opensage.runner.toolkit.contract import aws_environment
from opensage.services.algorithms import AlgorithmCatalog
from opensage.services.context import Context
from opensage.serving.artifacts import ArtifactError, archive_limits
from opensage.serving.artifacts import code_directory as artifact_code_directory
from opensage.serving.process import WorkerProgram


class NotServable(Exception):
    """The image cannot be served; the message says why (a FailureReason's tail)."""


@dataclass(frozen=True)
class Servable:
    """A built-in algorithm's ``module`` (in its ``environment`` when it declares one), a
    ``framework`` served in script mode, or the user's own ``image``."""

    module: str | None = None
    framework: Framework | None = None
    image: str | None = None
    environment: str | None = None


def script_mode(environment: Mapping[str, str]) -> bool:
    return bool(environment.get("SAGEMAKER_PROGRAM"))


def check_image(algorithms: AlgorithmCatalog, image: str, environment: Mapping[str, str],
                containers: ContainerEngine | None) -> None:
    """CreateModel's check, as AWS refuses an image it cannot find: a framework image whose
    version cannot be had here raises ``UnsupportedFramework`` (a ValidationException); an
    own image without a container engine, a ValidationException saying so."""
    if framework_for_image(image, script_mode=script_mode(environment)) is not None:
        return
    if containers is None and not _builtin(algorithms, image):
        raise ValidationException(no_engine_reason(image))


def _builtin(algorithms: AlgorithmCatalog, image: str) -> bool:
    try:
        return algorithms.lookup(image) is not None
    except AwsError:  # a built-in's repository: deploying says what is wrong with it
        return True


def servable(algorithms: AlgorithmCatalog, image: str, environment: Mapping[str, str],
             containers: ContainerEngine | None = None) -> Servable:
    """What serves ``image`` with the container's ``environment``."""
    try:
        framework = framework_for_image(image, script_mode=script_mode(environment))
    except AwsError as e:
        raise NotServable(f"Image {image} cannot be served: {e.message}") from None
    if framework is not None:
        return Servable(framework=framework)
    if not _builtin(algorithms, image):
        if containers is None:
            raise NotServable(no_engine_reason(image))
        return Servable(image=image)
    module, needs = serving_module(algorithms, image)
    return Servable(module=module, environment=needs)


def serving_module(algorithms: AlgorithmCatalog, image: str) -> tuple[str, str | None]:
    """The module of the built-in algorithm whose ``serve`` loads models of ``image``, and
    the framework environment it runs in (None: the server's)."""
    try:
        algorithm = algorithms.lookup(image)
    except AwsError as e:
        raise NotServable(f"Image {image} cannot be served: {e.message}") from None
    if algorithm is None:
        raise NotServable(f"Image {image} is not a built-in algorithm or a framework image "
                          "opensage can serve.")
    if importlib.util.find_spec(algorithm.module + ".serve") is None:
        raise NotServable(f"The {algorithm.module} algorithm has no inference handler yet.")
    return algorithm.module, algorithm.environment


def worker_program(ctx: Context, served: Servable, model_dir: Path, work_dir: Path,
                   environment: Mapping[str, str],
                   log: Callable[[str], None] | None = None, *,
                   here: bool = True) -> WorkerProgram:
    """The program of the model's workers, once its artifact is unpacked in ``model_dir``:
    for a framework, its user code fetched and its environment built (which may take
    minutes the first time; ``log`` hears the progress). Raises ``NotServable``.

    ``here`` False: the workers run on other machines (Ray nodes), each getting the
    environment and the user's code on its own (``serving.remote_instance``): nothing is
    built or fetched here, the program names the environment and where it would be."""
    if served.image is not None:
        return WorkerProgram.own_image(served.image)
    settings = ctx.settings  # boto3 in the handlers calls this server, as a job's does
    aws = aws_environment(settings.local_url, settings.region)
    if served.framework is None:
        assert served.module is not None
        if served.environment is None:
            return WorkerProgram.builtin(served.module)
        builtin = builtin_environment(served.environment)
        if not here:
            return WorkerProgram.builtin(
                served.module, python=ctx.environments.location(builtin) / "bin" / "python",
                path=ctx.environments.opensage_path(), framework=builtin)
        try:
            python = ctx.environments.python(builtin, None, log)
        except EnvironmentBuildError as e:
            raise NotServable(f"The {builtin.key} environment could not be built: "
                              f"{e}") from None
        return WorkerProgram.builtin(served.module, python=python,
                                     path=ctx.environments.opensage_path(), framework=builtin)
    framework = served.framework
    if not here:
        return WorkerProgram.framework(
            framework.name, ctx.environments.location(framework) / "bin" / "python", None,
            aws, spec=framework)
    code_dir = code_directory(ctx, model_dir, work_dir, environment)
    requirements = code_dir / "requirements.txt" if code_dir is not None else None
    if requirements is not None and not requirements.is_file():
        requirements = None
    try:
        python = ctx.environments.python(framework, requirements, log)
    except AwsError as e:
        raise NotServable(e.message) from None
    except EnvironmentBuildError as e:  # its message is the reason
        raise NotServable(f"The {framework.name} {framework.version} environment could not "
                          f"be built: {e}") from None
    return WorkerProgram.framework(framework.name, python, code_dir, aws, spec=framework)


def code_directory(ctx: Context, model_dir: Path, work_dir: Path,
                   environment: Mapping[str, str]) -> Path | None:
    """Where the inference script lives, or None (the framework's default handlers); see
    ``serving.artifacts.code_directory``. Raises ``NotServable``."""
    try:
        return artifact_code_directory(ctx.objects, model_dir, work_dir, environment,
                                       archive_limits(ctx.settings))
    except ArtifactError as e:  # its message is the reason
        raise NotServable(str(e)) from None
