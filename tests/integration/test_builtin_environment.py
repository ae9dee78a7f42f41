"""The deep-learning built-ins' environment (``builtin-torch``): the wheelhouse's CPU torch and
what opensage's algorithm code imports, run with a PYTHONPATH that holds the opensage package
and nothing else of the server's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from opensage.algorithms.registry import KNOWN, lookup
from opensage.runner.environments import Environments, builtin_environment
from opensage.testing import frameworks_dir_for_tests, wheelhouse_for_tests

TORCH_BUILTINS = sorted(repo for repo, package in KNOWN.items()
                        if getattr(__import__(package, fromlist=["_"]), "ENVIRONMENT", None))


@pytest.fixture(scope="module")
def shared() -> Environments:
    return Environments(frameworks_dir_for_tests(), wheelhouse=wheelhouse_for_tests())


def _run(python: Path, path: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(path)}
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          env=env, check=False)


def test_builtin_torch_imports_opensage_algorithm_code_and_nothing_of_the_server(
        shared: Environments) -> None:
    python = shared.python(builtin_environment("builtin-torch"))
    path = shared.opensage_path()
    assert sorted(p.name for p in path.iterdir()) == ["opensage"]
    import opensage

    assert (path / "opensage").resolve() == Path(opensage.__file__).resolve().parent
    done = _run(python, path, (
        "import torch, safetensors.torch, numpy, scipy.sparse, pyarrow, uvicorn\n"
        "import opensage.algorithms.contract, opensage.algorithms.inference\n"
        "import opensage.algorithms.firstparty.training, opensage.data.recordio\n"
        "import opensage.serving.worker\n"
        "print(torch.__version__, torch.cuda.is_available())"))
    assert done.returncode == 0, done.stderr
    version, cuda = done.stdout.split()
    assert version.endswith("+cpu") and cuda == "False"
    for server_only in ("starlette", "botocore", "sqlalchemy", "sagemaker", "xgboost"):
        leak = _run(python, path, f"import {server_only}")
        assert leak.returncode != 0, f"{server_only} leaked into builtin-torch"
    # the same directory again: nothing rewritten
    assert shared.opensage_path() == path


@pytest.mark.parametrize("repository", TORCH_BUILTINS)
def test_torch_builtins_declare_the_environment_and_are_not_preloaded(
        repository: str) -> None:
    from opensage.algorithms.registry import preload_modules

    algorithm = lookup(f"382416733822.dkr.ecr.us-east-1.amazonaws.com/{repository}:1")
    assert algorithm is not None and algorithm.environment == "builtin-torch"
    assert algorithm.module not in preload_modules()
