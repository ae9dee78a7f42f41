"""The xgboost built-in as a real subprocess in a hand-made job directory (the SageMaker
training container contract): log lines, metric regexes, the saved model, failures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
pytest.importorskip("pyarrow")

from opensage.algorithms.contract import TrainingEnv, failure_reason
from opensage.algorithms.xgboost.spec import SPEC

MODULE = "opensage.algorithms.xgboost"
ROUND_LINE = re.compile(r"^\[(\d+)\]((\t[a-z]+-[a-z_@.0-9-]+:-?\d+\.\d{5})+)$")


def make_job(root: Path, hyperparameters: dict[str, str],
             channels: dict[str, tuple[str | None, dict[str, bytes]]],
             checkpoints: bool = False) -> Path:
    """Lay out /opt/ml by hand: config JSON, channel files, empty model/ and output/."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    data_config: dict[str, Any] = {}
    for name, (content_type, files) in channels.items():
        data_config[name] = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                             "RecordWrapperType": "None"}
        if content_type is not None:
            data_config[name]["ContentType"] = content_type
        directory = root / "input" / "data" / name
        directory.mkdir(parents=True)
        for filename, content in files.items():
            (directory / filename).write_bytes(content)
    (config / "inputdataconfig.json").write_text(json.dumps(data_config))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    if checkpoints:
        (config / "checkpointconfig.json").write_text(json.dumps(
            {"LocalPath": "/opt/ml/checkpoints", "S3Uri": "s3://bucket/ckpt"}))
        (root / "checkpoints").mkdir()
    (root / "model").mkdir()
    (root / "output").mkdir()
    return root


def run_job(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "OPENSAGE_"))}
    env.update(OPENSAGE_ML_ROOT=str(root), SM_NUM_CPUS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", MODULE, *(args or ("train",))], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def csv_bytes(labels: np.ndarray, features: np.ndarray) -> bytes:
    rows = np.column_stack([labels, features])
    return ("\n".join(",".join(f"{v:.6f}" for v in row) for row in rows) + "\n").encode()


def libsvm_bytes(labels: np.ndarray, features: np.ndarray) -> bytes:
    lines = [f"{int(y)} " + " ".join(f"{j}:{v:.6f}" for j, v in enumerate(row) if v != 0)
             for y, row in zip(labels, features)]
    return ("\n".join(lines) + "\n").encode()


def regression_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).round(6)
    y = (2 * x[:, 0] + x[:, 1] - x[:, 2] ** 2 + rng.normal(scale=0.3, size=rows)).round(6)
    return x, y


def classification_data(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.where(rng.random((rows, 5)) < 0.7, rng.normal(size=(rows, 5)), 0).round(6)
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(scale=0.5, size=rows) > 0).astype(float)
    return x, y


def round_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[")]


def cloudwatch_metrics(lines: list[str]) -> dict[str, list[float]]:
    """What the runner extracts with the built-in metric definitions from the CloudWatch view
    of each line (a tab shows as #011)."""
    found: dict[str, list[float]] = {}
    for line in lines:
        shown = line.replace("\t", "#011")
        for definition in SPEC.metrics:
            match = re.match(definition.regex, shown)
            if match:
                found.setdefault(definition.name, []).append(float(match.group(1)))
    return found


def load_model(root: Path) -> Any:
    path = root / "model" / "xgboost-model"
    assert path.is_file(), "model/xgboost-model was not written"
    booster = xgb.Booster()
    booster.load_model(bytearray(path.read_bytes()))
    return booster


def in_process(params: dict[str, Any], x: np.ndarray, y: np.ndarray, rounds: int,
               **kwargs: Any) -> Any:
    return xgb.train({**params, "nthread": 1}, xgb.DMatrix(x.astype(np.float32), label=y),
                     rounds, verbose_eval=False, **kwargs)


# ---------------------------------------------------------------------------------- success


def test_regression_csv(tmp_path):
    x, y = regression_data(300)
    held_out = regression_data(50, seed=9)[0]
    root = make_job(tmp_path, {"num_round": "8", "max_depth": "3", "eta": "0.3", "seed": "7",
                               "eval_metric": "rmse,mae"},
                    {"train": ("text/csv", {"train.csv": csv_bytes(y[:200], x[:200])}),
                     "validation": ("text/csv", {"val.csv": csv_bytes(y[200:], x[200:])})})
    result = run_job(root)
    assert result.returncode == 0, result.stderr
    lines = round_lines(result.stdout)
    assert len(lines) == 8
    assert all(ROUND_LINE.match(line) for line in lines), lines
    assert lines[0].startswith("[0]\ttrain-rmse:")
    assert "\tvalidation-mae:" in lines[-1]
    metrics = cloudwatch_metrics(lines)
    assert set(metrics) == {"train:rmse", "train:mae", "validation:rmse", "validation:mae"}
    assert len(metrics["validation:rmse"]) == 8
    assert metrics["validation:rmse"][-1] == float(
        re.search(r"validation-rmse:(\S+)", lines[-1]).group(1))

    booster = load_model(root)
    expected = in_process({"max_depth": 3, "eta": 0.3, "seed": 7,
                           "eval_metric": ["rmse", "mae"]}, x[:200], y[:200], 8)
    held = xgb.DMatrix(held_out.astype(np.float32))
    np.testing.assert_array_equal(booster.predict(held), expected.predict(held))
    assert not (root / "output" / "failure").exists()


def parquet_bytes(labels: np.ndarray, features: np.ndarray) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"label": labels, **{f"f{i}": features[:, i]
                                          for i in range(features.shape[1])}})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def recordio_bytes(labels: np.ndarray, features: np.ndarray, sparse: bool = False) -> bytes:
    from opensage.data.recordio import encode_dense, encode_sparse

    if sparse:
        import scipy.sparse

        return encode_sparse(scipy.sparse.csr_matrix(features.astype(np.float32)),
                             labels.astype(np.float32))
    return encode_dense(features.astype(np.float32), labels.astype(np.float32))


@pytest.mark.parametrize(("content_type", "encode"), [
    ("application/x-parquet", parquet_bytes),
    ("application/x-recordio-protobuf", recordio_bytes),
    ("application/x-recordio-protobuf", lambda y, x: recordio_bytes(y, x, sparse=True)),
], ids=["parquet", "recordio-dense", "recordio-sparse"])
def test_parquet_and_recordio_input_train_the_same_model(tmp_path, content_type, encode):
    x, y = classification_data(300)
    params = {"max_depth": 3, "eta": 0.3, "objective": "binary:logistic", "seed": 7}
    root = make_job(tmp_path, {"num_round": "6", **{k: str(v) for k, v in params.items()}},
                    {"train": (content_type, {"part-0": encode(y, x)})})
    result = run_job(root)
    assert result.returncode == 0, result.stderr
    ours = load_model(root)
    if "sparse" in encode.__name__ or encode.__name__ == "<lambda>":
        # Sparse records: absent entries are missing values, as in libsvm.
        import scipy.sparse

        matrix = scipy.sparse.csr_matrix(x.astype(np.float32))
        reference = xgb.train({**params, "nthread": 1}, xgb.DMatrix(matrix, label=y), 6)
        probe = xgb.DMatrix(matrix[:50])
    else:
        reference = in_process(params, x, y, 6)
        probe = xgb.DMatrix(x[:50].astype(np.float32))
    np.testing.assert_allclose(ours.predict(probe), reference.predict(probe), rtol=1e-5)


def test_binary_classification_libsvm_default_content_type(tmp_path):
    x, y = classification_data(300)
    held_out = classification_data(60, seed=5)[0]
    hps = {"num_round": "6", "objective": "binary:logistic", "max_depth": "4",
           "eval_metric": "auc,logloss,accuracy", "subsample": "0.8", "seed": "3"}
    root = make_job(tmp_path, hps,
                    {"train": (None, {"part-0": libsvm_bytes(y[:150], x[:150]),
                                      "part-1": libsvm_bytes(y[150:240], x[150:240])}),
                     "validation": (None, {"v": libsvm_bytes(y[240:], x[240:])})})
    result = run_job(root)
    assert result.returncode == 0, result.stderr
    lines = round_lines(result.stdout)
    assert len(lines) == 6 and all(ROUND_LINE.match(line) for line in lines)
    assert re.search(r"\ttrain-auc:\d\.\d{5}\ttrain-logloss:\d\.\d{5}\ttrain-accuracy:\d\.\d{5}"
                     r"\tvalidation-auc:", lines[0])
    metrics = cloudwatch_metrics(lines)
    assert {"validation:auc", "validation:logloss", "validation:accuracy",
            "train:accuracy"} <= set(metrics)
    assert 0.5 < metrics["validation:auc"][-1] <= 1

    booster = load_model(root)
    # In-process with the same data: the dense zeros of the file are absent (missing) entries.
    import scipy.sparse as sp

    train = sp.csr_matrix(x[:240].astype(np.float32))
    expected = xgb.train({"objective": "binary:logistic", "max_depth": 4, "subsample": 0.8,
                          "seed": 3, "nthread": 1, "eval_metric": ["auc", "logloss"]},
                         xgb.DMatrix(train, label=y[:240]), 6, verbose_eval=False)
    held = xgb.DMatrix(sp.csr_matrix(held_out.astype(np.float32)))
    np.testing.assert_array_equal(booster.predict(held), expected.predict(held))
    predictions = booster.predict(held)
    assert ((predictions > 0) & (predictions < 1)).all()


def test_early_stopping_keeps_the_best_model(tmp_path):
    x, y = regression_data(240, seed=4)
    y = y + np.random.default_rng(8).normal(scale=3, size=len(y)).round(6)  # easy to overfit
    held_out = regression_data(40, seed=11)[0]
    hps = {"num_round": "200", "eta": "0.9", "max_depth": "6", "early_stopping_rounds": "3",
           "eval_metric": "rmse"}
    root = make_job(tmp_path, hps,
                    {"train": ("csv", {"t.csv": csv_bytes(y[:160], x[:160])}),
                     "validation": ("csv", {"v.csv": csv_bytes(y[160:], x[160:])})})
    result = run_job(root)
    assert result.returncode == 0, result.stderr
    lines = round_lines(result.stdout)
    assert 3 < len(lines) < 200
    validation = cloudwatch_metrics(lines)["validation:rmse"]
    best = int(np.argmin(validation))
    assert len(lines) == best + 1 + 3  # stopped three rounds after the best one

    booster = load_model(root)
    assert booster.num_boosted_rounds() == best + 1
    dval = xgb.DMatrix(x[160:].astype(np.float32), label=y[160:])
    expected = in_process({"eta": 0.9, "max_depth": 6, "eval_metric": "rmse"}, x[:160], y[:160],
                          200, evals=[(dval, "validation")],
                          callbacks=[xgb.callback.EarlyStopping(rounds=3, save_best=True)])
    held = xgb.DMatrix(held_out.astype(np.float32))
    np.testing.assert_array_equal(booster.predict(held), expected.predict(held))


def test_resumes_from_the_latest_checkpoint(tmp_path):
    x, y = regression_data(200, seed=2)
    params = {"max_depth": 3, "eta": 0.5}
    root = make_job(tmp_path, {"num_round": "6", "max_depth": "3", "eta": "0.5"},
                    {"train": ("text/csv", {"t.csv": csv_bytes(y, x)})}, checkpoints=True)
    first_three = in_process(params, x, y, 3)
    first_three.save_model(str(root / "checkpoints" / "tmp.ubj"))
    (root / "checkpoints" / "tmp.ubj").rename(root / "checkpoints" / "xgboost-checkpoint.2")
    (root / "checkpoints" / "xgboost-checkpoint.1").write_bytes(b"an older checkpoint")

    result = run_job(root)
    assert result.returncode == 0, result.stderr
    lines = round_lines(result.stdout)
    assert [line.split("\t")[0] for line in lines] == ["[3]", "[4]", "[5]"]
    booster = load_model(root)
    assert booster.num_boosted_rounds() == 6
    expected = in_process(params, x, y, 3, xgb_model=first_three)
    dx = xgb.DMatrix(x.astype(np.float32))
    np.testing.assert_array_equal(booster.predict(dx), expected.predict(dx))
    saved = sorted(p.name for p in (root / "checkpoints").iterdir())
    assert saved == [f"xgboost-checkpoint.{r}" for r in (1, 2, 3, 4, 5)]


def test_multiclass_with_csv_weights(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(150, 3)).round(6)
    y = np.digitize(x[:, 0] + 0.3 * x[:, 1], [-0.5, 0.5]).astype(float)
    weights = rng.uniform(0.5, 2, size=150).round(6)
    content = csv_bytes(y, np.column_stack([weights, x]))
    root = make_job(tmp_path, {"num_round": "4", "objective": "multi:softprob", "num_class": "3",
                               "csv_weights": "1", "eval_metric": "mlogloss,merror,f1",
                               "save_model_on_termination": "true"},
                    {"train": ("text/csv; label_size=1", {"t.csv": content})})
    result = run_job(root)
    assert result.returncode == 0, result.stderr
    lines = round_lines(result.stdout)
    assert len(lines) == 4 and "\ttrain-f1:" in lines[-1]
    assert "train:merror" in cloudwatch_metrics(lines)
    booster = load_model(root)
    expected = xgb.train({"objective": "multi:softprob", "num_class": 3, "nthread": 1,
                          "eval_metric": ["mlogloss", "merror"]},
                         xgb.DMatrix(x.astype(np.float32), label=y, weight=weights), 4)
    dx = xgb.DMatrix(x.astype(np.float32))
    assert booster.predict(dx).shape == (150, 3)
    np.testing.assert_array_equal(booster.predict(dx), expected.predict(dx))


# ---------------------------------------------------------------------------------- failures


def failure_of(root: Path, result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    failure = (root / "output" / "failure").read_text()
    assert failure in result.stderr
    assert len(failure) <= 1024
    return failure


def test_bad_hyperparameters_fail_with_a_readable_reason(tmp_path):
    x, y = regression_data(20)
    root = make_job(tmp_path, {"num_round": "10", "eta": "1.5", "max_dept": "3"},
                    {"train": ("text/csv", {"t.csv": csv_bytes(y, x)})})
    failure = failure_of(root, run_job(root))
    assert failure.startswith("ClientError: 2 problems: ")
    assert "Hyperparameter 'eta' must be a float in the range [0, 1]; got '1.5'." in failure
    assert "Hyperparameter 'max_dept' is not accepted by the xgboost algorithm. Did you mean " \
           "'max_depth'?" in failure
    assert not (root / "model" / "xgboost-model").exists()


def test_missing_train_channel(tmp_path):
    x, y = regression_data(20)
    root = make_job(tmp_path, {"num_round": "10"},
                    {"validation": ("text/csv", {"v.csv": csv_bytes(y, x)})})
    failure = failure_of(root, run_job(root))
    assert failure == "ClientError: Missing required channel 'train' for the xgboost algorithm."


def test_empty_train_channel(tmp_path):
    root = make_job(tmp_path, {"num_round": "10"}, {"train": ("text/csv", {})})
    failure = failure_of(root, run_job(root))
    assert failure == "ClientError: No data in the train channel (input/data/train)."


def test_corrupt_csv_names_file_and_line(tmp_path):
    root = make_job(tmp_path, {"num_round": "3"},
                    {"train": ("text/csv", {"data.csv": b"1,2,3\n0,1,1\n1,oops,2\n"})})
    failure = failure_of(root, run_job(root))
    assert failure.startswith("ClientError: data.csv, line 3: column 2 has the non-numeric "
                              "value 'oops'")


def test_xgboost_errors_become_client_errors(tmp_path):
    x, _ = regression_data(30)
    labels = np.full(30, 5.0)  # not in [0, num_class)
    root = make_job(tmp_path, {"num_round": "3", "objective": "multi:softmax", "num_class": "3"},
                    {"train": ("text/csv", {"t.csv": csv_bytes(labels, x)})})
    failure = failure_of(root, run_job(root))
    assert failure.startswith("ClientError: XGBoost could not train on this input: ")
    assert "label must be discrete values in the range of [0, num_class)" in failure
    assert "Stack trace" not in failure and ".cc:" not in failure


def test_usage(tmp_path):
    result = run_job(tmp_path, "serve")
    assert result.returncode == 2 and "usage:" in result.stderr


# ---------------------------------------------------------------------------------- contract


def test_training_env_reads_the_layout(tmp_path):
    root = make_job(tmp_path, {"num_round": "3", "eta": "0.1"},
                    {"train": ("text/csv", {"a.csv": b"1,2\n"})}, checkpoints=True)
    env = TrainingEnv.from_environ({"OPENSAGE_ML_ROOT": str(root), "SM_NUM_CPUS": "3"})
    assert env.hyperparameters == {"num_round": "3", "eta": "0.1"}
    assert env.input_data_config["train"]["ContentType"] == "text/csv"
    assert env.channels == ["train"] and env.content_type("train") == "text/csv"
    assert env.channel_dir("train") == root / "input" / "data" / "train"
    assert env.current_host == "algo-1" and env.hosts == ["algo-1"]
    assert env.model_dir == root / "model" and env.output_data_dir == root / "output" / "data"
    assert env.checkpoint_dir == root / "checkpoints"  # /opt/ml/checkpoints, moved under root
    assert env.num_cpus == 3
    env.write_failure("x" * 3000)
    assert len((root / "output" / "failure").read_text()) == 1024
    bare = TrainingEnv(tmp_path / "nothing", environ={})
    assert bare.hyperparameters == {} and bare.checkpoint_dir is None
    assert TrainingEnv.from_environ({}).root == Path("/opt/ml")


def test_failure_reasons():
    from opensage.algorithms.contract import UserError
    from opensage.data import DataError

    assert failure_reason(UserError("no data\n here")) == "ClientError: no data here"
    assert failure_reason(DataError("bad", path="/x/a.csv", line=2)) == (
        "ClientError: a.csv, line 2: bad")
    assert failure_reason(KeyError("k")) == "AlgorithmError: KeyError: 'k'"
