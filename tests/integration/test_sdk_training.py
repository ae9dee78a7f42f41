"""The SageMaker SDK v2, unchanged, trains the built-in XGBoost on opensage: fit with logs,
attach, and a model artifact that predicts — with no network use beyond 127.0.0.1."""

from __future__ import annotations

import io
import tarfile
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

from opensage.sdk import fast_polling
from tests.conftest import REGION
from tests.integration.conftest import ROLE, NetworkGuard
from tests.integration.test_training_jobs import regression_csv


def test_estimator_fit_with_logs_attach_and_predict(sdk_env: NetworkGuard, tmp_path: Path):
    import sagemaker
    import xgboost
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput

    session = sagemaker.Session()
    for channel, seed in (("train", 1), ("validation", 2)):
        (tmp_path / channel).mkdir()
        (tmp_path / channel / "data.csv").write_bytes(regression_csv(500, seed)[0])
    train = session.upload_data(str(tmp_path / "train"), key_prefix="xgb/train")
    validation = session.upload_data(str(tmp_path / "validation"), key_prefix="xgb/validation")

    image = sagemaker.image_uris.retrieve("xgboost", REGION, "1.7-1")
    estimator = Estimator(image_uri=image, role=ROLE, instance_count=1,
                          instance_type="ml.m5.large", sagemaker_session=session,
                          hyperparameters={"objective": "reg:squarederror", "num_round": 30,
                                           "max_depth": 3, "eta": 0.3})
    printed = io.StringIO()
    with fast_polling(factor=100), redirect_stdout(printed):
        estimator.fit({"train": TrainingInput(train, content_type="text/csv"),
                       "validation": TrainingInput(validation, content_type="text/csv")},
                      logs=True)
    output = printed.getvalue()
    assert "validation-rmse" in output  # the job's own log, streamed by the SDK's tailer
    assert "Completed - Training job completed" in output
    assert "Training seconds:" in output

    job = estimator.latest_training_job.describe()
    assert job["TrainingJobStatus"] == "Completed"
    attached = Estimator.attach(job["TrainingJobName"], sagemaker_session=session)
    assert attached.model_data == estimator.model_data

    bucket, key = estimator.model_data[5:].split("/", 1)
    blob = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        raw = tar.extractfile("xgboost-model").read()
    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    _, x_test, y_test = regression_csv(200, seed=3)
    predictions = booster.predict(xgboost.DMatrix(x_test))
    assert np.corrcoef(predictions, y_test)[0, 1] > 0.9

    with fast_polling(factor=100):
        estimator.fit({"train": TrainingInput(train, content_type="text/csv")}, logs=False)
    assert estimator.latest_training_job.describe()["TrainingJobStatus"] == "Completed"
