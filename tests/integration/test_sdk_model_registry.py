"""The model registry and algorithm resources with the SageMaker SDK v2, unchanged: a trained
built-in XGBoost model is registered (``estimator.register``), deployed from its version
(``ModelPackage(...).deploy``, which approves it first) and answers ``predict``, and so does
a script-mode SKLearn model (its package carries SAGEMAKER_PROGRAM and the code); a training
job named by an algorithm resource runs the algorithm's image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opensage.sdk import fast_polling
from tests.conftest import REGION
from tests.integration.conftest import ROLE, NetworkGuard
from tests.integration.test_training_jobs import regression_csv


def _upload(session, tmp_path: Path) -> tuple[str, str]:
    for channel, seed in (("train", 1), ("validation", 2)):
        (tmp_path / channel).mkdir(exist_ok=True)
        (tmp_path / channel / "data.csv").write_bytes(regression_csv(300, seed)[0])
    return (session.upload_data(str(tmp_path / "train"), key_prefix="reg/train"),
            session.upload_data(str(tmp_path / "validation"), key_prefix="reg/validation"))


def test_register_deploy_predict_from_the_registry(sdk_env: NetworkGuard, tmp_path: Path):
    import sagemaker
    from sagemaker import ModelPackage
    from sagemaker.deserializers import CSVDeserializer
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    session = sagemaker.Session()
    train, _ = _upload(session, tmp_path)
    image = sagemaker.image_uris.retrieve("xgboost", REGION, "1.7-1")
    estimator = Estimator(image_uri=image, role=ROLE, instance_count=1,
                          instance_type="ml.m5.large", sagemaker_session=session,
                          hyperparameters={"objective": "reg:squarederror", "num_round": 20,
                                           "max_depth": 3})
    with fast_polling(factor=100):
        estimator.fit({"train": TrainingInput(train, content_type="text/csv")}, logs=False)
        package = estimator.register(
            content_types=["text/csv"], response_types=["text/csv"],
            inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
            model_package_group_name="sdk-registry")  # the SDK creates the group
        second = estimator.register(
            content_types=["text/csv"], response_types=["text/csv"],
            inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
            model_package_group_name="sdk-registry", approval_status="Approved")
    sm = session.sagemaker_client
    assert package.model_package_arn.endswith(":model-package/sdk-registry/1")
    assert second.model_package_arn.endswith(":model-package/sdk-registry/2")
    described = sm.describe_model_package(ModelPackageName=package.model_package_arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == \
        estimator.model_data
    assert sm.describe_model_package(ModelPackageName=second.model_package_arn)[
        "ModelApprovalStatus"] == "Approved"

    deployable = ModelPackage(role=ROLE, model_package_arn=package.model_package_arn,
                              sagemaker_session=session)
    endpoint = "registry-endpoint"
    with fast_polling(factor=60):
        deployable.deploy(1, "ml.m5.large", endpoint_name=endpoint)
    try:  # the SDK approved the version before CreateModel
        assert sm.describe_model_package(ModelPackageName=package.model_package_arn)[
            "ModelApprovalStatus"] == "Approved"
        predictor = Predictor(endpoint, sagemaker_session=session,
                              serializer=CSVSerializer(), deserializer=CSVDeserializer())
        _, x_test, y_test = regression_csv(50, seed=3)
        answers = predictor.predict(x_test)
        predictions = np.array([float(v) for row in answers for v in row])
        assert len(predictions) == 50
        assert np.corrcoef(predictions, y_test)[0, 1] > 0.9
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_algorithm_name_training_job_runs_and_tunes(sdk_env: NetworkGuard, tmp_path: Path):
    import sagemaker
    from botocore.exceptions import ClientError

    session = sagemaker.Session()
    train, validation = _upload(session, tmp_path)
    sm = session.sagemaker_client
    image = sagemaker.image_uris.retrieve("xgboost", REGION, "1.7-1")
    sm.create_algorithm(AlgorithmName="declared-xgb", TrainingSpecification={
        "TrainingImage": image,
        "SupportedHyperParameters": [
            {"Name": "num_round", "Type": "Integer", "IsRequired": True,
             "Range": {"IntegerParameterRangeSpecification": {"MinValue": "1",
                                                              "MaxValue": "40"}}},
            {"Name": "eta", "Type": "Continuous", "IsTunable": True,
             "Range": {"ContinuousParameterRangeSpecification": {"MinValue": "0.01",
                                                                 "MaxValue": "1"}}},
            {"Name": "max_depth", "Type": "Integer", "IsTunable": False, "DefaultValue": "6",
             "Range": {"IntegerParameterRangeSpecification": {"MinValue": "1",
                                                              "MaxValue": "10"}}},
            {"Name": "objective", "Type": "FreeText"},
        ],
        "SupportedTrainingInstanceTypes": ["ml.m5.large"],
        "TrainingChannels": [{"Name": "train", "IsRequired": True,
                              "SupportedContentTypes": ["text/csv"],
                              "SupportedInputModes": ["File"]},
                             {"Name": "validation", "SupportedContentTypes": ["text/csv"],
                              "SupportedInputModes": ["File"]}],
        "SupportedTuningJobObjectiveMetrics": [{"Type": "Minimize",
                                                "MetricName": "validation:rmse"}],
    }, InferenceSpecification={"Containers": [{"Image": image}],
                               "SupportedContentTypes": ["text/csv"],
                               "SupportedResponseMIMETypes": ["text/csv"]})
    algorithm_arn = sm.describe_algorithm(AlgorithmName="declared-xgb")["AlgorithmArn"]
    channels = [{"ChannelName": name, "ContentType": "text/csv", "DataSource": {
        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
        for name, uri in (("train", train), ("validation", validation))]
    job = {"RoleArn": ROLE, "InputDataConfig": channels,
           "OutputDataConfig": {"S3OutputPath": f"s3://{session.default_bucket()}/algo"},
           "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                              "VolumeSizeInGB": 1},
           "StoppingCondition": {"MaxRuntimeInSeconds": 300}}
    with pytest.raises(ClientError) as exc:  # the declared range refuses it at create
        sm.create_training_job(TrainingJobName="algo-bad", HyperParameters={"num_round": "99"},
                               AlgorithmSpecification={"AlgorithmName": "declared-xgb",
                                                       "TrainingInputMode": "File"}, **job)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "num_round" in exc.value.response["Error"]["Message"]

    sm.create_training_job(TrainingJobName="algo-good",
                           HyperParameters={"num_round": "10", "objective": "reg:squarederror"},
                           AlgorithmSpecification={"AlgorithmName": algorithm_arn,
                                                   "TrainingInputMode": "File"}, **job)
    with fast_polling(factor=100):
        session.wait_for_job("algo-good", poll=1)
    described = sm.describe_training_job(TrainingJobName="algo-good")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["AlgorithmSpecification"]["AlgorithmName"] == algorithm_arn
    assert "TrainingImage" not in described["AlgorithmSpecification"]
    assert {m["MetricName"] for m in described["FinalMetricDataList"]} >= {"validation:rmse"}

    tuning = {"HyperParameterTuningJobConfig": {
        "Strategy": "Random", "ResourceLimits": {"MaxNumberOfTrainingJobs": 2,
                                                 "MaxParallelTrainingJobs": 2},
        "HyperParameterTuningJobObjective": {"Type": "Minimize",
                                             "MetricName": "validation:rmse"},
        "ParameterRanges": {"IntegerParameterRanges": [
            {"Name": "max_depth", "MinValue": "2", "MaxValue": "4"}]}},
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"AlgorithmName": "declared-xgb",
                                       "TrainingInputMode": "File"},
            "StaticHyperParameters": {"num_round": "5", "objective": "reg:squarederror"},
            **job}}
    with pytest.raises(ClientError) as exc:  # max_depth is declared IsTunable false
        sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName="algo-tune", **tuning)
    assert "not tunable" in exc.value.response["Error"]["Message"]
    tuning["HyperParameterTuningJobConfig"]["ParameterRanges"] = {
        "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.5"}]}
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName="algo-tune", **tuning)
    with fast_polling(factor=100):
        session.wait_for_tuning_job("algo-tune", poll=1)
    tuned = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="algo-tune")
    assert tuned["HyperParameterTuningJobStatus"] == "Completed"
    assert tuned["TrainingJobStatusCounters"]["Completed"] == 2


SKLEARN_TRAIN = """
import argparse, glob, os
import joblib
import numpy as np
from sklearn.linear_model import Ridge

if __name__ == "__main__":  # the model server imports this module for model_fn
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    args = parser.parse_args()
    data = np.vstack([np.loadtxt(f, delimiter=",")
                      for f in glob.glob(args.train + "/*.csv")])
    model = Ridge(alpha=0.1).fit(data[:, 1:], data[:, 0])
    joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
"""


def test_a_registered_script_mode_sklearn_model_is_deployed_and_invoked(
        sdk_env: NetworkGuard, tmp_path: Path):
    import sagemaker
    from sagemaker import ModelPackage
    from sagemaker.deserializers import CSVDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer
    from sagemaker.sklearn import SKLearn

    from tests.integration.frameworks import MODEL_FN

    session = sagemaker.Session()
    train, _ = _upload(session, tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(SKLEARN_TRAIN + MODEL_FN)
    estimator = SKLearn(entry_point="train.py", source_dir=str(tmp_path / "src"),
                        framework_version="1.2-1", instance_type="ml.m5.large",
                        instance_count=1, role=ROLE, sagemaker_session=session)
    with fast_polling(factor=100):
        estimator.fit({"train": train}, logs=False)
        package = estimator.register(
            content_types=["text/csv"], response_types=["text/csv"],
            inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
            model_package_group_name="sklearn-registry")
    sm = session.sagemaker_client
    container = sm.describe_model_package(ModelPackageName=package.model_package_arn)[
        "InferenceSpecification"]["Containers"][0]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "train.py"
    assert container["ModelDataUrl"] == estimator.model_data

    endpoint = "sklearn-registry-endpoint"
    deployable = ModelPackage(role=ROLE, model_package_arn=package.model_package_arn,
                              sagemaker_session=session)
    with fast_polling(factor=60):
        deployable.deploy(1, "ml.m5.large", endpoint_name=endpoint)
    try:
        predictor = Predictor(endpoint, sagemaker_session=session,
                              serializer=CSVSerializer(), deserializer=CSVDeserializer())
        _, x_test, y_test = regression_csv(40, seed=9)
        answers = predictor.predict(x_test)
        predictions = np.array([float(v) for row in answers for v in row])
        assert len(predictions) == 40
        assert np.corrcoef(predictions, y_test)[0, 1] > 0.9
    finally:
        sm.delete_endpoint(EndpointName=endpoint)
