"""The SageMaker SDK v2, unchanged, builds and runs pipelines on opensage (``sagemaker.workflow``
with ``PipelineSession``): process -> train (built-in XGBoost) -> evaluate (a processing job
writing evaluation.json) -> condition on ``JsonGet`` -> register the model and create it,
checked end to end; then the same pipeline again, every job step a cache hit."""

from __future__ import annotations

import json
import tarfile
import textwrap
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import WaiterError

from tests.conftest import REGION
from tests.integration.conftest import ROLE, NetworkGuard
from tests.integration.test_training_jobs import regression_csv

PREPROCESS = """
    import glob, os
    import pandas as pd
    frame = pd.concat(pd.read_csv(f, header=None) for f in sorted(glob.glob(
        "/opt/ml/processing/input/*.csv")))
    cut = int(len(frame) * 0.8)
    for name, part in (("train", frame[:cut]), ("test", frame[cut:])):
        os.makedirs(f"/opt/ml/processing/{name}", exist_ok=True)
        part.to_csv(f"/opt/ml/processing/{name}/{name}.csv", header=False, index=False)
"""

EVALUATE = """
    import json, os, tarfile
    import pandas as pd
    with tarfile.open("/opt/ml/processing/model/model.tar.gz") as tar:
        names = tar.getnames()
    test = pd.read_csv("/opt/ml/processing/test/test.csv", header=None)
    baseline = float(((test[0] - test[0].mean()) ** 2).mean())
    os.makedirs("/opt/ml/processing/evaluation", exist_ok=True)
    with open("/opt/ml/processing/evaluation/evaluation.json", "w") as f:
        json.dump({"metrics": {"rows": {"value": len(test)},
                               "baseline_mse": {"value": baseline}},
                   "model_files": names}, f)
"""


def build_pipeline(session: Any, bucket: str, tmp_path: Path, name: str) -> Any:
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.model import Model
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.sklearn.processing import SKLearnProcessor
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import ParameterInteger, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep

    (tmp_path / "preprocess.py").write_text(textwrap.dedent(PREPROCESS))
    (tmp_path / "evaluate.py").write_text(textwrap.dedent(EVALUATE))
    input_data = ParameterString("InputData", default_value=f"s3://{bucket}/pipeline-data")
    min_rows = ParameterInteger("MinRows", default_value=10)
    rounds = ParameterString("Rounds", default_value="5")
    cache = CacheConfig(enable_caching=True, expire_after="PT1H")

    processor = SKLearnProcessor(framework_version="1.2-1", role=ROLE,
                                 instance_type="ml.m5.large", instance_count=1,
                                 sagemaker_session=session)
    process = ProcessingStep("Process", cache_config=cache, step_args=processor.run(
        code=str(tmp_path / "preprocess.py"),
        inputs=[ProcessingInput(source=input_data, destination="/opt/ml/processing/input")],
        outputs=[ProcessingOutput(output_name="train", source="/opt/ml/processing/train"),
                 ProcessingOutput(output_name="test", source="/opt/ml/processing/test")]))

    image = sagemaker.image_uris.retrieve("xgboost", REGION, "1.7-1")
    estimator = Estimator(image_uri=image, role=ROLE, instance_count=1,
                          instance_type="ml.m5.large", sagemaker_session=session,
                          output_path=f"s3://{bucket}/pipeline-models",
                          hyperparameters={"objective": "reg:squarederror",
                                           "num_round": rounds, "max_depth": 3})
    train = TrainingStep("Train", cache_config=cache, step_args=estimator.fit({
        "train": TrainingInput(process.properties.ProcessingOutputConfig.Outputs[
            "train"].S3Output.S3Uri, content_type="text/csv")}))

    report = PropertyFile(name="EvaluationReport", output_name="evaluation",
                          path="evaluation.json")
    evaluate = ProcessingStep("Evaluate", cache_config=cache, property_files=[report],
                              step_args=processor.run(
        code=str(tmp_path / "evaluate.py"),
        inputs=[ProcessingInput(source=train.properties.ModelArtifacts.S3ModelArtifacts,
                                destination="/opt/ml/processing/model"),
                ProcessingInput(source=process.properties.ProcessingOutputConfig.Outputs[
                    "test"].S3Output.S3Uri, destination="/opt/ml/processing/test")],
        outputs=[ProcessingOutput(output_name="evaluation",
                                  source="/opt/ml/processing/evaluation")]))

    model = Model(image_uri=image, model_data=train.properties.ModelArtifacts.S3ModelArtifacts,
                  role=ROLE, sagemaker_session=session)
    register = ModelStep("Register", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"],
        inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
        model_package_group_name=f"{name}-models", approval_status="Approved"))
    create = ModelStep("Create", step_args=model.create(instance_type="ml.m5.large"))
    too_small = FailStep("TooSmall", error_message=Join(on=" ", values=[
        "only", JsonGet(step_name=evaluate.name, property_file=report,
                        json_path="metrics.rows.value"), "test rows"]))
    check = ConditionStep("CheckRows", conditions=[ConditionGreaterThanOrEqualTo(
        left=JsonGet(step_name=evaluate.name, property_file=report,
                     json_path="metrics.rows.value"), right=min_rows)],
        if_steps=[register, create], else_steps=[too_small])
    return Pipeline(name=name, parameters=[input_data, min_rows, rounds],
                    steps=[process, train, evaluate, check], sagemaker_session=session)


def _s3_json(session: Any, uri: str) -> Any:
    bucket, key = uri[5:].split("/", 1)
    body = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    return json.loads(body.read())


def test_process_train_evaluate_condition_register_then_cached_rerun(
        sdk_env: NetworkGuard, tmp_path: Path):
    from sagemaker.workflow.pipeline_context import PipelineSession

    session = PipelineSession()
    bucket = session.default_bucket()
    s3 = session.boto_session.client("s3")
    s3.put_object(Bucket=bucket, Key="pipeline-data/rows.csv", Body=regression_csv(200, 3)[0])
    sm = session.sagemaker_client
    pipeline = build_pipeline(session, bucket, tmp_path, "sdk-e2e")
    pipeline.upsert(role_arn=ROLE)
    pipeline.upsert(role_arn=ROLE, description="again")  # create, then update
    assert sm.describe_pipeline(PipelineName="sdk-e2e")["PipelineDescription"] == "again"

    execution = pipeline.start()
    execution.wait(delay=1, max_attempts=600)
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded"
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert set(steps) == {"Process", "Train", "Evaluate", "CheckRows",
                          "Register-RegisterModel", "Create-CreateModel"}
    assert all(s["StepStatus"] == "Succeeded" for s in steps.values())
    assert steps["CheckRows"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    execution_id = execution.arn.split("/")[-1]
    training_arn = steps["Train"]["Metadata"]["TrainingJob"]["Arn"]
    training_name = training_arn.split("/")[-1]
    assert training_name.startswith(f"pipelines-{execution_id}-train-")
    job = sm.describe_training_job(TrainingJobName=training_name)
    assert job["TrainingJobStatus"] == "Completed"
    assert job["HyperParameters"]["num_round"] == "5"
    process_job = sm.describe_processing_job(ProcessingJobName=steps["Process"]["Metadata"][
        "ProcessingJob"]["Arn"].split("/")[-1])
    train_output = process_job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert execution_id in train_output  # the SDK's Join with the execution id, resolved
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == train_output
    evaluation = sm.describe_processing_job(ProcessingJobName=steps["Evaluate"]["Metadata"][
        "ProcessingJob"]["Arn"].split("/")[-1])
    report_uri = evaluation["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    report = _s3_json(session, report_uri + "/evaluation.json")
    assert report["metrics"]["rows"]["value"] == 40 and "xgboost-model" in report["model_files"]

    package_arn = steps["Register-RegisterModel"]["Metadata"]["RegisterModel"]["Arn"]
    package = sm.describe_model_package(ModelPackageName=package_arn)
    assert package["ModelPackageGroupName"] == "sdk-e2e-models"
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == \
        job["ModelArtifacts"]["S3ModelArtifacts"]
    model_arn = steps["Create-CreateModel"]["Metadata"]["Model"]["Arn"]
    model = sm.describe_model(ModelName=model_arn.split("/")[-1])
    assert model["PrimaryContainer"]["ModelDataUrl"] == job["ModelArtifacts"][
        "S3ModelArtifacts"]
    artifact = BytesIO(s3.get_object(**dict(zip(("Bucket", "Key"), job["ModelArtifacts"][
        "S3ModelArtifacts"][5:].split("/", 1))))["Body"].read())
    with tarfile.open(fileobj=artifact) as tar:
        assert "xgboost-model" in tar.getnames()

    # The same pipeline again: the job steps are cache hits, no new job is created.
    trainings = len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    processings = len(sm.list_processing_jobs(MaxResults=100)["ProcessingJobSummaries"])
    again = pipeline.start()
    again.wait(delay=1, max_attempts=600)
    assert again.describe()["PipelineExecutionStatus"] == "Succeeded"
    cached = {s["StepName"]: s for s in again.list_steps()}
    for name in ("Process", "Train", "Evaluate"):
        assert cached[name]["CacheHitResult"] == {"SourcePipelineExecutionArn": execution.arn}
        assert cached[name]["Metadata"] == steps[name]["Metadata"]
    assert len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) == trainings
    assert len(sm.list_processing_jobs(MaxResults=100)[
        "ProcessingJobSummaries"]) == processings
    versions = sm.list_model_packages(ModelPackageGroupName="sdk-e2e-models")[
        "ModelPackageSummaryList"]
    assert len(versions) == 2  # register is no cached step: a second version

    # A parameter change: a different training (not a cache hit), the condition goes to Fail.
    third = pipeline.start(parameters={"Rounds": "3", "MinRows": 1000})
    with pytest.raises(WaiterError):  # the SDK's waiter raises on Failed
        third.wait(delay=1, max_attempts=600)
    assert third.describe()["PipelineExecutionStatus"] == "Failed"
    third_steps = {s["StepName"]: s for s in third.list_steps()}
    assert "CacheHitResult" in third_steps["Process"]
    assert "CacheHitResult" not in third_steps["Train"]
    assert third_steps["TooSmall"]["FailureReason"] == "only 40 test rows"
    parameters = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=third.arn)
    assert {p["Name"]: p["Value"] for p in parameters["PipelineParameters"]}["Rounds"] == "3"
