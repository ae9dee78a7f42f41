"""Which framework image URIs script mode can run, and the locked packages of each environment.

A SageMaker framework image (``sagemaker-scikit-learn:1.2-1-cpu-py3``,
``pytorch-training:2.1.0-gpu-py310``...) names a framework and a version. Without Docker each
one runs in a Python environment (this machine's Python 3.11) holding the packages that
container ships which user scripts import. The lists are pinned (``==``) so that every machine
builds the same environment; the packages below them (what those need) are resolved by uv
from binary wheels only and recorded, frozen, next to the environment.

What each list is close to:

- ``sklearn`` ``1.2-1`` / ``1.4-2``: the scikit-learn container's requirements
  (``aws/sagemaker-scikit-learn-container``): scikit-learn, NumPy 1.x, SciPy, pandas, joblib,
  threadpoolctl, at the nearest versions that ship CPython 3.11 wheels. Its serving stack (MMS,
  gunicorn, Flask) is not installed: opensage serves in-process.
- ``xgboost`` ``1.7-1`` / ``3.0-5`` (framework mode only; without a script the image is the
  built-in algorithm): the XGBoost container's xgboost, scikit-learn, NumPy, SciPy, pandas.
  3.0-5 uses ``xgboost-cpu``, the same library without the CUDA kernels.
- ``pytorch`` (every 1.x and 2.x): the Deep Learning Container's torch, NumPy, pandas, but torch
  is the CPU build found in the wheelhouse (``OPENSAGE_WHEELHOUSE``), never a download: torch
  from the package index is a CUDA build of several GB. One environment serves every version.
- ``tensorflow`` 2.x: ``tensorflow-cpu`` (the DLC's CPU flavour) with its Keras, NumPy, pandas.
  Versions before 2.13 have no wheels for Python 3.11 and map to 2.13; after 2.18 to 2.18.
- ``huggingface`` (PyTorch flavour): the pytorch environment plus the tag's ``transformers``
  release (4.28 and later: earlier ones need tokenizers wheels that 3.11 lacks).

MXNet, Chainer and TensorFlow 1.x have no wheels for current Python: their images are refused
with a ValidationException naming what is supported.

Besides the script-mode frameworks, one environment serves opensage's own deep-learning
built-ins (NTM, Object2Vec, seq2seq...): ``builtin-torch`` (:func:`builtin_environment`), the
wheelhouse's CPU torch with what the algorithm code imports (NumPy, SciPy and pyarrow for
opensage's data readers, safetensors for the models, uvicorn for the built-in model worker), at
the versions opensage's own lock file holds, and Pillow (image classification's JPEG/PNG
decoding; not one of the server's packages). Those algorithms run ``python -m
opensage.algorithms.<name> train`` with that interpreter and a PYTHONPATH holding only the
``opensage`` package (``Environments.opensage_path``), never the server's other packages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opensage.algorithms.registry import parse_image_uri
from opensage.errors import ValidationException


@dataclass(frozen=True)
class Framework:
    """One script-mode environment: a framework at a SageMaker framework_version."""

    name: str  # "sklearn" | "pytorch" | "tensorflow" | "xgboost" | "huggingface"
    version: str  # the SageMaker framework_version as the image tag names it, e.g. "1.2-1"
    packages: tuple[str, ...]  # the locked pip requirement lines of its environment
    key: str  # directory-safe id, e.g. "sklearn-1.2-1"
    # Names in `packages` (unpinned there) that must come from the wheelhouse as a CPU build,
    # pinned at build time to the exact file found there (torch).
    from_wheelhouse: tuple[str, ...] = ()


class UnsupportedFramework(ValidationException):
    """A framework image/version that cannot be installed here; message names what is supported."""


# Shared pins: NumPy 1.x (the containers' scripts and pickles predate NumPy 2).
_SKLEARN_12 = ("scikit-learn==1.2.2", "numpy==1.24.4", "scipy==1.10.1", "pandas==1.5.3",
               "joblib==1.2.0", "threadpoolctl==3.1.0")
_SKLEARN_14 = ("scikit-learn==1.4.2", "numpy==1.26.4", "scipy==1.12.0", "pandas==2.2.2",
               "joblib==1.4.2", "threadpoolctl==3.5.0")

SKLEARN: dict[str, tuple[str, ...]] = {"1.2-1": _SKLEARN_12, "1.4-2": _SKLEARN_14}
XGBOOST: dict[str, tuple[str, ...]] = {
    "1.7-1": ("xgboost==1.7.6", *_SKLEARN_12),
    "3.0-5": ("xgboost-cpu==3.0.5", "scikit-learn==1.5.2", "numpy==1.26.4", "scipy==1.13.1",
              "pandas==2.2.3", "joblib==1.4.2", "threadpoolctl==3.5.0"),
}
PYTORCH: tuple[str, ...] = ("torch", "numpy==1.26.4", "pandas==2.2.3")
# tensorflow minor version -> pins (the NumPy each release was built against)
TENSORFLOW: dict[str, tuple[str, ...]] = {
    "2.13": ("tensorflow-cpu==2.13.1", "numpy==1.24.3", "pandas==2.2.3"),
    "2.14": ("tensorflow-cpu==2.14.1", "numpy==1.26.4", "pandas==2.2.3"),
    "2.15": ("tensorflow-cpu==2.15.1", "numpy==1.26.4", "pandas==2.2.3"),
    "2.16": ("tensorflow-cpu==2.16.2", "numpy==1.26.4", "pandas==2.2.3"),
    "2.17": ("tensorflow-cpu==2.17.1", "numpy==1.26.4", "pandas==2.2.3"),
    "2.18": ("tensorflow-cpu==2.18.1", "numpy==2.0.2", "pandas==2.2.3"),
}
HF_MIN_TRANSFORMERS = (4, 28)
# opensage's deep-learning built-ins: numpy/scipy/pyarrow as opensage's uv.lock pins them;
# Pillow decodes image classification's JPEG/PNG images (not a server package).
BUILTIN_TORCH: tuple[str, ...] = ("torch", "numpy==1.26.4", "scipy==1.17.1", "pyarrow==25.0.1",
                                  "safetensors==0.8.0", "uvicorn==0.54.0", "pillow==12.0.0")
BUILTIN_ENVIRONMENTS: dict[str, tuple[str, ...]] = {"builtin-torch": BUILTIN_TORCH}

REPOSITORIES: dict[str, tuple[str, ...]] = {
    "sklearn": ("sagemaker-scikit-learn",),
    "xgboost": ("sagemaker-xgboost",),
    "pytorch": ("pytorch-training", "pytorch-inference", "sagemaker-pytorch"),
    "tensorflow": ("tensorflow-training", "tensorflow-inference", "sagemaker-tensorflow",
                   "sagemaker-tensorflow-scriptmode", "sagemaker-tensorflow-serving"),
    "huggingface": ("huggingface-pytorch-training", "huggingface-pytorch-inference"),
}
_REFUSED: dict[str, str] = {  # repository -> why
    "mxnet-training": "MXNet has no wheels for Python 3.11",
    "mxnet-inference": "MXNet has no wheels for Python 3.11",
    "sagemaker-mxnet": "MXNet has no wheels for Python 3.11",
    "sagemaker-mxnet-serving": "MXNet has no wheels for Python 3.11",
    "sagemaker-chainer": "Chainer has no wheels for Python 3.11",
    "huggingface-tensorflow-training": "Hugging Face on TensorFlow is not supported",
    "huggingface-tensorflow-inference": "Hugging Face on TensorFlow is not supported",
    # PySparkProcessor: Spark needs a Java runtime, which no framework environment has
    "sagemaker-spark-processing": "Spark (PySparkProcessor, SparkJarProcessor) is not "
                                  "supported: it needs a Java runtime, which opensage does not "
                                  "install",
}
_BY_REPOSITORY = {repo: name for name, repos in REPOSITORIES.items() for repo in repos}
_VERSION_PART = re.compile(r"^\d+(\.\d+)*$")
_TRANSFORMERS = re.compile(r"^transformers(\d+(?:\.\d+)*)$")


def supported() -> list[tuple[str, str, tuple[str, ...]]]:
    """(framework, versions, image repositories) for the CLI and error messages."""
    return [
        ("sklearn", ", ".join(SKLEARN), REPOSITORIES["sklearn"]),
        ("xgboost", ", ".join(XGBOOST) + " (framework mode)", REPOSITORIES["xgboost"]),
        ("pytorch", "1.x, 2.x (CPU torch from the wheelhouse)", REPOSITORIES["pytorch"]),
        ("tensorflow", f"2.x (installs {', '.join(TENSORFLOW)})", REPOSITORIES["tensorflow"]),
        ("huggingface", "PyTorch flavour, transformers >= 4.28", REPOSITORIES["huggingface"]),
    ]


def supported_text() -> str:
    return "; ".join(f"{name} {versions}" for name, versions, _ in supported())


def framework_for_image(image_uri: str, *, script_mode: bool) -> Framework | None:
    """The framework an image URI names, None for no framework image (or built-in XGBoost).

    Raises UnsupportedFramework for a framework image whose version cannot be had here.
    """
    ref = parse_image_uri(image_uri)
    if ref.repository in _REFUSED:
        raise UnsupportedFramework(
            f"Image {image_uri}: {_REFUSED[ref.repository]}; opensage runs script mode for "
            f"{supported_text()}.")
    name = _BY_REPOSITORY.get(ref.repository)
    if name is None or (name == "xgboost" and not script_mode):
        return None
    parts = (ref.tag or "").split("-")
    version = "-".join(_leading_version(parts))
    if not version:
        raise UnsupportedFramework(
            f"Image {image_uri} names no framework version in its tag; opensage runs script "
            f"mode for {supported_text()}.")
    if name == "huggingface":
        transformers = next((m.group(1) for p in parts if (m := _TRANSFORMERS.match(p))), None)
        return _huggingface(image_uri, version, transformers)
    return resolve(name, version)


def resolve(name: str, version: str) -> Framework:
    """The Framework for a name and SageMaker framework_version (e.g. "sklearn", "1.2-1")."""
    if name == "sklearn" and version in SKLEARN:
        return Framework("sklearn", version, SKLEARN[version], f"sklearn-{version}")
    if name == "xgboost" and version in XGBOOST:
        return Framework("xgboost", version, XGBOOST[version], f"xgboost-{version}")
    numbers = _numbers(version)
    if name == "pytorch" and numbers and numbers[0] in (1, 2):
        return Framework("pytorch", version, PYTORCH, "pytorch-cpu", from_wheelhouse=("torch",))
    if name == "tensorflow" and numbers and numbers[0] == 2:
        minor = _nearest_tensorflow(numbers[1] if len(numbers) > 1 else 0)
        return Framework("tensorflow", version, TENSORFLOW[minor], f"tensorflow-{minor}")
    if name == "huggingface":
        pytorch, _, transformers = version.partition("-transformers")
        return _huggingface(f"{name} {version}", pytorch, transformers or None)
    raise UnsupportedFramework(
        f"{name} {version} cannot be installed here (no wheels for Python 3.11, or not a "
        f"known version); opensage runs script mode for {supported_text()}.")


def catalogue() -> list[Framework]:
    """One Framework per environment the catalogue can build (for listings)."""
    out = [resolve("sklearn", v) for v in SKLEARN] + [resolve("xgboost", v) for v in XGBOOST]
    out.append(resolve("pytorch", "2"))
    out += [resolve("tensorflow", v) for v in TENSORFLOW]
    out += [builtin_environment(name) for name in BUILTIN_ENVIRONMENTS]
    return out


def builtin_environment(name: str) -> Framework:
    """The environment a built-in algorithm declares (its package's ``ENVIRONMENT``)."""
    packages = BUILTIN_ENVIRONMENTS.get(name)
    if packages is None:
        raise ValueError(f"unknown built-in environment {name!r}; known: "
                         f"{', '.join(BUILTIN_ENVIRONMENTS)}")
    return Framework(name, "1", packages, name, from_wheelhouse=("torch",))


def _huggingface(what: str, pytorch: str, transformers: str | None) -> Framework:
    numbers = _numbers(transformers or "")
    if not numbers or tuple(numbers[:2]) < HF_MIN_TRANSFORMERS:
        raise UnsupportedFramework(
            f"{what}: Hugging Face needs transformers 4.28 or later named in the tag "
            f"(<pytorch>-transformers<version>-...); opensage runs script mode for "
            f"{supported_text()}.")
    base = resolve("pytorch", pytorch)
    return Framework("huggingface", f"{pytorch}-transformers{transformers}",
                     (*base.packages, f"transformers=={transformers}"),
                     f"huggingface-transformers{transformers}",
                     from_wheelhouse=base.from_wheelhouse)


def _leading_version(parts: list[str]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if not _VERSION_PART.match(part):
            break
        out.append(part)
    return out


def _numbers(version: str) -> list[int]:
    head = version.split("-", 1)[0]
    if not _VERSION_PART.match(head):
        return []
    return [int(p) for p in head.split(".")]


def _nearest_tensorflow(minor: int) -> str:
    minors = sorted(int(k.split(".")[1]) for k in TENSORFLOW)
    chosen = min(minors, key=lambda m: (abs(m - minor), -m))
    return f"2.{chosen}"
