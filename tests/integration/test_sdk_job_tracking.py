"""Processing and transform jobs started inside an unchanged-SDK ``Run`` are tracked as AWS
tracks them (their ``-aws-processing-job`` / ``-aws-transform-job`` trial components join the
run's trial), and a model registered from a training job is in the lineage: ``QueryLineage``
from the model package reaches the job's training data."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from opensage.sdk import fast_polling
from tests.conftest import REGION
from tests.integration.conftest import ROLE, NetworkGuard
from tests.integration.script_jobs import SKLEARN_IMAGE
from tests.integration.test_training_jobs import regression_csv

SPLIT = """
    import glob, os
    import pandas as pd
    frame = pd.concat(pd.read_csv(f, header=None) for f in sorted(glob.glob(
        "/opt/ml/processing/input/*.csv")))
    os.makedirs("/opt/ml/processing/train", exist_ok=True)
    os.makedirs("/opt/ml/processing/features", exist_ok=True)
    frame.to_csv("/opt/ml/processing/train/train.csv", header=False, index=False)
    frame.iloc[:20, 1:].to_csv("/opt/ml/processing/features/features.csv", header=False,
                               index=False)
"""


def test_processing_and_transform_in_a_run_and_a_registered_models_lineage(
        sdk_env: NetworkGuard, tmp_path: Path) -> None:
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.experiments.run import Run
    from sagemaker.inputs import TrainingInput
    from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor

    session = sagemaker.Session()
    sm = session.sagemaker_client
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_bytes(regression_csv(120, 4)[0])
    raw = session.upload_data(str(tmp_path / "data"), key_prefix="tracked/raw")
    (tmp_path / "split.py").write_text(textwrap.dedent(SPLIT))
    processor = ScriptProcessor(command=["python3"], image_uri=SKLEARN_IMAGE, role=ROLE,
                                instance_type="ml.m5.large", instance_count=1,
                                sagemaker_session=session)
    image = sagemaker.image_uris.retrieve("xgboost", REGION, "1.7-1")
    estimator = Estimator(image_uri=image, role=ROLE, instance_count=1,
                          instance_type="ml.m5.large", sagemaker_session=session,
                          hyperparameters={"objective": "reg:squarederror", "num_round": 5})
    with Run(experiment_name="tracked", run_name="pipeline-by-hand",
             sagemaker_session=session), fast_polling(factor=100):
        processor.run(code=str(tmp_path / "split.py"),
                      inputs=[ProcessingInput(source=raw,
                                              destination="/opt/ml/processing/input")],
                      outputs=[ProcessingOutput(output_name="train",
                                                source="/opt/ml/processing/train"),
                               ProcessingOutput(output_name="features",
                                                source="/opt/ml/processing/features")],
                      wait=True, logs=False)
        processing = processor.latest_job.describe()
        outputs = {o["OutputName"]: o["S3Output"]["S3Uri"]
                   for o in processing["ProcessingOutputConfig"]["Outputs"]}
        estimator.fit({"train": TrainingInput(outputs["train"], content_type="text/csv")},
                      logs=False)
        transformer = estimator.transformer(instance_count=1, instance_type="ml.m5.large",
                                            output_path=f"s3://{session.default_bucket()}"
                                                        "/tracked/predictions")
        transformer.transform(outputs["features"], content_type="text/csv",
                              split_type="Line", wait=True, logs=False)
    run_config = {"ExperimentName": "tracked", "TrialName": "Default-Run-Group-tracked",
                  "RunName": "tracked-pipeline-by-hand"}
    assert processing["ExperimentConfig"] == run_config

    # the processing job's component
    processing_tc = sm.describe_trial_component(
        TrialComponentName=f"{processing['ProcessingJobName']}-aws-processing-job")
    assert processing_tc["Source"] == {"SourceArn": processing["ProcessingJobArn"],
                                       "SourceType": "SageMakerProcessingJob"}
    assert processing_tc["Status"]["PrimaryStatus"] == "Completed"
    assert processing_tc["EndTime"] is not None
    assert processing_tc["Parameters"]["SageMaker.ImageUri"] == {"StringValue": SKLEARN_IMAGE}
    assert processing_tc["Parameters"]["SageMaker.InstanceCount"] == {"NumberValue": 1.0}
    assert processing_tc["InputArtifacts"]["input-1"] == {"Value": raw}
    assert {k: v["Value"] for k, v in processing_tc["OutputArtifacts"].items()} == outputs

    # the transform job's component
    transform = sm.describe_transform_job(
        TransformJobName=transformer.latest_transform_job.name)
    assert transform["TransformJobStatus"] == "Completed"
    assert transform["ExperimentConfig"] == run_config
    transform_tc = sm.describe_trial_component(
        TrialComponentName=f"{transform['TransformJobName']}-aws-transform-job")
    assert transform_tc["Source"] == {"SourceArn": transform["TransformJobArn"],
                                      "SourceType": "SageMakerTransformJob"}
    assert transform_tc["Status"]["PrimaryStatus"] == "Completed"
    training = estimator.latest_training_job.describe()
    model_data = training["ModelArtifacts"]["S3ModelArtifacts"]
    assert transform_tc["InputArtifacts"]["SageMaker.InputData"]["Value"] == \
        outputs["features"]
    assert transform_tc["InputArtifacts"]["SageMaker.ModelArtifact"] == {"Value": model_data}
    assert transform_tc["OutputArtifacts"]["SageMaker.OutputData"] == {
        "Value": transform["TransformOutput"]["S3OutputPath"]}

    # every job joined the run's trial, next to the run's own component
    members = sm.list_trial_components(TrialName="Default-Run-Group-tracked", MaxResults=50)
    assert {c["TrialComponentName"] for c in members["TrialComponentSummaries"]} == {
        "tracked-pipeline-by-hand", processing_tc["TrialComponentName"],
        f"{training['TrainingJobName']}-aws-training-job", transform_tc["TrialComponentName"]}

    # the processing output is the data set the training job read: one artifact
    train_data = sm.list_artifacts(SourceUri=outputs["train"])["ArtifactSummaries"]
    assert [a["ArtifactType"] for a in train_data] == ["DataSet"]
    produced = sm.list_associations(SourceArn=processing_tc["TrialComponentArn"],
                                    AssociationType="Produced")["AssociationSummaries"]
    assert train_data[0]["ArtifactArn"] in {a["DestinationArn"] for a in produced}

    # a model registered from the training job: its lineage reaches the raw data
    package = estimator.register(content_types=["text/csv"], response_types=["text/csv"],
                                 inference_instances=["ml.m5.large"],
                                 transform_instances=["ml.m5.large"],
                                 model_package_group_name="tracked-models")
    registered = sm.list_artifacts(SourceUri=package.model_package_arn)["ArtifactSummaries"]
    assert [a["ArtifactType"] for a in registered] == ["ModelPackage"]
    found = sm.query_lineage(StartArns=[registered[0]["ArtifactArn"]],
                             Direction="Ascendants", IncludeEdges=True, MaxDepth=10)
    vertices: dict[str, Any] = {v["Arn"]: v for v in found["Vertices"]}
    model = sm.list_artifacts(SourceUri=model_data)["ArtifactSummaries"]
    assert [a["ArtifactType"] for a in model] == ["Model"]
    assert {"SourceArn": model[0]["ArtifactArn"],
            "DestinationArn": registered[0]["ArtifactArn"],
            "AssociationType": "ContributedTo"} in found["Edges"]
    training_tc = sm.describe_trial_component(
        TrialComponentName=f"{training['TrainingJobName']}-aws-training-job")
    assert vertices[training_tc["TrialComponentArn"]]["Type"] == "TrainingJob"
    assert vertices[processing_tc["TrialComponentArn"]]["Type"] == "ProcessingJob"
    raw_data = sm.list_artifacts(SourceUri=raw)["ArtifactSummaries"]
    assert vertices[raw_data[0]["ArtifactArn"]] == {
        "Arn": raw_data[0]["ArtifactArn"], "Type": "DataSet", "LineageType": "Artifact"}
    group = sm.describe_model_package_group(ModelPackageGroupName="tracked-models")
    contexts = sm.list_contexts(SourceUri=group["ModelPackageGroupArn"])["ContextSummaries"]
    assert [c["ContextType"] for c in contexts] == ["ModelGroup"]
    to_group = sm.list_associations(SourceArn=registered[0]["ArtifactArn"],
                                    DestinationArn=contexts[0]["ContextArn"])
    assert len(to_group["AssociationSummaries"]) == 1
