"""The model registry (groups, versions, policies) and algorithm resources through boto3,
against a real server: every operation, and errors that change nothing."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/opensage"
ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = excinfo.value.response["Error"]
    return err["Code"], err["Message"]


@pytest.fixture
def model_data(client) -> str:
    s3 = client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="xgb/model.tar.gz", Body=b"a model")
    return "s3://models/xgb/model.tar.gz"


def inference(url: str, image: str = XGBOOST) -> dict:
    return {"Containers": [{"Image": image, "ModelDataUrl": url, "Environment": {"A": "1"}}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
            "SupportedTransformInstanceTypes": ["ml.m5.large"]}


# -- groups -------------------------------------------------------------------------------
def test_group_lifecycle_tags_and_policy(sm):
    arn = sm.create_model_package_group(
        ModelPackageGroupName="churn", ModelPackageGroupDescription="churn models",
        Tags=[{"Key": "team", "Value": "ml"}])["ModelPackageGroupArn"]
    assert arn == f"{ARN}:model-package-group/churn"
    described = sm.describe_model_package_group(ModelPackageGroupName="churn")
    assert described["ModelPackageGroupStatus"] == "Completed"
    assert described["ModelPackageGroupDescription"] == "churn models"
    assert sm.describe_model_package_group(ModelPackageGroupName=arn)["ModelPackageGroupName"] \
        == "churn"
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sagemaker:*",
         "Resource": arn}]})
    with pytest.raises(ClientError) as exc:
        sm.get_model_package_group_policy(ModelPackageGroupName="churn")
    assert error_of(exc)[0] == "ValidationException"
    assert sm.put_model_package_group_policy(ModelPackageGroupName="churn",
                                             ResourcePolicy=policy)["ModelPackageGroupArn"] == arn
    assert sm.get_model_package_group_policy(ModelPackageGroupName="churn")[
        "ResourcePolicy"] == policy
    with pytest.raises(ClientError) as exc:
        sm.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy="{")
    assert error_of(exc)[0] == "ValidationException"
    sm.delete_model_package_group_policy(ModelPackageGroupName="churn")
    with pytest.raises(ClientError):
        sm.get_model_package_group_policy(ModelPackageGroupName="churn")
    with pytest.raises(ClientError) as exc:
        sm.create_model_package_group(ModelPackageGroupName="CHURN")
    code, message = error_of(exc)
    assert code == "ValidationException" and "Cannot create already existing" in message
    sm.delete_model_package_group(ModelPackageGroupName="churn")
    with pytest.raises(ClientError) as exc:
        sm.describe_model_package_group(ModelPackageGroupName="churn")
    assert error_of(exc) == ("ValidationException",
                             f"ModelPackageGroup {arn} does not exist.")
    with pytest.raises(ClientError) as exc:
        sm.delete_model_package_group(ModelPackageGroupName="churn")
    assert error_of(exc)[0] == "ValidationException"


def test_group_with_versions_cannot_be_deleted(sm, model_data):
    sm.create_model_package_group(ModelPackageGroupName="g")
    version = sm.create_model_package(ModelPackageGroupName="g",
                                      InferenceSpecification=inference(model_data))
    with pytest.raises(ClientError) as exc:
        sm.delete_model_package_group(ModelPackageGroupName="g")
    code, message = error_of(exc)
    assert code == "ValidationException" and "contains model packages" in message
    assert sm.describe_model_package_group(ModelPackageGroupName="g")[
        "ModelPackageGroupStatus"] == "Completed"
    sm.delete_model_package(ModelPackageName=version["ModelPackageArn"])
    sm.delete_model_package_group(ModelPackageGroupName="g")
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_list_groups_sorts_filters_and_pages(sm):
    for name in ("b-group", "a-group", "c-other"):
        sm.create_model_package_group(ModelPackageGroupName=name)
    names = [g["ModelPackageGroupName"] for g in
             sm.list_model_package_groups()["ModelPackageGroupSummaryList"]]
    assert names == ["b-group", "a-group", "c-other"]  # CreationTime, Ascending by default
    by_name = sm.list_model_package_groups(SortBy="Name", SortOrder="Descending")
    assert [g["ModelPackageGroupName"] for g in by_name["ModelPackageGroupSummaryList"]] == [
        "c-other", "b-group", "a-group"]
    first = sm.list_model_package_groups(NameContains="GROUP", MaxResults=1)
    second = sm.list_model_package_groups(NameContains="GROUP", MaxResults=1,
                                          NextToken=first["NextToken"])
    assert [g["ModelPackageGroupName"] for g in first["ModelPackageGroupSummaryList"]
            + second["ModelPackageGroupSummaryList"]] == ["b-group", "a-group"]
    assert "NextToken" not in second


# -- packages -----------------------------------------------------------------------------
def test_versions_are_numbered_and_described_as_aws(sm, model_data):
    sm.create_model_package_group(ModelPackageGroupName="grp")
    arns = [sm.create_model_package(
        ModelPackageGroupName="grp", InferenceSpecification=inference(model_data),
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                      "S3Uri": "s3://models/stats.json"}},
                      "Bias": {}, "Explainability": {}},
        CustomerMetadataProperties={"owner": "me"}, Domain="MACHINE_LEARNING",
        Task="CLASSIFICATION", SamplePayloadUrl="s3://models/sample.csv",
        MetadataProperties={"CommitId": "abc"},
        DriftCheckBaselines={"ModelQuality": {"Constraints": {
            "ContentType": "application/json", "S3Uri": "s3://models/c.json"}}},
    )["ModelPackageArn"] for _ in range(3)]
    assert arns == [f"{ARN}:model-package/grp/{n}" for n in (1, 2, 3)]
    described = sm.describe_model_package(ModelPackageName="grp/2")
    assert described["ModelPackageName"] == "grp"
    assert described["ModelPackageGroupName"] == "grp"
    assert described["ModelPackageVersion"] == 2
    assert described["ModelPackageStatus"] == "Completed"
    assert described["ModelPackageStatusDetails"] == {"ValidationStatuses": []}
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["CertifyForMarketplace"] is False
    assert described["CustomerMetadataProperties"] == {"owner": "me"}
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == \
        "s3://models/stats.json"
    assert described["DriftCheckBaselines"]["ModelQuality"]["Constraints"]["S3Uri"] == \
        "s3://models/c.json"
    assert (described["Domain"], described["Task"]) == ("MACHINE_LEARNING", "CLASSIFICATION")
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model_data
    assert sm.describe_model_package(ModelPackageName=arns[2])["ModelPackageVersion"] == 3
    # a deleted version's number is not given again
    sm.delete_model_package(ModelPackageName=arns[2])
    assert sm.create_model_package(ModelPackageGroupName="grp")["ModelPackageArn"].endswith(
        "/grp/4")


def test_concurrent_registrations_get_versions_without_gaps(sm, model_data):
    sm.create_model_package_group(ModelPackageGroupName="race")
    arns: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def register() -> None:
        try:
            barrier.wait()
            for _ in range(3):
                arns.append(sm.create_model_package(ModelPackageGroupName="race")[
                    "ModelPackageArn"])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = sorted(int(a.rsplit("/", 1)[1]) for a in arns)
    assert versions == list(range(1, 25))
    listed = sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName="race").build_full_result()["ModelPackageSummaryList"]
    assert sorted(p["ModelPackageVersion"] for p in listed) == list(range(1, 25))


def test_create_package_errors_change_nothing(sm, model_data):
    cases = [
        ({}, "Missing ARN."),
        ({"ModelPackageName": "x", "ModelPackageGroupName": "g"},
         ("Both ModelPackageName and ModelPackageGroupName are provided in the input. "
         "Cannot determine which one to use.")),
        ({"ModelPackageGroupName": "nope"}, "Model Package Group does not exist."),
        ({"ModelPackageName": "bare"}, ("An unversioned model package needs an "
         "InferenceSpecification or a SourceAlgorithmSpecification.")),
    ]
    for params, message in cases:
        with pytest.raises(ClientError) as exc:
            sm.create_model_package(**params)
        assert error_of(exc) == ("ValidationException", message)
    with pytest.raises(ClientError) as exc:  # the model data must exist
        sm.create_model_package(ModelPackageName="m", InferenceSpecification=inference(
            "s3://models/missing.tar.gz"))
    assert "Could not access model data" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:  # a framework version that does not exist
        sm.create_model_package(ModelPackageName="m", InferenceSpecification=inference(
            model_data, "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
            "sagemaker-scikit-learn:0.1-1-cpu-py3"))
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:  # a built-in's unsupported version
        sm.create_model_package(ModelPackageName="m", InferenceSpecification=inference(
            model_data, "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:0.1"))
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sm.create_model_package(ModelPackageName="m", ModelApprovalStatus="Maybe",
                                InferenceSpecification=inference(model_data))
    assert error_of(exc)[0] == "ValidationException"
    assert sm.list_model_packages(ModelPackageType="Both")["ModelPackageSummaryList"] == []
    sm.create_model_package(ModelPackageName="m", InferenceSpecification=inference(model_data))
    with pytest.raises(ClientError) as exc:
        sm.create_model_package(ModelPackageName="M", InferenceSpecification=inference(
            model_data))
    assert "Cannot create already existing model package" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        sm.describe_model_package(ModelPackageName="nope/3")
    assert error_of(exc) == ("ValidationException",
                             f"ModelPackage {ARN}:model-package/nope/3 does not exist.")


def test_list_packages_filters(sm, model_data):
    sm.create_model_package_group(ModelPackageGroupName="g1")
    sm.create_model_package_group(ModelPackageGroupName="g2")
    for group in ("g1", "g1", "g2"):
        sm.create_model_package(ModelPackageGroupName=group)
    sm.create_model_package(ModelPackageName="solo", InferenceSpecification=inference(
        model_data))
    approved = sm.create_model_package(ModelPackageGroupName="g1",
                                       ModelApprovalStatus="Approved")["ModelPackageArn"]

    def names(**kw):
        return [(p["ModelPackageName"], p.get("ModelPackageVersion")) for p in
                sm.list_model_packages(**kw)["ModelPackageSummaryList"]]

    assert names() == [("solo", None)]  # Unversioned unless asked otherwise
    assert names(ModelPackageGroupName="g1") == [("g1", 1), ("g1", 2), ("g1", 3)]
    assert names(ModelPackageGroupName=f"{ARN}:model-package-group/g1",
                 SortOrder="Descending") == [("g1", 3), ("g1", 2), ("g1", 1)]
    assert names(ModelPackageType="Versioned") == [("g1", 1), ("g1", 2), ("g2", 1), ("g1", 3)]
    assert len(names(ModelPackageType="Both")) == 5
    assert names(ModelPackageType="Both", ModelApprovalStatus="Approved") == [("g1", 3)]
    assert names(ModelPackageGroupName="g1", ModelApprovalStatus="PendingManualApproval") == [
        ("g1", 1), ("g1", 2)]
    page = sm.list_model_packages(ModelPackageGroupName="g1", MaxResults=2)
    rest = sm.list_model_packages(ModelPackageGroupName="g1", MaxResults=2,
                                  NextToken=page["NextToken"])
    assert [p["ModelPackageVersion"] for p in rest["ModelPackageSummaryList"]] == [3]
    batch = sm.batch_describe_model_package(ModelPackageArnList=[
        approved, f"{ARN}:model-package/g1/99"])
    assert batch["ModelPackageSummaries"][approved]["ModelApprovalStatus"] == "Approved"
    assert list(batch["BatchDescribeModelPackageErrorMap"]) == [f"{ARN}:model-package/g1/99"]


def test_update_package_approval_and_metadata(sm, model_data):
    sm.create_model_package_group(ModelPackageGroupName="u")
    arn = sm.create_model_package(ModelPackageGroupName="u",
                                  CustomerMetadataProperties={"a": "1", "b": "2"})[
        "ModelPackageArn"]
    assert "LastModifiedTime" not in sm.describe_model_package(ModelPackageName=arn)
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                            ApprovalDescription="looks good",
                            CustomerMetadataProperties={"c": "3"},
                            CustomerMetadataPropertiesToRemove=["a"])
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "looks good"
    assert described["CustomerMetadataProperties"] == {"b": "2", "c": "3"}
    assert "LastModifiedTime" in described
    with pytest.raises(ClientError) as exc:
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Unknown")
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sm.update_model_package(ModelPackageArn=f"{ARN}:model-package/u/9",
                                ModelApprovalStatus="Approved")
    assert error_of(exc)[0] == "ValidationException"
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"


def test_search_model_packages_and_groups(sm):
    sm.create_model_package_group(ModelPackageGroupName="s1")
    arn = sm.create_model_package_group(ModelPackageGroupName="s2")["ModelPackageGroupArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
    sm.create_model_package(ModelPackageGroupName="s2", ModelApprovalStatus="Approved")
    found = sm.search(Resource="ModelPackageGroup", SearchExpression={"Filters": [
        {"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": "s2"}]})["Results"]
    assert [r["ModelPackageGroup"]["ModelPackageGroupName"] for r in found] == ["s2"]
    assert found[0]["ModelPackageGroup"]["Tags"] == [{"Key": "k", "Value": "v"}]
    packages = sm.search(Resource="ModelPackage", SearchExpression={"Filters": [
        {"Name": "ModelApprovalStatus", "Operator": "Equals", "Value": "Approved"}]})["Results"]
    assert [r["ModelPackage"]["ModelPackageArn"] for r in packages] == [
        f"{ARN}:model-package/s2/1"]


def test_create_model_from_package_needs_approval(sm, model_data):
    sm.create_model_package_group(ModelPackageGroupName="dep")
    arn = sm.create_model_package(ModelPackageGroupName="dep",
                                  InferenceSpecification=inference(model_data))[
        "ModelPackageArn"]
    with pytest.raises(ClientError) as exc:
        sm.create_model(ModelName="m", ExecutionRoleArn=ROLE,
                        Containers=[{"ModelPackageName": arn}])
    code, message = error_of(exc)
    assert code == "ValidationException" and "must be Approved" in message
    assert sm.list_models()["Models"] == []
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE,
                    Containers=[{"ModelPackageName": arn}])
    assert sm.describe_model(ModelName="m")["Containers"] == [{"ModelPackageName": arn}]
    with pytest.raises(ClientError) as exc:
        sm.create_model(ModelName="m2", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"ModelPackageName": "dep/7"})
    assert "does not exist" in error_of(exc)[1]


# -- algorithms ---------------------------------------------------------------------------
def algorithm_spec(**extra) -> dict:
    return {
        "TrainingImage": XGBOOST,
        "SupportedHyperParameters": [
            {"Name": "num_round", "Type": "Integer", "IsRequired": True, "IsTunable": False,
             "Range": {"IntegerParameterRangeSpecification": {"MinValue": "1",
                                                              "MaxValue": "50"}}},
            {"Name": "eta", "Type": "Continuous", "IsTunable": True, "DefaultValue": "0.3",
             "Range": {"ContinuousParameterRangeSpecification": {"MinValue": "0",
                                                                 "MaxValue": "1"}}},
            {"Name": "objective", "Type": "Categorical", "IsTunable": False,
             "Range": {"CategoricalParameterRangeSpecification": {
                 "Values": ["reg:squarederror", "binary:logistic"]}}},
        ],
        "SupportedTrainingInstanceTypes": ["ml.m5.large", "ml.m5.xlarge"],
        "SupportsDistributedTraining": False,
        "TrainingChannels": [{"Name": "train", "IsRequired": True,
                              "SupportedContentTypes": ["text/csv"],
                              "SupportedInputModes": ["File"]},
                             {"Name": "validation", "SupportedContentTypes": ["text/csv"],
                              "SupportedInputModes": ["File"]}],
        "SupportedTuningJobObjectiveMetrics": [{"Type": "Minimize",
                                                "MetricName": "validation:rmse"}],
        **extra,
    }


def test_algorithm_lifecycle(sm, model_data):
    arn = sm.create_algorithm(AlgorithmName="my-xgb", TrainingSpecification=algorithm_spec(),
                              InferenceSpecification={"Containers": [{"Image": XGBOOST}],
                                                      "SupportedContentTypes": ["text/csv"],
                                                      "SupportedResponseMIMETypes": ["text/csv"]},
                              ValidationSpecification={
                                  "ValidationRole": ROLE, "ValidationProfiles": [{
                                      "ProfileName": "p1", "TrainingJobDefinition": {
                                          "TrainingInputMode": "File",
                                          "InputDataConfig": [{"ChannelName": "train",
                                                               "DataSource": {"S3DataSource": {
                                                                   "S3DataType": "S3Prefix",
                                                                   "S3Uri": "s3://models/"}}}],
                                          "OutputDataConfig": {"S3OutputPath": "s3://models/o"},
                                          "ResourceConfig": {"InstanceType": "ml.m5.large",
                                                             "InstanceCount": 1,
                                                             "VolumeSizeInGB": 1},
                                          "StoppingCondition": {"MaxRuntimeInSeconds": 60}}}]},
                              )["AlgorithmArn"]
    assert arn == f"{ARN}:algorithm/my-xgb"
    described = sm.describe_algorithm(AlgorithmName="my-xgb")
    assert described["AlgorithmStatus"] == "Completed"
    assert described["AlgorithmStatusDetails"]["ValidationStatuses"] == [
        {"Name": "p1", "Status": "NotStarted"}]
    assert described["TrainingSpecification"]["SupportedHyperParameters"][1]["DefaultValue"] \
        == "0.3"
    assert sm.describe_algorithm(AlgorithmName=arn)["AlgorithmName"] == "my-xgb"
    summaries = sm.list_algorithms(NameContains="xgb")["AlgorithmSummaryList"]
    assert [(s["AlgorithmName"], s["AlgorithmStatus"]) for s in summaries] == [
        ("my-xgb", "Completed")]
    # a model package made from the algorithm and model data
    package = sm.create_model_package(
        ModelPackageName="from-algo", SourceAlgorithmSpecification={"SourceAlgorithms": [
            {"AlgorithmName": "my-xgb", "ModelDataUrl": model_data}]})["ModelPackageArn"]
    sm.create_model(ModelName="algo-model", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"ModelPackageName": package})
    sm.delete_algorithm(AlgorithmName="my-xgb")
    with pytest.raises(ClientError) as exc:
        sm.describe_algorithm(AlgorithmName="my-xgb")
    assert error_of(exc) == ("ValidationException", f'Could not find algorithm "{arn}".')


@pytest.mark.parametrize(("change", "needle"), [
    ({"SupportedHyperParameters": [{"Name": "a", "Type": "Integer"}]}, "needs a Range"),
    ({"SupportedHyperParameters": [{"Name": "a", "Type": "Continuous", "DefaultValue": "5",
                                    "Range": {"ContinuousParameterRangeSpecification": {
                                        "MinValue": "0", "MaxValue": "1"}}}]}, "DefaultValue"),
    ({"SupportedHyperParameters": [{"Name": "a", "Type": "Integer", "IsRequired": True,
                                    "DefaultValue": "1",
                                    "Range": {"IntegerParameterRangeSpecification": {
                                        "MinValue": "0", "MaxValue": "3"}}}]},
     "cannot have a DefaultValue"),
    ({"SupportedTuningJobObjectiveMetrics": [{"Type": "Minimize", "MetricName": "nope"}]},
     "not one of its MetricDefinitions"),
    ({"TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:0.1"},
     ""),
])
def test_bad_algorithm_is_refused(sm, change, needle):
    with pytest.raises(ClientError) as exc:
        sm.create_algorithm(AlgorithmName="bad", TrainingSpecification=algorithm_spec(**change))
    code, message = error_of(exc)
    assert code == "ValidationException" and needle in message
    assert sm.list_algorithms()["AlgorithmSummaryList"] == []


def test_training_job_with_algorithm_name_is_checked_against_its_declaration(sm, client):
    s3 = client("s3")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="train/a.csv", Body=b"1,2\n3,4\n")
    sm.create_algorithm(AlgorithmName="declared", TrainingSpecification=algorithm_spec())

    def job(name, hyperparameters, instance_type="ml.m5.large", channels=("train",)):
        return sm.create_training_job(
            TrainingJobName=name, RoleArn=ROLE,
            AlgorithmSpecification={"AlgorithmName": "declared", "TrainingInputMode": "File"},
            HyperParameters=hyperparameters,
            InputDataConfig=[{"ChannelName": c, "ContentType": "text/csv", "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://data/train/"}}}
                for c in channels],
            OutputDataConfig={"S3OutputPath": "s3://data/out"},
            ResourceConfig={"InstanceType": instance_type, "InstanceCount": 1,
                            "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 60})

    refused = [
        ({"num_round": "500"}, {}, "num_round"),  # out of the declared range
        ({"eta": "0.1"}, {}, "Missing required hyperparameter 'num_round'"),
        ({"num_round": "5", "max_depth": "3"}, {}, "max_depth"),  # not declared
        ({"num_round": "5"}, {"instance_type": "ml.c5.large"}, "ml.c5.large"),
        ({"num_round": "5"}, {"channels": ("validation",)}, "Missing required channel"),
        ({"num_round": "5"}, {"channels": ("train", "extra")}, "extra"),
    ]
    for hyperparameters, extra, needle in refused:
        with pytest.raises(ClientError) as exc:
            job("refused", hyperparameters, **extra)
        code, message = error_of(exc)
        assert code == "ValidationException" and needle in message, message
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    with pytest.raises(ClientError) as exc:
        sm.create_training_job(
            TrainingJobName="x", RoleArn=ROLE, AlgorithmSpecification={
                "AlgorithmName": "missing", "TrainingInputMode": "File"},
            OutputDataConfig={"S3OutputPath": "s3://data/out"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1,
                            "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 60})
    assert error_of(exc) == ("ValidationException",
                             f'Could not find algorithm "{ARN}:algorithm/missing".')
