"""The linear-learner built-in through the API: binary (logistic, hinge), multiclass and
regression jobs on scikit-learn's bundled data sets, against scikit-learn's reference models on
the same split; metrics as AWS names them; inference in every content type; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from opensage.algorithms.linear_learner.serve import load
from opensage.data.recordio import encode_dense, encode_sparse, iter_records
from tests.integration.builtins import RECORDIO, deploy, invoke, metrics, model_dir, train

BINARY_METRICS = {"objective_loss", "binary_classification_accuracy", "binary_f_beta",
                  "precision", "recall", "roc_auc_score"}


def csv(rows: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    if labels is not None:
        rows = np.column_stack([labels, rows])
    return ("\n".join(",".join(f"{v:.8g}" for v in row) for row in rows) + "\n").encode()


def split(loader, test_size: float = 0.25):
    x, y = loader(return_X_y=True)
    return train_test_split(x.astype(np.float32), y.astype(np.float64), test_size=test_size,
                            random_state=0, stratify=y if loader is not load_diabetes else None)


def test_binary_logistic_matches_sklearn_and_serves(sm, s3, client, tmp_path):
    x_train, x_test, y_train, y_test = split(load_breast_cancer)
    job = train(sm, s3, "linear-learner",
                {"predictor_type": "binary_classifier", "feature_dim": 30,
                 "mini_batch_size": 50, "epochs": 30},
                {"train": (encode_dense(x_train, y_train), None),
                 "test": (csv(x_test, y_test), "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    ours = model.predict(x_test, False)
    accuracy = float(np.mean(ours["predicted_label"] == y_test))
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    theirs = reference.fit(x_train, y_train).score(x_test, y_test)
    assert accuracy >= theirs - 0.01
    found = metrics(job)
    assert BINARY_METRICS <= {name.split(":", 1)[1] for name in found if
                              name.startswith("test:")}
    assert found["test:binary_classification_accuracy"] == pytest.approx(accuracy)
    assert found["test:roc_auc_score"] > 0.97
    assert "train:objective_loss" in found

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "linear-learner", job)
    body, content_type = invoke(runtime, endpoint, csv(x_test[:3]), "text/csv",
                                "application/json")
    assert content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    assert [p["predicted_label"] for p in predictions] == ours["predicted_label"][:3].tolist()
    assert [p["score"] for p in predictions] == pytest.approx(ours["score"][:3].tolist(),
                                                             rel=1e-5)
    assert all(0 <= p["score"] <= 1 for p in predictions)
    instances = {"instances": [{"features": row.tolist()} for row in x_test[:2]]}
    body, _ = invoke(runtime, endpoint, json.dumps(instances), "application/json",
                     "application/jsonlines")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert set(lines[0]) == {"score", "predicted_label"}
    assert [line["predicted_label"] for line in lines] == ours["predicted_label"][:2].tolist()
    body, content_type = invoke(runtime, endpoint, encode_dense(x_test[:2]), RECORDIO, RECORDIO)
    records = list(iter_records(body))
    assert content_type == RECORDIO and len(records) == 2
    assert records[1].label["predicted_label"].values[0] == ours["predicted_label"][1]
    assert records[1].label["score"].values[0] == pytest.approx(ours["score"][1], rel=1e-5)
    body, _ = invoke(runtime, endpoint, encode_sparse(scipy.sparse.csr_matrix(x_test[:2])), RECORDIO, "text/csv")
    assert len(body.decode().splitlines()) == 2
    with pytest.raises(runtime.exceptions.ModelError, match="feature_dim 30"):
        invoke(runtime, endpoint, csv(x_test[:2, :10]), "text/csv")
    with pytest.raises(runtime.exceptions.ModelError, match="record 2"):
        invoke(runtime, endpoint, b"1" + b",1" * 29 + b"\n" + b"nan" + b",1" * 29 + b"\n",
               "text/csv")


def test_binary_hinge_loss_and_selection_criteria(sm, s3, tmp_path):
    x_train, x_test, y_train, y_test = split(load_breast_cancer)
    x_fit, x_val, y_fit, y_val = train_test_split(x_train, y_train, test_size=0.25,
                                                  random_state=1, stratify=y_train)
    job = train(sm, s3, "linear-learner",
                {"predictor_type": "binary_classifier", "loss": "hinge_loss",
                 "feature_dim": 30, "mini_batch_size": 50, "epochs": 30,
                 "binary_classifier_model_selection_criteria": "precision_at_target_recall",
                 "target_recall": 0.9, "positive_example_weight_mult": "balanced"},
                {"train": (csv(x_fit, y_fit), "text/csv"),
                 "validation": (encode_dense(x_val, y_val), None),
                 "test": (encode_dense(x_test, y_test), None)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    assert BINARY_METRICS <= {name.split(":", 1)[1] for name in found
                              if name.startswith("validation:")}
    assert found["validation:recall"] >= 0.9
    model = load(model_dir(s3, job, tmp_path / "model"))
    accuracy = float(np.mean(model.predict(x_test, False)["predicted_label"] == y_test))
    svm = make_pipeline(StandardScaler(), LinearSVC(dual=False)).fit(x_fit, y_fit)
    assert accuracy >= svm.score(x_test, y_test) - 0.03  # threshold tuned for recall, not acc.


def test_multiclass_matches_sklearn(sm, s3, client, tmp_path):
    x_train, x_test, y_train, y_test = split(load_wine, 0.3)
    job = train(sm, s3, "linear-learner",
                {"predictor_type": "multiclass_classifier", "num_classes": 3,
                 "feature_dim": 13, "mini_batch_size": 32, "epochs": 40,
                 "balance_multiclass_weights": "true", "accuracy_top_k": 2},
                {"train": (encode_dense(x_train, y_train), None),
                 "test": (csv(x_test, y_test), "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    ours = model.predict(x_test, False)
    accuracy = float(np.mean(ours["predicted_label"] == y_test))
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    assert accuracy >= reference.fit(x_train, y_train).score(x_test, y_test) - 0.01
    found = metrics(job)
    assert found["test:multiclass_accuracy"] == pytest.approx(accuracy)
    for name in ("objective_loss", "multiclass_top_k_accuracy", "macro_f_beta",
                 "macro_precision", "macro_recall", "dcg"):
        assert f"test:{name}" in found
    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "linear-learner", job)
    body, _ = invoke(runtime, endpoint, csv(x_test[:2]), "text/csv", "application/json")
    predictions = json.loads(body)["predictions"]
    assert len(predictions[0]["score"]) == 3
    assert sum(predictions[0]["score"]) == pytest.approx(1, rel=1e-5)
    assert [p["predicted_label"] for p in predictions] == ours["predicted_label"][:2].tolist()
    body, _ = invoke(runtime, endpoint, encode_dense(x_test[:1]), RECORDIO, RECORDIO)
    record = next(iter(iter_records(body)))
    assert list(record.label["score"].values) == pytest.approx(ours["score"][0].tolist(),
                                                               rel=1e-5)


def test_regressor_matches_linear_regression(sm, s3, client, tmp_path):
    x_train, x_test, y_train, y_test = split(load_diabetes)
    job = train(sm, s3, "linear-learner",
                {"predictor_type": "regressor", "feature_dim": 10, "mini_batch_size": 32,
                 "epochs": 40},
                {"train": (csv(x_train, y_train), "text/csv"),
                 "test": (encode_dense(x_test, y_test), None)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = load(model_dir(s3, job, tmp_path / "model"))
    ours = model.predict(x_test, False)["score"]
    mse = float(np.mean((ours - y_test) ** 2))
    reference = LinearRegression().fit(x_train, y_train)
    theirs = float(np.mean((reference.predict(x_test) - y_test) ** 2))
    assert mse <= theirs * 1.03
    r2 = 1 - mse / float(np.var(y_test))
    assert r2 >= reference.score(x_test, y_test) - 0.01
    found = metrics(job)
    assert found["test:mse"] == pytest.approx(mse, rel=1e-4)
    assert found["test:rmse"] == pytest.approx(mse ** 0.5, rel=1e-4)
    assert {"test:absolute_loss", "test:objective_loss"} <= set(found)
    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "linear-learner", job)
    body, _ = invoke(runtime, endpoint, csv(x_test[:2]), "text/csv", "application/json")
    predictions = json.loads(body)["predictions"]
    assert [set(p) for p in predictions] == [{"score"}, {"score"}]
    assert [p["score"] for p in predictions] == pytest.approx(ours[:2].tolist(), rel=1e-5)


@pytest.mark.parametrize(("hps", "label", "expected"), [
    ({"predictor_type": "binary_classifier"}, 2.0, "record 8 has label 2.0"),
    ({"predictor_type": "multiclass_classifier", "num_classes": 3}, 1.5,
     "record 8 has label 1.5"),
    ({"predictor_type": "multiclass_classifier", "num_classes": 3}, 3.0,
     "record 8 has label 3.0"),
])
def test_labels_out_of_range_fail_the_job(sm, s3, hps, label, expected):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (np.arange(40) % 2).astype(np.float32)
    y[7] = label
    job = train(sm, s3, "linear-learner", {**hps, "feature_dim": 4, "epochs": 1},
                {"train": (encode_dense(x, y), None)})
    assert job["TrainingJobStatus"] == "Failed"
    assert expected in job["FailureReason"], job["FailureReason"]


def test_bad_features_fail_the_job(sm, s3):
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    y = (np.arange(30) % 2).astype(np.float32)
    x[4, 1] = np.inf
    job = train(sm, s3, "linear-learner", {"predictor_type": "regressor", "feature_dim": 4},
                {"train": (encode_dense(x, y), None)})
    assert job["TrainingJobStatus"] == "Failed"
    assert "record 5" in job["FailureReason"] and "feature 2" in job["FailureReason"]
    job = train(sm, s3, "linear-learner", {"predictor_type": "regressor", "feature_dim": 4},
                {"train": (csv(np.nan_to_num(x, posinf=0)), "text/csv")})  # no label column
    assert job["TrainingJobStatus"] == "Failed"


def test_rejects_bad_hyperparameters_up_front(sm, s3):
    data = {"train": (encode_dense(np.ones((4, 4), np.float32), np.ones(4)), None)}
    with pytest.raises(sm.exceptions.ClientError, match="num_classes"):
        train(sm, s3, "linear-learner", {"predictor_type": "multiclass_classifier"}, data)
    with pytest.raises(sm.exceptions.ClientError, match="'loss'"):
        train(sm, s3, "linear-learner", {"predictor_type": "regressor", "loss": "logistic"},
              data)
    with pytest.raises(sm.exceptions.ClientError, match="positive_example_weight_mult"):
        train(sm, s3, "linear-learner", {"predictor_type": "binary_classifier",
                                         "positive_example_weight_mult": "-1"}, data)
    with pytest.raises(sm.exceptions.ClientError, match="predictor_type"):
        train(sm, s3, "linear-learner", {"feature_dim": 4}, data)


def test_tuning_linear_learner_over_auto_or_number_hyperparameters(sm, s3):
    """A tuning job ranges over hyperparameters whose default is 'auto' (wd, learning_rate)
    and one that also takes 'balanced'; its children train and the best is reported."""
    import time

    from tests.integration.builtins import image
    from tests.integration.test_training_jobs import BUCKET, ROLE

    x, y = load_breast_cancer(return_X_y=True)
    for channel, rows in (("train", slice(0, 400)), ("validation", slice(400, None))):
        s3.put_object(Bucket=BUCKET, Key=f"ll-tune/{channel}/part-0",
                      Body=encode_dense(x[rows].astype(np.float32), y[rows].astype(np.float32)))
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="ll-tune",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {
                "Type": "Maximize", "MetricName": "validation:binary_classification_accuracy"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "wd", "MinValue": "1e-7", "MaxValue": "1",
                     "ScalingType": "Logarithmic"},
                    {"Name": "learning_rate", "MinValue": "1e-3", "MaxValue": "0.3",
                     "ScalingType": "Logarithmic"},
                    {"Name": "positive_example_weight_mult", "MinValue": "0.5",
                     "MaxValue": "2"}]}},
        TrainingJobDefinition={
            "AlgorithmSpecification": {"TrainingImage": image("linear-learner"),
                                       "TrainingInputMode": "File"},
            "StaticHyperParameters": {"predictor_type": "binary_classifier",
                                      "feature_dim": "30", "epochs": "5"},
            "RoleArn": ROLE,
            "InputDataConfig": [
                {"ChannelName": channel, "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/ll-tune/{channel}/",
                    "S3DataDistributionType": "FullyReplicated"}}}
                for channel in ("train", "validation")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/ll-tune/out/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                               "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="ll-tune")
        if job["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            break
        time.sleep(0.2)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job
    assert job["TrainingJobStatusCounters"]["Completed"] == 2
    best = job["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] > 0.9
    assert set(best["TunedHyperParameters"]) == {"wd", "learning_rate",
                                                 "positive_example_weight_mult"}
