"""DeepAR in the builtin-torch environment, through boto3: trains on JSON lines series with
cat features, beats the seasonal-naive forecast's mean weighted quantile loss on held-out
points, logs test:RMSE / test:mean_wQuantileLoss, serves mean, quantiles and samples, and
fails a job whose series is shorter than context_length naming the line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from opensage.algorithms.deepar.data import weighted_quantile_loss
from tests.integration.builtins import deploy, invoke, metrics, train

P, SEASON = 7, 7


def dataset(series: int, length: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(seed)
    train_rows, test_rows = [], []
    for i in range(series):
        t = np.arange(length + P)
        level = rng.uniform(10, 50)
        y = level * (1 + 0.5 * np.sin(2 * np.pi * t / SEASON + i)) + rng.normal(
            0, 0.1 * level, size=len(t))
        row = {"start": "2021-03-01 00:00:00", "cat": [i % 2]}
        train_rows.append({**row, "target": y[:length].round(3).tolist()})
        test_rows.append({**row, "target": y.round(3).tolist()})
    return train_rows, test_rows


def lines(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def seasonal_naive_wql(rows: list[dict]) -> float:
    truth, naive = [], []
    for row in rows:
        y = np.asarray(row["target"])
        history = y[:-P]
        truth.append(y[-P:])
        naive.append(np.array([history[len(history) - SEASON + k % SEASON] for k in range(P)]))
    t, n = np.concatenate(truth), np.concatenate(naive)
    return float(np.mean([weighted_quantile_loss(t, n, q / 10) for q in range(1, 10)]))


HPS = {"context_length": 14, "prediction_length": P, "time_freq": "D", "epochs": 4,
       "mini_batch_size": 32, "num_cells": 24, "num_layers": 1, "learning_rate": 0.01,
       "likelihood": "gaussian", "num_eval_samples": 50}


def test_deepar_beats_seasonal_naive_and_serves(sm, s3, client):
    train_rows, test_rows = dataset(12, 120)
    job = train(sm, s3, "forecasting-deepar", HPS,
                {"train": (lines(train_rows), "application/jsonlines"),
                 "test": (lines(test_rows), "application/jsonlines")}, timeout=600)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    assert {"test:RMSE", "test:mean_wQuantileLoss", "train:final_loss"} <= set(found)
    assert found["test:mean_wQuantileLoss"] < seasonal_naive_wql(test_rows)

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "forecasting-deepar", job, timeout=180)
    request = {"instances": [train_rows[0], train_rows[1]],
               "configuration": {"num_samples": 30, "output_types": ["mean", "quantiles",
                                                                     "samples"],
                                 "quantiles": ["0.1", "0.5", "0.9"]}}
    body, content_type = invoke(runtime, endpoint, json.dumps(request), "application/json")
    predictions = json.loads(body)["predictions"]
    assert content_type == "application/json" and len(predictions) == 2
    first = predictions[0]
    assert len(first["mean"]) == P and set(first["quantiles"]) == {"0.1", "0.5", "0.9"}
    assert np.shape(first["samples"]) == (30, P)
    assert (np.asarray(first["quantiles"]["0.1"]) <= np.asarray(first["quantiles"]["0.9"])).all()
    truth = np.asarray(test_rows[0]["target"][-P:])
    assert np.abs(np.asarray(first["mean"]) - truth).mean() < 0.5 * np.abs(truth).mean()
    lines_out = invoke(runtime, endpoint, lines(train_rows[:3]), "application/jsonlines",
                       "application/jsonlines")[0].decode().splitlines()
    assert len(lines_out) == 3 and all(len(json.loads(x)["mean"]) == P for x in lines_out)
    with pytest.raises(runtime.exceptions.ModelError, match="output_types"):
        invoke(runtime, endpoint, json.dumps({"instances": [train_rows[0]], "configuration":
                                              {"output_types": ["median"]}}),
               "application/json")


def test_deepar_bad_series_fail_the_job_naming_the_line(sm, s3):
    train_rows, _ = dataset(4, 60, seed=1)
    train_rows[2]["target"] = train_rows[2]["target"][:5]
    job = train(sm, s3, "forecasting-deepar", {**HPS, "epochs": 1},
                {"train": (lines(train_rows), "application/jsonlines")}, timeout=300)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("ClientError:") and "line 3" in reason and "context_length" in reason
    job = train(sm, s3, "forecasting-deepar", {**HPS, "epochs": 1},
                {"train": (b'{"start": "2021-01-01", "target": [1, "x"]}\n',
                           "application/jsonlines")}, timeout=300)
    assert job["TrainingJobStatus"] == "Failed" and "line 1" in job["FailureReason"]
    with pytest.raises(sm.exceptions.ClientError, match="likelihood"):
        train(sm, s3, "forecasting-deepar", {**HPS, "likelihood": "poisson"},
              {"train": (lines(train_rows), None)})


def test_sdk_deepar_estimator_fits_deploys_predicts_and_transforms(sdk_env):
    """``image_uris.retrieve("forecasting-deepar")`` with a generic Estimator, as SageMaker's
    DeepAR examples do; deploy, predict JSON; batch transform JSON lines with
    DEEPAR_INFERENCE_CONFIG."""
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.serializers import JSONSerializer

    from opensage.sdk import fast_polling
    from tests.integration.conftest import ROLE

    session = sagemaker.Session()
    bucket = session.default_bucket()
    image = sagemaker.image_uris.retrieve("forecasting-deepar", session.boto_region_name)
    assert image.endswith("/forecasting-deepar:1")
    train_rows, _ = dataset(8, 80, seed=2)
    train_uri = session.upload_string_as_file_body(lines(train_rows).decode(), bucket,
                                                   "deepar/train/series.json")
    estimator = Estimator(image, ROLE, instance_count=1, instance_type="ml.c5.xlarge",
                          sagemaker_session=session, output_path=f"s3://{bucket}/deepar/out")
    estimator.set_hyperparameters(**{**HPS, "epochs": 2})
    with fast_polling(factor=100):
        estimator.fit({"train": TrainingInput(train_uri, content_type="json")}, logs=False)
        predictor = estimator.deploy(1, "ml.m5.large", serializer=JSONSerializer())
    try:
        answer = json.loads(predictor.predict({"instances": train_rows[:1], "configuration": {
            "num_samples": 20, "output_types": ["quantiles"], "quantiles": ["0.5"]}}))
    finally:
        with fast_polling(factor=100):
            predictor.delete_endpoint()
    assert list(answer["predictions"][0]) == ["quantiles"]
    assert len(answer["predictions"][0]["quantiles"]["0.5"]) == P

    source = session.upload_string_as_file_body(lines(train_rows[:3]).decode(), bucket,
                                                "deepar/transform/in/series.json")
    transformer = estimator.transformer(
        1, "ml.m5.large", strategy="MultiRecord", assemble_with="Line",
        accept="application/jsonlines", output_path=f"s3://{bucket}/deepar/transform/out",
        env={"DEEPAR_INFERENCE_CONFIG": json.dumps({"num_samples": 10,
                                                    "output_types": ["mean"]})})
    with fast_polling(factor=100):
        transformer.transform(source, content_type="application/jsonlines", split_type="Line",
                              wait=True, logs=False)
    out = session.read_s3_file(bucket, "deepar/transform/out/series.json.out")
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(rows) == 3 and all(list(r) == ["mean"] and len(r["mean"]) == P for r in rows)
