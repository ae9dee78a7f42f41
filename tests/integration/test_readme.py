"""README.md's script-mode quick start, run as it is written (between its markers), against
a real server with the unchanged SDK: the README cannot rot."""

from __future__ import annotations

import re
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import numpy as np
import pytest

from opensage.sdk import fast_polling
from tests.integration.conftest import NetworkGuard

README = Path(__file__).resolve().parents[2] / "README.md"


def snippet(marker: str) -> str:
    """The fenced Python block between ``<!-- marker -->`` and ``<!-- /marker -->``."""
    found = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```\s*<!-- /{marker} -->",
                      README.read_text(), re.DOTALL)
    assert found, f"README.md has no {marker} block"
    return found.group(1)


def test_readme_script_mode_quick_start_runs_as_written(
        sdk_env: NetworkGuard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    printed = StringIO()
    with fast_polling(factor=100), redirect_stdout(printed):
        code = compile(snippet("script-mode-quickstart"), "README.md", "exec")
        exec(code, namespace)  # noqa: S102 - the README's own snippet is what is tested
    output = printed.getvalue()
    assert "train_accuracy=" in output  # the script's own line, in the job's log
    job = namespace["estimator"].latest_training_job.describe()  # type: ignore[attr-defined]
    assert job["TrainingJobStatus"] == "Completed"
    assert job["AlgorithmSpecification"]["TrainingImage"].split("/")[-1] == (
        "sagemaker-scikit-learn:1.2-1-cpu-py3")
    predictions = np.asarray(namespace["predictions"]).astype(int).tolist()
    transformed = [int(float(v)) for v in namespace["transformed"]  # type: ignore[attr-defined]
                   .split()]
    assert len(predictions) == 5 and set(predictions) <= {0, 1}
    assert transformed == predictions  # the endpoint and batch transform agree
    y = np.asarray(namespace["y"])
    assert np.mean(np.asarray(predictions) == y[:5]) >= 0.8  # it learned the rule
