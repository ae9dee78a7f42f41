"""The SageMaker SDK v2, unchanged, trains and tunes a user's scripts on opensage:
``SKLearn(entry_point=..., source_dir=...).fit()`` and a ``HyperparameterTuner`` with
``metric_definitions`` (Bayesian, and Hyperband reading the script's per-epoch metric);
``PyTorch`` with a source directory (helper module, ``requirements.txt``) and ``model_fn``,
and ``TensorFlow``/Keras, each fit, deployed and predicting what the trained model computes."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from opensage.sdk import fast_polling
from tests.integration.conftest import ROLE, NetworkGuard
from tests.integration.test_training_jobs import regression_csv

TRAIN = """
    import argparse, glob, os
    import joblib
    import numpy as np
    from sklearn.linear_model import Ridge

    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
    args = parser.parse_args()
    data = np.vstack([np.loadtxt(f, delimiter=",") for f in glob.glob(args.train + "/*.csv")])
    for epoch in range(1, args.epochs + 1):
        model = Ridge(alpha=args.alpha * 10 / epoch).fit(data[:, 1:], data[:, 0])
        mse = float(np.mean((model.predict(data[:, 1:]) - data[:, 0]) ** 2))
        print(f"epoch={epoch} validation_mse={mse:.6f}", flush=True)
    joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
"""
METRICS = [{"Name": "validation:mse", "Regex": r"validation_mse=([0-9.]+)"}]


def _setup(tmp_path: Path):
    import sagemaker

    session = sagemaker.Session()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(textwrap.dedent(TRAIN))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "data.csv").write_bytes(regression_csv(300, 1)[0])
    train = session.upload_data(str(tmp_path / "train"), key_prefix="sk/train")
    return session, train


def _estimator(session, tmp_path: Path, **kwargs):
    from sagemaker.sklearn import SKLearn

    return SKLearn(entry_point="train.py", source_dir=str(tmp_path / "src"),
                   framework_version="1.2-1", instance_type="ml.m5.large", instance_count=1,
                   role=ROLE, sagemaker_session=session, metric_definitions=METRICS,
                   **kwargs)


def test_sklearn_estimator_fit_runs_the_script(sdk_env: NetworkGuard, tmp_path: Path):
    session, train = _setup(tmp_path)
    estimator = _estimator(session, tmp_path, hyperparameters={"alpha": 0.3, "epochs": 2})
    printed = io.StringIO()
    with fast_polling(factor=100), redirect_stdout(printed):
        estimator.fit({"train": train}, logs=True)
    output = printed.getvalue()
    assert "epoch=2 validation_mse=" in output  # the script's own log, tailed by the SDK
    assert "Completed - Training job completed" in output
    job = estimator.latest_training_job.describe()
    assert job["TrainingJobStatus"] == "Completed"
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert job["FinalMetricDataList"][0]["MetricName"] == "validation:mse"
    bucket, key = estimator.model_data[5:].split("/", 1)
    blob = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        assert tar.getnames() == ["model.joblib"]


def test_tuner_over_an_sklearn_script(sdk_env: NetworkGuard, tmp_path: Path):
    from sagemaker.tuner import ContinuousParameter, HyperparameterTuner

    session, train = _setup(tmp_path)
    tuner = HyperparameterTuner(
        _estimator(session, tmp_path, hyperparameters={"epochs": 2}),
        objective_metric_name="validation:mse", objective_type="Minimize",
        metric_definitions=METRICS,
        hyperparameter_ranges={"alpha": ContinuousParameter(0.01, 10.0)},
        max_jobs=3, max_parallel_jobs=2, strategy="Bayesian")
    with fast_polling(factor=100):
        tuner.fit({"train": train}, wait=True)
    frame = tuner.analytics().dataframe()
    assert len(frame) == 3 and set(frame["TrainingJobStatus"]) == {"Completed"}
    assert frame.sort_values("FinalObjectiveValue").iloc[0]["TrainingJobName"] == (
        tuner.best_training_job())
    assert frame["FinalObjectiveValue"].notna().all()


def test_hyperband_reads_the_scripts_per_epoch_metric(sdk_env: NetworkGuard, tmp_path: Path):
    from sagemaker.tuner import ContinuousParameter, HyperparameterTuner

    session, train = _setup(tmp_path)
    tuner = HyperparameterTuner(
        _estimator(session, tmp_path, hyperparameters={"epochs": 4}),
        objective_metric_name="validation:mse", objective_type="Minimize",
        metric_definitions=METRICS,
        hyperparameter_ranges={"alpha": ContinuousParameter(0.01, 10.0)},
        max_jobs=4, max_parallel_jobs=2, strategy="Hyperband",
        strategy_config=_hyperband(1, 4))
    with fast_polling(factor=100):
        tuner.fit({"train": train}, wait=True)
    frame = tuner.analytics().dataframe()
    # Which children Hyperband stops early depends on how fast their epochs come; that
    # each was watched through its own metric lines is what is checked.
    assert len(frame) == 4 and frame["FinalObjectiveValue"].notna().all()
    assert set(frame["TrainingJobStatus"]) <= {"Completed", "Stopped"}
    sm = session.sagemaker_client
    for name in frame["TrainingJobName"]:
        job = sm.describe_training_job(TrainingJobName=name)
        assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
        assert 1 <= int(job["HyperParameters"]["epochs"]) <= 4  # Hyperband's budget
        assert job["FinalMetricDataList"][0]["MetricName"] == "validation:mse"


def _hyperband(low: int, high: int):
    from sagemaker.tuner import HyperbandStrategyConfig, StrategyConfig

    return StrategyConfig(HyperbandStrategyConfig(min_resource=low, max_resource=high))


# -- PyTorch: source_dir with a helper module and requirements.txt, fit -> deploy -> predict --

TORCH_NET = """
    import torch


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.linear(x)
"""
TORCH_TRAIN = """
    import argparse, json, os
    import numpy as np
    import tomli_w  # from requirements.txt
    import torch
    from net import Net  # a helper module of the source directory


    def model_fn(model_dir):
        net = Net()
        net.load_state_dict(torch.load(os.path.join(model_dir, "model.pth")))
        return net.eval()


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--lr", type=float)
        args = parser.parse_args()
        data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "data.csv"),
                          delimiter=",", dtype=np.float32)
        x, y = torch.from_numpy(data[:, 1:]), torch.from_numpy(data[:, :1])
        torch.manual_seed(0)
        net = Net()
        optimizer = torch.optim.SGD(net.parameters(), lr=args.lr)
        for epoch in range(args.epochs):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x), y)
            loss.backward()
            optimizer.step()
        print(f"final loss={loss.item():.6f}", flush=True)
        model_dir = os.environ["SM_MODEL_DIR"]
        torch.save(net.state_dict(), os.path.join(model_dir, "model.pth"))
        with open(os.path.join(model_dir, "weights.toml"), "w") as f:
            f.write(tomli_w.dumps({"w": net.linear.weight.detach().reshape(-1).tolist(),
                                   "b": net.linear.bias.item()}))
"""
TRUE_W, TRUE_B = np.array([3.0, -2.0]), 0.5


def _linear_job(tmp_path: Path, files: dict[str, str], prefix: str, seed: int):
    """A session, a source directory of ``files`` and, uploaded under ``prefix``, a CSV of
    noiseless ``y = x @ TRUE_W + TRUE_B`` (the label first)."""
    import sagemaker

    session = sagemaker.Session()
    source = tmp_path / "src"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(textwrap.dedent(text))
    x = np.random.default_rng(seed).uniform(-1, 1, size=(200, 2))
    (tmp_path / "train").mkdir()
    np.savetxt(tmp_path / "train" / "data.csv", np.column_stack([x @ TRUE_W + TRUE_B, x]),
               delimiter=",")
    return session, source, session.upload_data(str(tmp_path / "train"), key_prefix=prefix)


def _model_files(session, model_data: str) -> dict[str, bytes]:
    bucket, key = model_data[5:].split("/", 1)
    blob = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_pytorch_source_dir_with_requirements_fits_deploys_and_predicts(
        sdk_env: NetworkGuard, tmp_path: Path):
    import tomllib

    from sagemaker.pytorch import PyTorch

    session, source, train = _linear_job(
        tmp_path, {"train.py": TORCH_TRAIN, "net.py": TORCH_NET,
                   "requirements.txt": "tomli-w==1.0.0\n"}, "pt/train", seed=0)
    estimator = PyTorch(entry_point="train.py", source_dir=str(source),
                        framework_version="2.1", py_version="py310",
                        instance_type="ml.m5.large", instance_count=1, role=ROLE,
                        hyperparameters={"epochs": 300, "lr": 0.2}, sagemaker_session=session)
    with fast_polling(factor=100):
        estimator.fit({"train": train}, logs=False)
    learned = tomllib.loads(_model_files(session, estimator.model_data)[
        "weights.toml"].decode())
    np.testing.assert_allclose(learned["w"], TRUE_W, atol=1e-3)  # noiseless data: the truth
    assert learned["b"] == pytest.approx(TRUE_B, abs=1e-3)

    with fast_polling(factor=100):
        predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        # What the SDK sent: model.tar.gz repacked with the source directory under code/.
        sm = session.sagemaker_client
        container = sm.describe_model(ModelName=predictor.endpoint_name)["PrimaryContainer"]
        assert container["Environment"]["SAGEMAKER_PROGRAM"] == "train.py"
        assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
        assert {"model.pth", "code/train.py", "code/net.py", "code/requirements.txt"} <= set(
            _model_files(session, container["ModelDataUrl"]))
        rows = np.array([[0.5, -0.25], [-1.0, 1.0], [0.0, 0.0]], dtype=np.float32)
        got = predictor.predict(rows)  # npy both ways: the SDK's PyTorchPredictor defaults
        expected = rows @ np.array(learned["w"], dtype=np.float32) + np.float32(learned["b"])
        np.testing.assert_allclose(np.asarray(got).reshape(-1), expected, rtol=1e-5)
    finally:
        predictor.delete_endpoint()


# -- TensorFlow/Keras: a SavedModel in SM_MODEL_DIR/1, served in TF Serving's REST format ---

KERAS_TRAIN = """
    import argparse, json, os
    import numpy as np
    import tensorflow as tf

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--model_dir")  # the TensorFlow estimator's S3 location
    args, _ = parser.parse_known_args()
    data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAINING"], "data.csv"),
                      delimiter=",", dtype=np.float32)
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input(shape=(2,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.1), loss="mse")
    model.fit(data[:, 1:], data[:, :1], epochs=args.epochs, batch_size=50, verbose=0)
    model.export(os.path.join(os.environ["SM_MODEL_DIR"], "1"))  # a SavedModel, version 1
    kernel, bias = model.layers[0].get_weights()
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "facts.json"), "w") as f:
        json.dump({"model_dir": args.model_dir, "w": kernel.reshape(-1).tolist(),
                   "b": float(bias[0])}, f)
"""


def test_tensorflow_keras_fits_deploys_and_answers_tf_serving_format(
        sdk_env: NetworkGuard, tmp_path: Path):
    from sagemaker.tensorflow import TensorFlow

    session, source, train = _linear_job(tmp_path, {"train.py": KERAS_TRAIN}, "tf/train",
                                         seed=1)
    estimator = TensorFlow(entry_point="train.py", source_dir=str(source),
                           framework_version="2.16", py_version="py310",
                           instance_type="ml.m5.large", instance_count=1, role=ROLE,
                           hyperparameters={"epochs": 30}, sagemaker_session=session)
    with fast_polling(factor=100):
        estimator.fit(train, logs=False)  # one channel, named "training"
    job = estimator.latest_training_job.describe()
    output = job["ModelArtifacts"]["S3ModelArtifacts"].replace("model.tar.gz", "output.tar.gz")
    facts = json.loads(_model_files(session, output)["facts.json"])
    # The SDK's model_dir hyperparameter reaches the script as --model_dir, as on AWS.
    assert facts["model_dir"] == json.loads(job["HyperParameters"]["model_dir"])
    assert facts["model_dir"].startswith("s3://") and facts["model_dir"].endswith("/model")
    np.testing.assert_allclose(facts["w"], TRUE_W, atol=0.05)
    assert facts["b"] == pytest.approx(TRUE_B, abs=0.05)
    assert any(name.startswith("1/") and name.endswith("saved_model.pb")
               for name in _model_files(session, estimator.model_data))

    with fast_polling(factor=100):
        predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        rows = [[0.5, -0.25], [-1.0, 1.0], [0.0, 0.0]]
        answer = predictor.predict({"instances": rows})
        expected = np.array(rows, dtype=np.float32) @ np.array(facts["w"], dtype=np.float32)
        np.testing.assert_allclose(np.asarray(answer["predictions"]).reshape(-1),
                                   expected + np.float32(facts["b"]), rtol=1e-5, atol=1e-6)
    finally:
        predictor.delete_endpoint()
