"""The deep-learning built-ins (NTM, Object2Vec, seq2seq, DeepAR) trained on a GPU and on the CPU.

Each algorithm gets a small but not trivial synthetic data set (the shapes the integration
tests use, larger), laid out as a training job's directory (``input/config/*.json``,
``input/data/<channel>/``, ``model/``, ``output/``), and is run as a job runs it: ``python -m
opensage.algorithms.<name> train`` semantics (``contract.main_for``) in a child process with
``OPENSAGE_ML_ROOT`` and ``SM_NUM_CPUS``, once as is (CUDA when the machine has it) and once with
``CUDA_VISIBLE_DEVICES=""``. Reported per algorithm: the device the child actually used (it
must be ``cuda`` when torch sees a GPU: the child reports ``torch.cuda.max_memory_allocated()``),
wall time of both runs, the final metric each logs (they must agree within a tolerance) and
whether the GPU-trained model loads and answers one request through ``serve.load(...).invoke``
in a CPU-only process.

Needs only torch, numpy, scipy, safetensors and pyarrow (no server packages: the child checks
that starlette, sqlalchemy and boto3 were not imported)::

    PYTHONPATH=src python3 benchmarks/gpu_torch_builtins.py [--algorithms ntm,deepar] [--cpu-only]
        [--scale 1.0]

A markdown table is printed at the end and written to ``$OUT/gpu_torch_builtins.md`` when ``OUT`` is
set. Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
SRC = HERE.parent.parent / "src"
ALGORITHMS = ("ntm", "object2vec", "seq2seq", "deepar")
PACKAGES = {"ntm": "opensage.algorithms.ntm", "object2vec": "opensage.algorithms.object2vec",
            "seq2seq": "opensage.algorithms.seq2seq", "deepar": "opensage.algorithms.deepar"}
SERVER_MODULES = ("starlette", "sqlalchemy", "boto3", "botocore", "uvicorn")
MARK = "#gpu_torch_builtins "


# ----------------------------------------------------------------------------------- data


def _records_float(rows: np.ndarray) -> bytes:
    from opensage.data.recordio import Record, Tensor, encode_records

    return encode_records(Record(features={"values": Tensor(np.asarray(r, dtype=np.float32),
                                                            kind="float32")}, label={})
                          for r in rows)


def ntm_job(scale: float) -> dict[str, Any]:
    topics, vocabulary = 10, 400
    docs = max(400, int(6000 * scale))
    rng = np.random.default_rng(0)
    block = vocabulary // topics
    beta = np.full((topics, vocabulary), 1e-3)
    for k in range(topics):
        beta[k, k * block:(k + 1) * block] += rng.dirichlet(np.full(block, 0.5))
    beta /= beta.sum(axis=1, keepdims=True)

    def counts(n: int) -> np.ndarray:
        theta = rng.dirichlet(np.full(topics, 0.1), n)
        return np.stack([rng.multinomial(100, t @ beta) for t in theta]).astype(np.float32)

    recordio = "application/x-recordio-protobuf"
    test = counts(max(200, docs // 5))
    return {
        "hyperparameters": {"feature_dim": vocabulary, "num_topics": topics, "epochs": 30,
                            "optimizer": "adam", "learning_rate": 0.01,
                            "mini_batch_size": 64, "tolerance": 1e-6,
                            "num_patience_epochs": 10},
        "channels": {"train": ({"train.rec": _records_float(counts(docs))}, recordio),
                     "test": ({"test.rec": _records_float(test)}, recordio)},
        "metric": ("test", "perplexity"), "tolerance": ("relative", 0.10),
        "request": (("\n".join(",".join(str(int(v)) for v in row) for row in test[:3])
                     + "\n").encode(), "text/csv"),
    }


def object2vec_job(scale: float) -> dict[str, Any]:
    vocab, groups = 200, 20  # group g owns tokens g*10 .. g*10+9 (0 is padding)

    def pairs(n: int, seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            a = int(rng.integers(groups))
            same = bool(rng.integers(2))
            b = a if same else int((a + rng.integers(1, groups)) % groups)

            def seq(g: int) -> list[int]:
                return [int(t) for t in rng.integers(max(g * 10, 1), g * 10 + 10,
                                                     rng.integers(3, 15))]
            out.append(json.dumps({"label": int(same), "in0": seq(a), "in1": seq(b)}) + "\n")
        return "".join(out).encode()

    lines = "application/jsonlines"
    return {
        "hyperparameters": {"enc0_max_seq_len": 16, "enc0_vocab_size": vocab,
                            "enc0_network": "bilstm", "enc0_token_embedding_dim": 32,
                            "enc_dim": 64, "mlp_dim": 64, "mlp_activation": "relu",
                            "epochs": 8, "learning_rate": 0.005, "mini_batch_size": 64,
                            "early_stopping_patience": 5},
        "channels": {"train": ({"train.jsonl": pairs(max(1000, int(12000 * scale)), 1)}, lines),
                     "validation": ({"v.jsonl": pairs(500, 2)}, lines),
                     "test": ({"t.jsonl": pairs(1000, 3)}, lines)},
        "metric": ("test", "accuracy"), "tolerance": ("absolute", 0.05),
        "request": (json.dumps({"instances": [{"in0": [11, 12, 13], "in1": [14, 15]},
                                              {"in0": [11, 12], "in1": [95, 96]}]}).encode(),
                    "application/json"),
    }


def seq2seq_job(scale: float) -> dict[str, Any]:
    from opensage.data.recordio import Record, Tensor, encode_records

    words = [f"w{i}" for i in range(30)]
    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, **{w: i + 4 for i, w in enumerate(words)}}

    def records(n: int, seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        sources = [rng.integers(4, 4 + len(words), rng.integers(3, 12)) for _ in range(n)]
        return encode_records(
            Record(features={"values": Tensor(np.asarray(s, dtype=np.int64), kind="int32")},
                   label={"values": Tensor(np.asarray(s[::-1], dtype=np.int64), kind="int32")})
            for s in sources)

    recordio = "application/x-recordio-protobuf"
    files = {"vocab.src.json": json.dumps(vocab).encode(),
             "vocab.trg.json": json.dumps(vocab).encode()}
    return {
        "hyperparameters": {"rnn_num_hidden": 128, "num_embed_source": 64,
                            "num_embed_target": 64, "rnn_attention_type": "mlp",
                            "rnn_cell_type": "lstm", "batch_size": 64, "learning_rate": 0.003,
                            "max_num_epochs": 4, "checkpoint_frequency_num_batches": 10000,
                            "checkpoint_threshold": 4, "bleu_sample_size": 30,
                            "beam_size": 3, "max_seq_len_source": 12,
                            "max_seq_len_target": 12},
        "channels": {"train": ({"train.rec": records(max(1000, int(12000 * scale)), 1)},
                               recordio),
                     "validation": ({"v.rec": records(300, 2)}, recordio),
                     "vocab": (files, "application/json")},
        "metric": ("validation", "accuracy"), "tolerance": ("absolute", 0.05),
        "request": (json.dumps({"instances": [{"data": "w1 w2 w3 w4"}]}).encode(),
                    "application/json"),
    }


def deepar_job(scale: float) -> dict[str, Any]:
    horizon, season = 7, 7
    rng = np.random.default_rng(0)
    train_rows, test_rows = [], []
    for i in range(max(20, int(200 * scale))):
        t = np.arange(300 + horizon)
        level = rng.uniform(10, 50)
        y = level * (1 + 0.5 * np.sin(2 * np.pi * t / season + i)) + rng.normal(
            0, 0.1 * level, size=len(t))
        row = {"start": "2021-03-01 00:00:00", "cat": [i % 4]}
        train_rows.append(json.dumps({**row, "target": y[:300].round(3).tolist()}) + "\n")
        test_rows.append(json.dumps({**row, "target": y.round(3).tolist()}) + "\n")
    lines = "application/jsonlines"
    return {
        "hyperparameters": {"context_length": 28, "prediction_length": horizon,
                            "time_freq": "D", "epochs": 5, "mini_batch_size": 64,
                            "num_cells": 40, "num_layers": 2, "learning_rate": 0.005,
                            "likelihood": "gaussian", "num_eval_samples": 100},
        "channels": {"train": ({"train.jsonl": "".join(train_rows).encode()}, lines),
                     "test": ({"test.jsonl": "".join(test_rows).encode()}, lines)},
        "metric": ("test", "mean_wQuantileLoss"), "tolerance": ("relative", 0.25),
        "request": (json.dumps({"instances": [json.loads(test_rows[0])],
                                "configuration": {"num_samples": 20}}).encode(),
                    "application/json"),
    }


JOBS = {"ntm": ntm_job, "object2vec": object2vec_job, "seq2seq": seq2seq_job,
        "deepar": deepar_job}


def lay_out(root: Path, job: dict[str, Any]) -> None:
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(
        {k: str(v) for k, v in job["hyperparameters"].items()}))
    channels = {}
    for name, (files, content_type) in job["channels"].items():
        directory = root / "input" / "data" / name
        directory.mkdir(parents=True)
        for filename, data in files.items():
            (directory / filename).write_bytes(data)
        channels[name] = {"ContentType": content_type, "TrainingInputMode": "File",
                          "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"]}))
    for name in ("model", "output"):
        (root / name).mkdir()


# ---------------------------------------------------------------------------------- child


def _report(**fields: Any) -> None:
    print(MARK + json.dumps(fields), flush=True)


def child_train(algorithm: str) -> None:
    """Run the algorithm's ``train`` command as its container does, then say which device it
    used."""
    import torch

    from opensage.algorithms.contract import main_for

    code = 0
    try:
        main_for(PACKAGES[algorithm])(["train"])
    except SystemExit as e:
        code = int(e.code or 0)
    cuda = torch.cuda.is_available()
    _report(exit=code, cuda_available=cuda,
            device_name=torch.cuda.get_device_name(0) if cuda else "cpu",
            max_memory_allocated=int(torch.cuda.max_memory_allocated()) if cuda else 0,
            server_modules=[m for m in SERVER_MODULES if m in sys.modules],
            torch=torch.__version__)
    sys.exit(code)


def child_serve(algorithm: str, model_dir: str, body_file: str, content_type: str) -> None:
    import importlib

    import torch

    serve = importlib.import_module(PACKAGES[algorithm] + ".serve")
    began = time.perf_counter()
    model = serve.load(model_dir)
    body, kind = model.invoke(Path(body_file).read_bytes(), content_type, None)
    _report(serve_ok=True, seconds=time.perf_counter() - began, content_type=kind,
            answer=body[:300].decode("utf-8", "replace"),
            cuda_available=torch.cuda.is_available())


# --------------------------------------------------------------------------------- parent


METRIC = re.compile(r"#quality_metric: host=algo-1, (?:epoch=(\d+), )?(\w+) (\S+) <\w+>=(\S+)")
TEST_SCORE = re.compile(r"#test_score \(algo-1, (\S+)\): (\S+)")


def _child_env(cpu: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _marks(output: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith(MARK):
            found.update(json.loads(line[len(MARK):]))
    return found


def final_metrics(output: str) -> dict[str, float]:
    """The last value each ``channel:metric`` logged (test scores as ``test:<name>``)."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        m = METRIC.search(line)
        if m:
            found[f"{m.group(2)}:{m.group(3)}"] = float(m.group(4))
        m = TEST_SCORE.search(line)
        if m:
            found[f"test:{m.group(1)}"] = float(m.group(2))
    return found


def run_training(algorithm: str, job: dict[str, Any], work: Path, cpu: bool,
                 timeout: float) -> dict[str, Any]:
    root = work / ("cpu" if cpu else "default")
    lay_out(root, job)
    env = _child_env(cpu)
    env["OPENSAGE_ML_ROOT"] = str(root)
    env["SM_NUM_CPUS"] = str(os.cpu_count() or 1)
    env["TRAINING_JOB_NAME"] = f"gpu-builtins-{algorithm}"
    began = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(HERE), "--child", "train", algorithm],
                              env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        output = ((e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""))
        output += "\n[timed out]"
        code = -1
    seconds = time.perf_counter() - began
    marks = _marks(output)
    failure = root / "output" / "failure"
    result = {"seconds": seconds, "exit": code, "metrics": final_metrics(output),
              "marks": marks, "model_dir": root / "model", "output": output,
              "failure": failure.read_text() if failure.exists() else None}
    used = "?"
    if marks:
        used = ("cuda" if marks.get("max_memory_allocated", 0) > 0 else "cpu")
    result["device"] = used
    return result


def serve_check(algorithm: str, job: dict[str, Any], model_dir: Path, work: Path,
                timeout: float) -> dict[str, Any]:
    body, content_type = job["request"]
    request = work / f"{algorithm}-request.bin"
    request.write_bytes(body)
    env = _child_env(cpu=True)
    try:
        done = subprocess.run([sys.executable, str(HERE), "--child", "serve", algorithm,
                               str(model_dir), str(request), content_type],
                              env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired:
        output, code = "[timed out]", -1
    marks = _marks(output)
    return {"ok": code == 0 and bool(marks.get("serve_ok")), "output": output, **marks}


def agree(a: float | None, b: float | None, tolerance: tuple[str, float]) -> bool:
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return False
    kind, value = tolerance
    if kind == "absolute":
        return abs(a - b) <= value
    return abs(a - b) <= value * max(abs(a), abs(b), 1e-12)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS),
                        help="comma-separated: " + ", ".join(ALGORITHMS))
    parser.add_argument("--cpu-only", action="store_true",
                        help="only the CUDA_VISIBLE_DEVICES='' run (no GPU run)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="data set size factor (0.1 for a quick check)")
    parser.add_argument("--timeout", type=float, default=240.0,
                        help="seconds allowed to one training run")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(SRC))
        if args.child[0] == "train":
            child_train(args.child[1])
        else:
            child_serve(*args.child[1:5])
        return 0

    sys.path.insert(0, str(SRC))
    import torch

    cuda = torch.cuda.is_available() and not args.cpu_only
    print(f"torch {torch.__version__}, cuda available {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
          + f", {os.cpu_count()} CPUs, python {sys.version.split()[0]}", flush=True)
    chosen = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    unknown = set(chosen) - set(ALGORITHMS)
    if unknown:
        parser.error(f"unknown algorithms: {', '.join(sorted(unknown))}")
    rows, failed = [], False
    work = Path(tempfile.mkdtemp(prefix="gpu-builtins-"))
    try:
        for algorithm in chosen:
            job = JOBS[algorithm](args.scale)
            channel, name = job["metric"]
            key = f"{channel}:{name}"
            runs: dict[str, dict[str, Any]] = {}
            for mode in (["gpu"] if cuda else []) + ["cpu"]:
                directory = work / algorithm / mode
                directory.mkdir(parents=True)
                print(f"== {algorithm}: training ({mode})", flush=True)
                run = run_training(algorithm, job, directory, cpu=mode == "cpu",
                                   timeout=args.timeout)
                runs[mode] = run
                print(f"   exit {run['exit']}, device {run['device']}, "
                      f"{run['seconds']:.1f} s, {key} = {run['metrics'].get(key)}", flush=True)
                if run["exit"] != 0:
                    print(f"   FAILED: {run['failure']}\n{_tail(run['output'])}", flush=True)
                if run["marks"].get("server_modules"):
                    print(f"   note: server modules imported: {run['marks']['server_modules']}",
                          flush=True)
            problems = []
            if cuda:
                gpu = runs["gpu"]
                if gpu["exit"] != 0:
                    problems.append(f"GPU run failed: {gpu['failure']}")
                elif gpu["device"] != "cuda":
                    problems.append(f"GPU run used {gpu['device']} (no CUDA memory allocated)")
            if runs["cpu"]["exit"] != 0:
                problems.append(f"CPU run failed: {runs['cpu']['failure']}")
            elif runs["cpu"]["device"] != "cpu":
                problems.append(f"CPU run used {runs['cpu']['device']}")
            gpu_value = runs["gpu"]["metrics"].get(key) if cuda else None
            cpu_value = runs["cpu"]["metrics"].get(key)
            match = "-"
            if cuda and gpu_value is not None and cpu_value is not None:
                match = "yes" if agree(gpu_value, cpu_value, job["tolerance"]) else "NO"
                if match == "NO":
                    problems.append(f"{key} differs beyond {job['tolerance']}: GPU "
                                    f"{gpu_value} vs CPU {cpu_value}")
            served = runs["gpu" if cuda else "cpu"]
            serve = {"ok": False, "output": "no model"}
            if served["exit"] == 0:
                print(f"== {algorithm}: serving the {'GPU' if cuda else 'CPU'}-trained model "
                      f"on the CPU", flush=True)
                serve = serve_check(algorithm, job, served["model_dir"], work / algorithm,
                                    timeout=120)
                print(f"   {'ok' if serve['ok'] else 'FAILED'}: "
                      f"{serve.get('answer', _tail(serve['output']))[:200]}", flush=True)
                if not serve["ok"]:
                    problems.append("serve on CPU failed")
            failed = failed or bool(problems)
            for p in problems:
                print(f"   PROBLEM: {p}", flush=True)
            rows.append({
                "algorithm": algorithm,
                "device": (runs["gpu"]["marks"].get("device_name", "?") + " / "
                           + runs["gpu"]["device"]) if cuda else "cpu",
                "gpu_s": f"{runs['gpu']['seconds']:.1f}" if cuda else "-",
                "cpu_s": f"{runs['cpu']['seconds']:.1f}",
                "metric": key,
                "gpu": f"{gpu_value:.4f}" if gpu_value is not None else "-",
                "cpu": f"{cpu_value:.4f}" if cpu_value is not None else "-",
                "match": match + (f" ({job['tolerance'][0]} {job['tolerance'][1]})"
                                  if cuda else ""),
                "serve": "ok" if serve["ok"] else "FAILED",
                "problems": "; ".join(problems) or "none"})
            write_table(rows, torch.__version__, args.scale)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_table(rows, torch.__version__, args.scale, show=True)
    return 1 if failed else 0


def write_table(rows: list[dict[str, Any]], version: str, scale: float,
                show: bool = False) -> None:
    """The markdown table (rewritten after each algorithm, so a run cut short keeps it)."""
    header = ["algorithm", "device", "gpu_s", "cpu_s", "metric", "gpu", "cpu", "match",
              "serve", "problems"]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(str(r[h]).replace("|", "/") for h in header) + " |"
              for r in rows]
    text = (f"torch {version}, {os.cpu_count()} CPUs, scale {scale}\n\n"
            + "\n".join(table) + "\n")
    if show:
        print("\n" + text, flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_torch_builtins.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
