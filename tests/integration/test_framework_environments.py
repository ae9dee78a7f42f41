"""Real uv builds of script-mode environments: built once, cached, overlaid, shared."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from pathlib import Path

import pytest

from opensage.runner.environments import EnvironmentBuildError, Environments, resolve
from opensage.runner.environments.builder import MARKER, _cpu_wheel
from opensage.testing import frameworks_dir_for_tests, wheelhouse_for_tests

SKLEARN = resolve("sklearn", "1.2-1")


@pytest.fixture(scope="module")
def shared() -> Environments:
    """The machine-wide test environments (built once per machine, not per test)."""
    return Environments(frameworks_dir_for_tests(), wheelhouse=wheelhouse_for_tests())


def _run(python: Path, code: str) -> str:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_sklearn_environment_is_built_once_and_imports_sklearn(shared: Environments) -> None:
    python = shared.python(SKLEARN, log=lambda _line: None)
    assert python == frameworks_dir_for_tests() / "sklearn-1.2-1" / "bin" / "python"
    assert _run(python, "import sklearn, numpy; print(sklearn.__version__, numpy.__version__)"
                ) == "1.2.2 1.24.4"
    inode = (python.parent.parent / MARKER).stat().st_ino
    lines: list[str] = []
    assert shared.python(SKLEARN, log=lines.append) == python
    assert lines == []  # nothing built, nothing logged
    assert (python.parent.parent / MARKER).stat().st_ino == inode
    assert (SKLEARN, True) in shared.listing()


def test_requirements_overlay_is_cached_by_content(shared: Environments,
                                                   tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.16.0\n")
    python = shared.python(SKLEARN, requirements, log=lambda _line: None)
    assert python.parent.parent.parent.name == "overlays"
    assert _run(python, "import six, sklearn; print(six.__version__, sklearn.__version__)"
                ) == "1.16.0 1.2.2"
    base = shared.python(SKLEARN)
    probe = subprocess.run([str(base), "-c", "import six"], capture_output=True, check=False)
    assert probe.returncode != 0  # the base environment is untouched
    again = tmp_path / "other" / "requirements.txt"
    again.parent.mkdir()
    again.write_text("six==1.16.0\n")
    lines: list[str] = []
    assert shared.python(SKLEARN, again, log=lines.append) == python  # same content: cached
    assert lines == []


def test_concurrent_builders_build_once(tmp_path: Path) -> None:
    envs = Environments(tmp_path / "frameworks")
    logs: list[list[str]] = [[], []]
    paths: list[Path | None] = [None, None]

    def build(i: int) -> None:
        paths[i] = envs.python(SKLEARN, log=logs[i].append)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert paths[0] == paths[1] == tmp_path / "frameworks" / "sklearn-1.2-1" / "bin" / "python"
    building = [line for log in logs for line in log if line.startswith("Building environment")]
    assert building == ["Building environment sklearn-1.2-1 (first use; cached for later jobs)…"]
    assert any(line.startswith("Environment sklearn-1.2-1 done in ") for log in logs
               for line in log)
    # no temporary directory is left behind
    assert sorted(p.name for p in (tmp_path / "frameworks").iterdir()) == [
        "sklearn-1.2-1", "sklearn-1.2-1.lock"]


def test_half_built_environment_is_rebuilt_and_changed_catalogue_rebuilds(
        tmp_path: Path) -> None:
    root = tmp_path / "frameworks"
    (root / "sklearn-1.2-1" / "bin").mkdir(parents=True)  # a crash left this, no marker
    envs = Environments(root, offline=True)  # after a first build the cache suffices
    lines: list[str] = []
    python = envs.python(SKLEARN, log=lines.append)
    assert lines[0].startswith("Building environment sklearn-1.2-1")
    assert _run(python, "import sklearn; print(sklearn.__version__)") == "1.2.2"
    changed = dataclasses.replace(SKLEARN, packages=(*SKLEARN.packages, "six==1.16.0"))
    lines.clear()
    assert envs.python(changed, log=lines.append) == python
    assert lines[0].startswith("Building environment sklearn-1.2-1")
    assert _run(python, "import six; print(six.__version__)") == "1.16.0"


def test_pytorch_environment_holds_the_cpu_torch(shared: Environments) -> None:
    pytorch = resolve("pytorch", "2.1")
    if _cpu_wheel("torch", shared.wheelhouse) is None and not shared.is_built(pytorch):
        pytest.skip("no CPU torch wheel in the test wheelhouse (set OPENSAGE_WHEELHOUSE)")
    python = shared.python(pytorch, log=lambda _line: None)
    out = _run(python, "import torch; print(torch.__version__, torch.version.cuda, "
                       "torch.ones(2).sum().item())")
    version, cuda, total = out.split()
    assert version.endswith("+cpu") and cuda == "None" and total == "2.0"
    torchrun = shared.bin(pytorch, None, "torchrun")
    assert torchrun.is_file()
    subprocess.run([str(torchrun), "--help"], capture_output=True, check=True)
    # Built once, the environment serves a server that has no wheelhouse (or is offline).
    lines: list[str] = []
    assert Environments(shared.root).python(pytorch, log=lines.append) == python
    assert lines == []


def test_pytorch_without_a_cpu_wheel_says_to_set_the_wheelhouse(tmp_path: Path) -> None:
    envs = Environments(tmp_path / "frameworks", wheelhouse=(tmp_path,))
    with pytest.raises(EnvironmentBuildError, match="OPENSAGE_WHEELHOUSE"):
        envs.python(resolve("pytorch", "2.1"))
    assert not (tmp_path / "frameworks" / "pytorch-cpu").exists()
