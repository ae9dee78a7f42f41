"""The SageMaker SDK v2's experiments, unchanged, on opensage: ``Run`` with
log_parameter(s)/log_metric/log_file, ``load_run``, ``ExperimentAnalytics``; a built-in
XGBoost training job inside a ``Run`` is tracked as AWS tracks it, and ``QueryLineage`` follows
its model back to its training data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from opensage.sdk import fast_polling
from tests.conftest import REGION
from tests.integration.conftest import ROLE, NetworkGuard
from tests.integration.test_training_jobs import regression_csv


def test_run_logs_and_experiment_analytics_show_exact_values(sdk_env: NetworkGuard,
                                                             tmp_path: Path) -> None:
    import sagemaker
    from sagemaker.analytics import ExperimentAnalytics
    from sagemaker.experiments.run import Run, load_run

    session = sagemaker.Session()
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    losses = [0.8, 0.4, 0.3]
    with Run(experiment_name="Exp-A", run_name="Run-1", sagemaker_session=session) as run:
        run.log_parameter("lr", 0.1)
        run.log_parameters({"optimizer": "adam", "epochs": 3})
        for step, loss in enumerate(losses):
            run.log_metric(name="loss", value=loss, step=step)
        run.log_file(str(notes), name="notes", is_output=True)
    sm = session.sagemaker_client
    component = sm.describe_trial_component(TrialComponentName="exp-a-run-1")
    assert component["Status"]["PrimaryStatus"] == "Completed"
    assert component["Parameters"] == {"lr": {"NumberValue": 0.1},
                                       "optimizer": {"StringValue": "adam"},
                                       "epochs": {"NumberValue": 3.0}}
    artifact = component["OutputArtifacts"]["notes"]
    assert artifact["MediaType"] == "text/plain"
    bucket, _, key = artifact["Value"].removeprefix("s3://").partition("/")
    body = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    assert body.read() == b"hello"
    assert sm.describe_trial(TrialName="Default-Run-Group-exp-a")["ExperimentName"] == "exp-a"

    with load_run(experiment_name="Exp-A", run_name="Run-1", sagemaker_session=session) as run:
        run.log_parameter("reloaded", "yes")
        run.log_metric(name="loss", value=0.1, step=3)

    frame = ExperimentAnalytics(experiment_name="exp-a", sagemaker_session=session).dataframe()
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["TrialComponentName"] == "exp-a-run-1"
    assert (row["lr"], row["optimizer"], row["epochs"], row["reloaded"]) == (
        0.1, "adam", 3.0, "yes")
    every = [*losses, 0.1]
    mean = sum(every) / len(every)
    assert (row["loss - Count"], row["loss - Min"], row["loss - Max"], row["loss - Last"]) == (
        4, 0.1, 0.8, 0.1)
    assert row["loss - Avg"] == pytest.approx(mean)
    assert row["loss - StdDev"] == pytest.approx(
        math.sqrt(sum((v - mean) ** 2 for v in every) / 3))
    assert row["notes - Value"] == artifact["Value"]
    assert row["Trials"] == ["Default-Run-Group-exp-a"]
    assert row["Experiments"] == ["exp-a"]


def test_training_job_in_a_run_is_tracked_and_lineage_reaches_its_data(
        sdk_env: NetworkGuard, tmp_path: Path) -> None:
    import sagemaker
    from sagemaker.analytics import ExperimentAnalytics
    from sagemaker.estimator import Estimator
    from sagemaker.experiments.run import Run
    from sagemaker.inputs import TrainingInput

    session = sagemaker.Session()
    for channel, seed in (("train", 1), ("validation", 2)):
        (tmp_path / channel).mkdir()
        (tmp_path / channel / "data.csv").write_bytes(regression_csv(200, seed)[0])
    train = session.upload_data(str(tmp_path / "train"), key_prefix="exp/train")
    validation = session.upload_data(str(tmp_path / "validation"), key_prefix="exp/validation")
    estimator = Estimator(image_uri=sagemaker.image_uris.retrieve("xgboost", REGION, "1.7-1"),
                          role=ROLE, instance_count=1, instance_type="ml.m5.large",
                          sagemaker_session=session,
                          hyperparameters={"objective": "reg:squarederror", "num_round": 10,
                                           "max_depth": 3})
    with Run(experiment_name="exp-b", run_name="with-job", sagemaker_session=session) as run:
        run.log_parameter("note", "fit inside a run")
        with fast_polling(factor=100):
            estimator.fit({"train": TrainingInput(train, content_type="text/csv"),
                           "validation": TrainingInput(validation, content_type="text/csv")},
                          logs=False)
    sm = session.sagemaker_client
    job = estimator.latest_training_job.describe()
    assert job["ExperimentConfig"] == {"ExperimentName": "exp-b",
                                       "TrialName": "Default-Run-Group-exp-b",
                                       "RunName": "exp-b-with-job"}
    name = f"{job['TrainingJobName']}-aws-training-job"
    component = sm.describe_trial_component(TrialComponentName=name)
    assert component["Source"] == {"SourceArn": job["TrainingJobArn"],
                                   "SourceType": "SageMakerTrainingJob"}
    assert component["Status"]["PrimaryStatus"] == "Completed"
    assert component["Parameters"]["max_depth"] == {"NumberValue": 3.0}
    assert component["Parameters"]["objective"] == {"StringValue": "reg:squarederror"}
    assert component["InputArtifacts"]["train"]["Value"] == train
    assert component["OutputArtifacts"]["SageMaker.ModelArtifact"]["Value"] == \
        job["ModelArtifacts"]["S3ModelArtifacts"]
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert final  # the built-in reports validation metrics
    summaries = {m["MetricName"]: m for m in component["Metrics"]}
    for metric, value in final.items():
        assert summaries[metric]["Last"] == pytest.approx(value)
        assert summaries[metric]["SourceArn"] == job["TrainingJobArn"]
    members = sm.list_trial_components(TrialName="Default-Run-Group-exp-b")
    assert {c["TrialComponentName"] for c in members["TrialComponentSummaries"]} == {
        "exp-b-with-job", name}
    assert sm.list_trial_components(SourceArn=job["TrainingJobArn"])[
        "TrialComponentSummaries"][0]["TrialComponentName"] == name
    frame = ExperimentAnalytics(experiment_name="exp-b", sagemaker_session=session).dataframe()
    rows = {r["TrialComponentName"]: r for _, r in frame.iterrows()}
    assert rows["exp-b-with-job"]["note"] == "fit inside a run"
    assert rows[name]["SourceArn"] == job["TrainingJobArn"]
    for metric, value in final.items():
        assert rows[name][f"{metric} - Last"] == pytest.approx(value)

    # lineage: the model artifact's ascendants reach the training data
    model = sm.list_artifacts(SourceUri=job["ModelArtifacts"]["S3ModelArtifacts"])[
        "ArtifactSummaries"]
    assert [a["ArtifactType"] for a in model] == ["Model"]
    found = sm.query_lineage(StartArns=[model[0]["ArtifactArn"]], Direction="Ascendants",
                             IncludeEdges=True)
    vertices: dict[str, Any] = {v["Arn"]: v for v in found["Vertices"]}
    data = sm.list_artifacts(SourceUri=train)["ArtifactSummaries"]
    assert data and data[0]["ArtifactType"] == "DataSet"
    assert vertices[data[0]["ArtifactArn"]]["LineageType"] == "Artifact"
    assert vertices[component["TrialComponentArn"]] == {
        "Arn": component["TrialComponentArn"], "Type": "TrainingJob",
        "LineageType": "TrialComponent"}
    assert {"SourceArn": component["TrialComponentArn"],
            "DestinationArn": model[0]["ArtifactArn"], "AssociationType": "Produced"} in \
        found["Edges"]
