"""The SageMaker SDK v2, unchanged, trains and tunes a user's scikit-learn script on
opensage: ``SKLearn(entry_point=..., source_dir=...).fit()`` and a ``HyperparameterTuner``
with ``metric_definitions`` (Bayesian, and Hyperband reading the script's per-epoch metric)."""

from __future__ import annotations

import io
import tarfile
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

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
    with fast_polling(factor=20), redirect_stdout(printed):
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
    with fast_polling(factor=20):
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
    with fast_polling(factor=20):
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
