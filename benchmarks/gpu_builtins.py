"""The deep-learning built-ins on a GPU: image classification trained as a job runs it
(``python -m opensage.algorithms.image_classification train`` on an ``/opt/ml`` layout), once
on CUDA and once with CUDA hidden, on the same data; then the CUDA-trained model served on
the CPU. Prints the device each run really used (CUDA memory the child allocated), wall time
and the validation accuracy each logged.

Needs only NumPy, torch, safetensors, Pillow and scikit-learn (the digits): it runs where the
server's dependencies are not installed, such as a GPU machine's own Python:

    PYTHONPATH=src python3 -m benchmarks.gpu_builtins [--epochs 10] [--side 32] [--cpu-only]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# Run in the child: the job's entry point, then how much CUDA memory it allocated.
_CHILD = """
import runpy, sys, torch
sys.argv = ["image_classification", "train"]
try:
    runpy.run_module("opensage.algorithms.image_classification", run_name="__main__")
except SystemExit as stop:
    code = stop.code
else:
    code = 0
used = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
print(f"cuda_max_memory_allocated={used}", flush=True)
sys.exit(code or 0)
"""


def digits(side: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    grey = (data.images * (255 / 16)).round().astype(np.uint8)
    scale = max(1, side // 8)
    big = grey.repeat(scale, axis=1).repeat(scale, axis=2)
    return np.repeat(big[..., None], 3, axis=3), data.target.astype(int)


def layout(root: Path, side: int, epochs: int, layers: int, extra: dict[str, Any]) -> None:
    from opensage.algorithms.image_classification.data import pack_record, write_png

    images, labels = digits(side)
    order = np.random.default_rng(0).permutation(len(labels))
    parts = {"train": order[:1300], "validation": order[1300:]}
    config = root / "input" / "config"
    config.mkdir(parents=True)
    for channel, index in parts.items():
        folder = root / "input" / "data" / channel
        folder.mkdir(parents=True)
        (folder / f"{channel}.rec").write_bytes(b"".join(
            pack_record(float(labels[i]), write_png(images[i]), n) for n, i in enumerate(index)))
    hps = {"num_classes": 10, "num_layers": layers, "image_shape": f"3,{side},{side}",
           "epochs": epochs, "mini_batch_size": 64, "learning_rate": 0.05,
           "num_training_samples": len(parts["train"]), **extra}
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hps.items()}))
    (config / "inputdataconfig.json").write_text(json.dumps({
        c: {"ContentType": "application/x-recordio", "TrainingInputMode": "File"}
        for c in parts}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"]}))
    for sub in ("model", "output", "checkpoints"):
        (root / sub).mkdir()


def train(root: Path, cuda: bool) -> dict[str, Any]:
    env = {**os.environ, "OPENSAGE_ML_ROOT": str(root)}
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - began
    log = done.stdout + done.stderr
    accuracy = re.findall(r"Validation-accuracy=([0-9.]+)", log)
    memory = re.findall(r"cuda_max_memory_allocated=(\d+)", log)
    if done.returncode != 0:
        raise RuntimeError(f"training failed ({done.returncode}):\n{log[-3000:]}")
    return {"wall_s": round(wall, 2), "validation_accuracy": float(accuracy[-1]),
            "best_validation_accuracy": max(float(a) for a in accuracy),
            "cuda_bytes": int(memory[-1]) if memory else 0}


def serve_on_cpu(model_dir: Path, side: int) -> float:
    """The held-out digits through the serving code, on the CPU: accuracy."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    from opensage.algorithms.image_classification import serve
    from opensage.algorithms.image_classification.data import write_png

    model = serve.load(model_dir)
    images, labels = digits(side)
    order = np.random.default_rng(0).permutation(len(labels))[1300:1400]
    right = 0
    for i in order:
        body, _ = model.invoke(write_png(images[i]), "image/png", "application/json")
        right += int(np.argmax(json.loads(body)) == labels[i])
    return right / len(order)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()
    import torch

    rows: list[dict[str, Any]] = []
    runs = [("cpu", False, {})] if args.cpu_only else [
        ("cuda", True, {}), ("cuda float16", True, {"precision_dtype": "float16"}),
        ("cpu", False, {})]
    with tempfile.TemporaryDirectory() as tmp:
        for label, cuda, extra in runs:
            root = Path(tmp) / label.replace(" ", "-")
            layout(root, args.side, args.epochs, args.layers, extra)
            rows.append({"run": label, **train(root, cuda)})
            print(json.dumps(rows[-1]), flush=True)
        summary = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
                   "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                   "cpus": os.cpu_count(), "epochs": args.epochs, "side": args.side,
                   "num_layers": args.layers, "runs": rows}
        # last: serving on the CPU hides CUDA from this process and its children
        first = Path(tmp) / runs[0][0].replace(" ", "-") / "model"
        summary["first_model_served_on_cpu_accuracy"] = serve_on_cpu(first, args.side)
    text = json.dumps(summary, indent=1)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_builtins.json").write_text(text)
    if torch.cuda.is_available() and not args.cpu_only:
        assert all(r["cuda_bytes"] > 0 for r in rows if r["run"].startswith("cuda")), rows
        assert rows[-1]["cuda_bytes"] == 0, rows


if __name__ == "__main__":
    main()
