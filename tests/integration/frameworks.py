"""Shared helpers for script-mode serving tests: framework environments (built once per
machine in the shared test frameworks directory), models trained in them, artifacts."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from opensage.runner.environments import Environments, framework_for_image
from opensage.testing import frameworks_dir_for_tests, wheelhouse_for_tests

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"


def env_python(image: str) -> Path:
    """The interpreter of ``image``'s framework environment (built if missing)."""
    framework = framework_for_image(image, script_mode=True)
    assert framework is not None
    return Environments(frameworks_dir_for_tests(),
                        wheelhouse=wheelhouse_for_tests()).python(framework)


def run_in(python: Path, script: str, cwd: Path) -> Any:
    """Run ``script`` with ``python`` in ``cwd``; its last stdout line, JSON-decoded."""
    out = subprocess.run([str(python), "-c", script], cwd=cwd, check=True,
                         capture_output=True, text=True, env={
                             k: v for k, v in os.environ.items()
                             if k not in ("PYTHONPATH", "VIRTUAL_ENV")}).stdout
    return json.loads(out.strip().splitlines()[-1])


TRAIN_SKLEARN = """
import json, joblib, numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=1000).fit(x, y)
joblib.dump(model, "model.joblib")
rows = x[::15][:8]
print(json.dumps({"rows": rows.tolist(),
                  "expected": model.predict(rows.astype(np.float32)).tolist(),
                  "proba": model.predict_proba(rows.astype(np.float32)).tolist()}))
"""

MODEL_FN = """
import os
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""


def train_sklearn(python: Path, where: Path) -> tuple[bytes, dict[str, Any]]:
    """``model.joblib`` bytes trained in the sklearn environment, rows and its predictions."""
    where.mkdir(parents=True, exist_ok=True)
    facts = run_in(python, TRAIN_SKLEARN, where)
    return (where / "model.joblib").read_bytes(), facts


def tar_gz(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def csv_rows(rows: list[list[float]]) -> str:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows)
