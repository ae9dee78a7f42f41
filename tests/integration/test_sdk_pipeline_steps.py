"""The unchanged SDK's TuningStep (a HyperparameterTuner over the built-in XGBoost, two
jobs), a ModelStep from the tuning step's top model, a CallbackStep answered with
SendPipelineExecutionStepSuccess (its token read from ListPipelineExecutionSteps), a
ConditionStep on the callback's output and a TransformStep, run end to end on opensage; the
steps' jobs join the execution's trial and lineage context."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.conftest import REGION
from tests.integration.conftest import ROLE, NetworkGuard
from tests.integration.test_training_jobs import regression_csv

CALLBACK_WAIT = 600.0  # seconds: the tuning jobs run first


def _callback_token(sm: Any, arn: str) -> str:
    """The Approve step's token, once it waits (read as a callback consumer reads it)."""
    deadline = time.monotonic() + CALLBACK_WAIT
    while time.monotonic() < deadline:
        steps = {s["StepName"]: s for s in sm.list_pipeline_execution_steps(
            PipelineExecutionArn=arn)["PipelineExecutionSteps"]}
        status = sm.describe_pipeline_execution(PipelineExecutionArn=arn)[
            "PipelineExecutionStatus"]
        assert status == "Executing", steps
        callback = (steps.get("Approve", {}).get("Metadata") or {}).get("Callback")
        if callback and callback.get("CallbackToken"):
            token: str = callback["CallbackToken"]
            return token
        time.sleep(0.2)
    raise AssertionError("the callback step never waited for its token")


def test_tuning_callback_condition_and_transform_steps(sdk_env: NetworkGuard,
                                                       tmp_path: Path) -> None:
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.model import Model
    from sagemaker.transformer import Transformer
    from sagemaker.tuner import HyperparameterTuner, IntegerParameter
    from sagemaker.workflow.callback_step import CallbackOutput, CallbackStep
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.steps import TransformStep, TuningStep

    session = PipelineSession()
    bucket = session.default_bucket()
    s3 = session.boto_session.client("s3")
    for channel, seed in (("train", 5), ("validation", 6)):
        s3.put_object(Bucket=bucket, Key=f"steps/{channel}/rows.csv",
                      Body=regression_csv(150, seed)[0])
    features = "\n".join(",".join(row.split(",")[1:]) for row in regression_csv(
        10, 7)[0].decode().splitlines()) + "\n"
    s3.put_object(Bucket=bucket, Key="steps/features/features.csv", Body=features.encode())
    image = sagemaker.image_uris.retrieve("xgboost", REGION, "1.7-1")
    estimator = Estimator(image_uri=image, role=ROLE, instance_count=1,
                          instance_type="ml.m5.large", sagemaker_session=session,
                          output_path=f"s3://{bucket}/tuned",
                          hyperparameters={"objective": "reg:squarederror", "num_round": 5})
    tuner = HyperparameterTuner(estimator, "validation:rmse",
                                {"max_depth": IntegerParameter(2, 5)},
                                objective_type="Minimize", max_jobs=2, max_parallel_jobs=2,
                                strategy="Random")
    tune = TuningStep("Tune", step_args=tuner.fit({
        "train": TrainingInput(f"s3://{bucket}/steps/train", content_type="text/csv"),
        "validation": TrainingInput(f"s3://{bucket}/steps/validation",
                                    content_type="text/csv")}))
    model = Model(image_uri=image, role=ROLE, sagemaker_session=session,
                  model_data=tune.get_top_model_s3_uri(top_k=0, s3_bucket=bucket,
                                                       prefix="tuned"))
    create = ModelStep("TopModel", step_args=model.create(instance_type="ml.m5.large"))
    verdict = CallbackOutput(output_name="verdict")
    approve = CallbackStep("Approve", sqs_queue_url="http://127.0.0.1:9/approvals",
                           inputs={"model": create.properties.ModelName},
                           outputs=[verdict])
    transformer = Transformer(model_name=create.properties.ModelName, instance_count=1,
                              instance_type="ml.m5.large", sagemaker_session=session,
                              assemble_with="Line",
                              output_path=f"s3://{bucket}/steps/predictions")
    predict = TransformStep("Predict", step_args=transformer.transform(
        f"s3://{bucket}/steps/features", content_type="text/csv", split_type="Line"))
    check = ConditionStep("Approved", conditions=[ConditionEquals(
        left=approve.properties.Outputs["verdict"], right="go")], if_steps=[predict])
    pipeline = Pipeline(name="steps", steps=[tune, create, approve, check],
                        sagemaker_session=session)
    pipeline.upsert(role_arn=ROLE)
    sm = session.sagemaker_client

    execution = pipeline.start()
    token = _callback_token(sm, execution.arn)
    waiting = {s["StepName"]: s for s in execution.list_steps()}
    assert waiting["Approve"]["StepStatus"] == "Executing"
    assert waiting["Approve"]["Metadata"]["Callback"]["SqsQueueUrl"] == \
        "http://127.0.0.1:9/approvals"
    sm.send_pipeline_execution_step_success(
        CallbackToken=token, OutputParameters=[{"Name": "verdict", "Value": "go"}])
    execution.wait(delay=1, max_attempts=600)
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded"
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert set(steps) == {"Tune", "TopModel-CreateModel", "Approve", "Approved", "Predict"}
    assert all(s["StepStatus"] == "Succeeded" for s in steps.values()), steps
    assert steps["Approve"]["Metadata"]["Callback"]["OutputParameters"] == [
        {"Name": "verdict", "Value": "go"}]
    assert steps["Approved"]["Metadata"] == {"Condition": {"Outcome": "True"}}

    # the tuning job ran two XGBoost jobs; the model is the best one's
    tuning_name = steps["Tune"]["Metadata"]["TuningJob"]["Arn"].split("/")[-1]
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    children = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning_name)["TrainingJobSummaries"]
    assert len(children) == 2
    best = tuning["BestTrainingJob"]["TrainingJobName"]
    model_name = steps["TopModel-CreateModel"]["Metadata"]["Model"]["Arn"].split("/")[-1]
    created = sm.describe_model(ModelName=model_name)
    assert created["PrimaryContainer"]["ModelDataUrl"] == \
        f"s3://{bucket}/tuned/{best}/output/model.tar.gz"
    assert sm.describe_training_job(TrainingJobName=best)["ModelArtifacts"][
        "S3ModelArtifacts"] == created["PrimaryContainer"]["ModelDataUrl"]

    # the transform step's job predicted every row with that model
    transform_arn = steps["Predict"]["Metadata"]["TransformJob"]["Arn"]
    transform = sm.describe_transform_job(TransformJobName=transform_arn.split("/")[-1])
    assert transform["ModelName"] == model_name
    out = s3.get_object(Bucket=bucket, Key="steps/predictions/features.csv.out")
    predictions = out["Body"].read().decode().split()
    assert len(predictions) == 10 and all(float(p) == float(p) for p in predictions)

    # the execution's trial (in the pipeline's experiment) holds the transform job's
    # component, which is also associated with the execution's lineage context
    execution_id = execution.arn.split("/")[-1]
    assert transform["ExperimentConfig"] == {"ExperimentName": "steps",
                                             "TrialName": execution_id}
    assert sm.list_tags(ResourceArn=transform_arn)["Tags"] == [
        {"Key": "sagemaker:pipeline-execution-arn", "Value": execution.arn}]
    component = f"{transform['TransformJobName']}-aws-transform-job"
    members = sm.list_trial_components(TrialName=execution_id)["TrialComponentSummaries"]
    assert component in {c["TrialComponentName"] for c in members}
    contexts = sm.list_contexts(SourceUri=execution.arn)["ContextSummaries"]
    assert [c["ContextType"] for c in contexts] == ["PipelineExecution"]
    tc_arn = sm.describe_trial_component(TrialComponentName=component)["TrialComponentArn"]
    linked = sm.list_associations(DestinationArn=contexts[0]["ContextArn"])[
        "AssociationSummaries"]
    assert tc_arn in {a["SourceArn"] for a in linked}
