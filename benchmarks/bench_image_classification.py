"""Image classification quality: opensage's image-classification built-in (the training job's
own code, ``python -m opensage.algorithms.image_classification train`` in the builtin-torch
environment, on a job directory) against scikit-learn's LogisticRegression and a small
MLPClassifier, on scikit-learn's digits (8x8 grey; for the ResNet scaled up to 16x16 and made
RGB, packed into MXNet image RecordIO). One split for all: 1000 train, 300 validation (the
ResNet's epoch selection), 497 held-out test images; the baselines fit on train+validation.
Score: held-out accuracy (the ResNet's through its own inference code, serve.load/invoke on
PNGs); wall time of training (the ResNet's includes the interpreter start and PNG decoding).

Runs from the repository root with the server's virtual environment (scikit-learn) and the
builtin-torch environment built by the tests:
``.venv/bin/python benchmarks/bench_image_classification.py``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from opensage.algorithms.image_classification.data import pack_record, write_png

SCORE = """
import json, sys
import numpy as np
from opensage.algorithms.image_classification.serve import load
from opensage.algorithms.image_classification.data import write_png
model = load(sys.argv[1])
data = np.load(sys.argv[2])
right = sum(int(np.argmax(json.loads(model.invoke(write_png(x), "image/png")[0]))) == y
            for x, y in zip(data["images"], data["labels"]))
print(right / len(data["labels"]))
"""


def resnet(images: np.ndarray, labels: np.ndarray, parts: dict[str, np.ndarray],
           hps: dict[str, object], python: Path) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for channel in ("train", "validation"):
            index = parts[channel]
            directory = root / "input/data" / channel
            directory.mkdir(parents=True)
            (directory / "digits.rec").write_bytes(b"".join(
                pack_record(float(labels[i]), write_png(images[i]), n)
                for n, i in enumerate(index)))
        config = root / "input/config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(
            {k: str(v) for k, v in {**hps, "num_training_samples": len(parts["train"])}.items()}))
        (config / "inputdataconfig.json").write_text(json.dumps(
            {c: {"ContentType": "application/x-recordio"} for c in ("train", "validation")}))
        (config / "resourceconfig.json").write_text(json.dumps(
            {"current_host": "algo-1", "hosts": ["algo-1"]}))
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src"),
               "OPENSAGE_ML_ROOT": str(root), "SM_NUM_CPUS": str(os.cpu_count() or 1)}
        started = time.monotonic()
        done = subprocess.run([str(python), "-m", "opensage.algorithms.image_classification",
                               "train"], env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if done.returncode:
            raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
        test = parts["test"]
        np.savez(root / "test.npz", images=images[test], labels=labels[test])
        scored = subprocess.run([str(python), "-c", SCORE, str(root / "model"),
                                 str(root / "test.npz")], env=env, capture_output=True,
                                text=True, check=True)
        return float(scored.stdout.split()[-1]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", type=Path, default=Path.home()
                        / ".cache/opensage-test/frameworks/builtin-torch/bin/python")
    parser.add_argument("--epochs", type=int, nargs="+", default=[4, 10, 20])
    args = parser.parse_args()
    data = load_digits()
    grey = (data.images * (255 / 16)).round().astype(np.uint8)
    images = np.repeat(grey.repeat(2, axis=1).repeat(2, axis=2)[..., None], 3, axis=3)
    labels = data.target.astype(int)
    order = np.random.default_rng(0).permutation(len(labels))
    parts = {"train": order[:1000], "validation": order[1000:1300], "test": order[1300:]}
    fit = np.concatenate([parts["train"], parts["validation"]])
    x, test = data.data / 16.0, parts["test"]
    print(f"digits: {len(parts['train'])} train, {len(parts['validation'])} validation, "
          f"{len(test)} held-out test; {os.cpu_count()} CPUs")
    print("(ResNet runs with 10+ epochs: lr_scheduler_step at 60% and 80% of the epochs)")
    print("| model | held-out accuracy | training wall time |")
    print("| --- | --- | --- |")
    for name, estimator in (("scikit-learn LogisticRegression (64 pixels)",
                             LogisticRegression(max_iter=5000)),
                            ("scikit-learn MLPClassifier (100 hidden, 64 pixels)",
                             MLPClassifier((100,), max_iter=1000, random_state=0))):
        started = time.monotonic()
        estimator.fit(x[fit], labels[fit])
        wall = time.monotonic() - started
        print(f"| {name} | {estimator.score(x[test], labels[test]):.4f} | {wall:.2f} s |")
    for epochs in args.epochs:
        hps = {"num_classes": 10, "num_layers": 20, "image_shape": "3,16,16", "epochs": epochs,
               "mini_batch_size": 32, "learning_rate": 0.05}
        if epochs >= 10:  # SageMaker's step schedule: x0.1 at 60% and 80% of the epochs
            hps["lr_scheduler_step"] = f"{epochs * 6 // 10},{epochs * 8 // 10}"
        accuracy, wall = resnet(images, labels, parts, hps, args.python)
        print(f"| opensage image-classification ResNet-20, 3x16x16, {epochs} epochs | "
              f"{accuracy:.4f} | {wall:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
