"""moto 5.2.5's own tests for model packages and model package groups
(``tests/test_sagemaker/test_sagemaker_model_packages.py`` and
``test_sagemaker_model_package_groups.py``), their calls ported to run against this server.

Every call answers something other than NotImplementedException. Where moto accepts what AWS
refuses (or answers differently), the test asserts AWS's behaviour and says so:

- unversioned packages without an InferenceSpecification: AWS requires one (or a
  SourceAlgorithmSpecification) for unversioned packages; the ported calls carry one, and
  ``test_moto_accepts_unversioned_package_without_specification`` asserts the refusal;
- a second unversioned package with the same name: moto overwrites it, AWS refuses it;
- CreatedBy / LastModifiedBy: moto invents a Studio user profile; outside Studio AWS has none;
- ModelPackageStatusDetails: moto reports the package ARN as a Completed validation and image
  scan; AWS reports one status per validation profile (none without a ValidationSpecification);
- Search's default order: AWS sorts on CreationTime, Descending, when SortOrder is not given;
  moto returns insertion order;
- freezegun cannot move the server's clock: CreationTime filters use the real times.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


@pytest.fixture
def spec(client) -> dict:
    """An InferenceSpecification for the unversioned packages (AWS requires one)."""
    s3 = client("s3")
    s3.create_bucket(Bucket="moto")
    s3.put_object(Bucket="moto", Key="model.tar.gz", Body=b"m")
    return {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://moto/model.tar.gz"}]}


def names(response: dict) -> list[str]:
    return [p["ModelPackageName"] for p in response["ModelPackageSummaryList"]]


# -- test_sagemaker_model_packages.py -----------------------------------------------------
def test_list_model_packages(sm, spec):
    sm.create_model_package(ModelPackageName="test-model-package",
                            ModelPackageDescription="test-model-package-description-v1",
                            InferenceSpecification=spec)
    with pytest.raises(ClientError) as exc:  # moto overwrites; AWS refuses
        sm.create_model_package(ModelPackageName="test-model-package",
                                ModelPackageDescription="test-model-package-description-v2",
                                InferenceSpecification=spec)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    sm.create_model_package(ModelPackageName="test-model-package-2",
                            ModelPackageDescription="test-model-package-description-v1-2",
                            InferenceSpecification=spec)
    summaries = sm.list_model_packages()["ModelPackageSummaryList"]
    assert summaries[0]["ModelPackageName"] == "test-model-package"
    assert summaries[0]["ModelPackageDescription"] == "test-model-package-description-v1"
    assert summaries[1]["ModelPackageName"] == "test-model-package-2"
    assert summaries[1]["ModelPackageDescription"] == "test-model-package-description-v1-2"


def test_list_model_packages_creation_time_before_and_after(sm, spec):
    sm.create_model_package(ModelPackageName="test-model-package",
                            InferenceSpecification=spec)
    first = sm.describe_model_package(ModelPackageName="test-model-package")["CreationTime"]
    # Answered to the ms, stored to the us: the first is at most 0.5 ms after ``first``; made
    # within that millisecond, the second could not be told apart (moto splits at +500 us).
    while dt.datetime.now(dt.UTC) <= first + dt.timedelta(milliseconds=2):
        pass
    sm.create_model_package(ModelPackageName="test-model-package-2",
                            InferenceSpecification=spec)
    between = first + dt.timedelta(milliseconds=1)
    before = sm.list_model_packages(CreationTimeBefore=between)
    after = sm.list_model_packages(CreationTimeAfter=between)
    assert names(before) == ["test-model-package"]
    assert names(after) == ["test-model-package-2"]


def test_list_model_packages_name_contains(sm, spec):
    for name in ("test-model-package", "test-model-package-2", "another-model-package"):
        sm.create_model_package(ModelPackageName=name, InferenceSpecification=spec)
    assert len(names(sm.list_model_packages(NameContains="test-model-package"))) == 2


def test_list_model_packages_approval_status(sm, spec):
    sm.create_model_package(ModelPackageName="test-model-package",
                            ModelApprovalStatus="Approved", InferenceSpecification=spec)
    sm.create_model_package(ModelPackageName="test-model-package-2",
                            ModelApprovalStatus="Rejected", InferenceSpecification=spec)
    assert len(names(sm.list_model_packages(ModelApprovalStatus="Approved"))) == 1


def test_list_model_packages_model_package_group_name(sm, spec):
    group = "test-model-package-group"
    sm.create_model_package_group(ModelPackageGroupName=group,
                                  ModelPackageGroupDescription="test-model-package-description")
    for _ in range(3):
        sm.create_model_package(ModelPackageGroupName=group)
    sm.create_model_package(ModelPackageName="test-model-package-without-group",
                            ModelPackageDescription="diff_group", InferenceSpecification=spec)
    assert len(names(sm.list_model_packages(ModelPackageGroupName=group))) == 3
    first = sm.list_model_packages(ModelPackageGroupName=group, MaxResults=2)
    assert len(first["ModelPackageSummaryList"]) == 2
    rest = sm.list_model_packages(ModelPackageGroupName=group, MaxResults=2,
                                  NextToken=first["NextToken"])
    assert len(rest["ModelPackageSummaryList"]) == 1
    assert "NextToken" not in rest


def test_list_model_packages_model_package_type(sm, spec):
    sm.create_model_package_group(ModelPackageGroupName="test-model-package-group")
    sm.create_model_package(ModelPackageDescription="test-model-package-description",
                            ModelPackageGroupName="test-model-package-group")
    sm.create_model_package(ModelPackageName="test-model-package-2",
                            InferenceSpecification=spec)
    assert len(names(sm.list_model_packages(ModelPackageType="Versioned"))) == 1


def test_list_model_packages_sort_by_and_order(sm, spec):
    sm.create_model_package(ModelPackageName="test-model-package", InferenceSpecification=spec)
    sm.create_model_package(ModelPackageName="test-model-package-2",
                            InferenceSpecification=spec)
    assert names(sm.list_model_packages(SortBy="CreationTime")) == [
        "test-model-package", "test-model-package-2"]
    assert names(sm.list_model_packages(SortOrder="Descending")) == [
        "test-model-package-2", "test-model-package"]


def test_describe_model_package_default(sm):
    sm.create_model_package_group(ModelPackageGroupName="test-model-package-group")
    arn = sm.create_model_package(ModelPackageGroupName="test-model-package-group",
                                  ModelPackageDescription="test-model-package-description",
                                  )["ModelPackageArn"]
    resp = sm.describe_model_package(ModelPackageName=arn)
    assert resp["ModelPackageGroupName"] == "test-model-package-group"
    assert resp["ModelPackageDescription"] == "test-model-package-description"
    assert resp["ModelPackageArn"] == f"{ARN}:model-package/test-model-package-group/1"
    assert abs(resp["CreationTime"].timestamp() - dt.datetime.now().timestamp()) < 60
    assert resp["ModelPackageStatus"] == "Completed"
    assert resp["ModelPackageStatusDetails"] == {"ValidationStatuses": []}  # AWS, not moto's
    assert "CreatedBy" not in resp  # no Studio user outside Studio
    assert resp["CertifyForMarketplace"] is False


def test_describe_model_package_with_create_model_package_arguments(sm, spec):
    sm.create_model_package(
        ModelPackageName="test-model-package",
        ModelPackageDescription="test-model-package-description",
        ModelApprovalStatus="PendingManualApproval",
        MetadataProperties={"CommitId": "test-commit-id", "GeneratedBy": "test-user",
                            "ProjectId": "test-project-id", "Repository": "test-repo"},
        CertifyForMarketplace=True, InferenceSpecification=spec)
    resp = sm.describe_model_package(ModelPackageName="test-model-package")
    assert resp["ModelApprovalStatus"] == "PendingManualApproval"
    assert resp.get("ApprovalDescription") is None
    assert resp["CertifyForMarketplace"] is True
    assert resp["MetadataProperties"] == {"CommitId": "test-commit-id",
                                          "GeneratedBy": "test-user",
                                          "ProjectId": "test-project-id",
                                          "Repository": "test-repo"}


def test_update_model_package(sm):
    sm.create_model_package_group(ModelPackageGroupName="test-model-package-group")
    arn = sm.create_model_package(
        ModelPackageGroupName="test-model-package-group",
        ModelPackageDescription="test-model-package-description",
        CustomerMetadataProperties={"test-key-to-remove": "test-value-to-remove"},
    )["ModelPackageArn"]
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                            ApprovalDescription="test-approval-description",
                            CustomerMetadataProperties={"test-key": "test-value"},
                            CustomerMetadataPropertiesToRemove=["test-key-to-remove"])
    resp = sm.describe_model_package(ModelPackageName=arn)
    assert resp["ModelApprovalStatus"] == "Approved"
    assert resp["ApprovalDescription"] == "test-approval-description"
    assert resp["CustomerMetadataProperties"] == {"test-key": "test-value"}


def test_update_model_package_given_additional_inference_specifications_to_add(sm):
    sm.create_model_package_group(ModelPackageGroupName="test-model-package-group")
    arn = sm.create_model_package(ModelPackageGroupName="test-model-package-group",
                                  )["ModelPackageArn"]
    addition = {
        "Name": "test-inference-specification-name",
        "Description": "test-inference-specification-description",
        "Containers": [{
            "ContainerHostname": "test-container-hostname", "Image": "test-image",
            "ImageDigest": "test-image-digest", "ModelDataUrl": "test-model-data-url",
            "ProductId": "test-product-id", "Environment": {"test-key": "test-value"},
            "ModelInput": {"DataInputConfig": "test-data-input-config"},
            "Framework": "test-framework", "FrameworkVersion": "test-framework-version",
            "NearestModelName": "test-nearest-model-name"}],
        "SupportedTransformInstanceTypes": ["ml.m4.xlarge", "ml.m4.2xlarge"],
        "SupportedRealtimeInferenceInstanceTypes": ["ml.t2.medium", "ml.t2.large"],
        "SupportedContentTypes": ["test-content-type-1"],
        "SupportedResponseMIMETypes": ["test-response-mime-type-1"],
    }
    # moto accepts these values; AWS's service model refuses them (patterns, lengths).
    with pytest.raises(ClientError) as exc:
        sm.update_model_package(ModelPackageArn=arn, AdditionalInferenceSpecificationsToAdd=[
            addition])
    message = exc.value.response["Error"]["Message"]
    assert "6 validation errors detected" in message and "imageDigest" in message
    assert "AdditionalInferenceSpecifications" not in sm.describe_model_package(
        ModelPackageName=arn)
    container = addition["Containers"][0]
    container.update(ImageDigest="sha256:" + "0" * 64, ModelDataUrl="s3://moto/model.tar.gz",
                     Environment={"TEST_KEY": "test-value"}, FrameworkVersion="1.0")
    addition["SupportedResponseMIMETypes"] = ["text/csv"]
    sm.update_model_package(ModelPackageArn=arn, AdditionalInferenceSpecificationsToAdd=[
        addition])
    resp = sm.describe_model_package(ModelPackageName=arn)
    assert resp["AdditionalInferenceSpecifications"][0] == addition


def test_update_model_package_should_update_last_modified_information(sm):
    sm.create_model_package_group(ModelPackageGroupName="test-model-package-group")
    arn = sm.create_model_package(ModelPackageGroupName="test-model-package-group",
                                  )["ModelPackageArn"]
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    resp = sm.describe_model_package(ModelPackageName=arn)
    assert resp["LastModifiedTime"] >= resp["CreationTime"]
    assert "LastModifiedBy" not in resp  # no Studio user outside Studio


def test_validate_instance_types_are_refused_by_the_service_model(sm, spec):
    # moto's ModelPackage.validate_supported_*_instance_types: the service model's enums.
    for key in ("SupportedTransformInstanceTypes", "SupportedRealtimeInferenceInstanceTypes"):
        with pytest.raises(ClientError) as exc:
            sm.create_model_package(ModelPackageName="bad-types", InferenceSpecification={
                **spec, key: ["ml.m4.2xlarge", "not-a-supported-instance-type"]})
        assert exc.value.response["Error"]["Code"] == "ValidationException"
        assert "not-a-supported-instance-type" in exc.value.response["Error"]["Message"]


def test_create_model_package(sm, spec):
    resp = sm.create_model_package(ModelPackageName="TestModelPackage",
                                   ModelPackageDescription="test-model-package-description",
                                   InferenceSpecification=spec)
    assert resp["ModelPackageArn"] == f"{ARN}:model-package/testmodelpackage"


def test_create_model_package_errors(sm):
    with pytest.raises(ClientError) as exc:
        sm.create_model_package(ModelPackageDescription="test-model-package-description")
    assert "Missing ARN." in str(exc.value)
    with pytest.raises(ClientError) as exc:
        sm.create_model_package(ModelPackageGroupName="TestModelPackageGroup",
                                ModelPackageName="TestModelPackage")
    assert ("Both ModelPackageName and ModelPackageGroupName are provided in the input."
            in str(exc.value))
    with pytest.raises(ClientError) as exc:
        sm.create_model_package(ModelPackageGroupName="TestModelPackageGroupNotExist")
    assert "Model Package Group does not exist." in str(exc.value)


def test_moto_accepts_unversioned_package_without_specification(sm):
    with pytest.raises(ClientError) as exc:  # moto accepts it; AWS refuses it
        sm.create_model_package(ModelPackageName="test-model-package")
    assert exc.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize("status", ["Approved", "Rejected", "PendingManualApproval"])
def test_model_approval_status_values(sm, status):
    sm.create_model_package_group(ModelPackageGroupName="g")
    arn = sm.create_model_package(ModelPackageGroupName="g",
                                  ModelApprovalStatus=status)["ModelPackageArn"]
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == status


def test_model_approval_status_incorrect(sm):
    sm.create_model_package_group(ModelPackageGroupName="g")
    with pytest.raises(ClientError) as exc:
        sm.create_model_package(ModelPackageGroupName="g", ModelApprovalStatus="IncorrectStatus")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "IncorrectStatus" in exc.value.response["Error"]["Message"]


def test_create_model_package_in_model_package_group(sm):
    sm.create_model_package_group(ModelPackageGroupName="test-model-package-group")
    arns = [sm.create_model_package(ModelPackageGroupName="test-model-package-group",
                                    )["ModelPackageArn"] for _ in range(2)]
    assert arns == [f"{ARN}:model-package/test-model-package-group/1",
                    f"{ARN}:model-package/test-model-package-group/2"]


# -- test_sagemaker_model_package_groups.py -----------------------------------------------
def test_create_model_package_group(sm):
    resp = sm.create_model_package_group(
        ModelPackageGroupName="test-model-package-group",
        ModelPackageGroupDescription="test-model-package-group-description",
        Tags=[{"Key": "test-key", "Value": "test-value"}])
    assert resp["ModelPackageGroupArn"] == f"{ARN}:model-package-group/test-model-package-group"


def _two_groups(sm) -> None:
    for n in (1, 2):
        sm.create_model_package_group(
            ModelPackageGroupName=f"test-model-package-group-{n}",
            ModelPackageGroupDescription=f"test-model-package-group-description-{n}")


def test_list_model_package_groups(sm):
    _two_groups(sm)
    summary = sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert [(s["ModelPackageGroupName"], s["ModelPackageGroupDescription"]) for s in summary] \
        == [(f"test-model-package-group-{n}", f"test-model-package-group-description-{n}")
            for n in (1, 2)]
    first = sm.list_model_package_groups(MaxResults=1)
    assert len(first["ModelPackageGroupSummaryList"]) == 1
    rest = sm.list_model_package_groups(MaxResults=1, NextToken=first["NextToken"])
    assert len(rest["ModelPackageGroupSummaryList"]) == 1
    assert "NextToken" not in rest


def test_list_model_package_groups_creation_time(sm):
    _two_groups(sm)
    first, second = (sm.describe_model_package_group(
        ModelPackageGroupName=f"test-model-package-group-{n}")["CreationTime"] for n in (1, 2))
    # Two groups made within one answered millisecond cannot be told apart: make the second
    # again once the clock has moved on (moto's test split them at +500 us).
    if first == second:
        sm.delete_model_package_group(ModelPackageGroupName="test-model-package-group-2")
        while dt.datetime.now(dt.UTC) <= first + dt.timedelta(milliseconds=2):
            pass
        sm.create_model_package_group(ModelPackageGroupName="test-model-package-group-2")
        second = sm.describe_model_package_group(
            ModelPackageGroupName="test-model-package-group-2")["CreationTime"]
    between = first + (second - first) / 2
    assert len(sm.list_model_package_groups(CreationTimeBefore=between)[
        "ModelPackageGroupSummaryList"]) == 1
    assert len(sm.list_model_package_groups(CreationTimeAfter=between)[
        "ModelPackageGroupSummaryList"]) == 1


def test_list_model_package_groups_name_contains_sort_by_and_order(sm):
    _two_groups(sm)
    sm.create_model_package_group(ModelPackageGroupName="another-model-package-group")
    assert len(sm.list_model_package_groups(NameContains="test-model-package")[
        "ModelPackageGroupSummaryList"]) == 2
    by_time = sm.list_model_package_groups(SortBy="CreationTime")
    assert [s["ModelPackageGroupName"] for s in by_time["ModelPackageGroupSummaryList"]][:2] \
        == ["test-model-package-group-1", "test-model-package-group-2"]
    descending = sm.list_model_package_groups(SortOrder="Descending")
    assert [s["ModelPackageGroupName"] for s in descending["ModelPackageGroupSummaryList"]] \
        == ["another-model-package-group", "test-model-package-group-2",
            "test-model-package-group-1"]


def test_describe_model_package_group(sm):
    sm.create_model_package_group(
        ModelPackageGroupName="test-model-package-group",
        ModelPackageGroupDescription="test-model-package-group-description")
    resp = sm.describe_model_package_group(ModelPackageGroupName="test-model-package-group")
    assert resp["ModelPackageGroupName"] == "test-model-package-group"
    assert resp["ModelPackageGroupDescription"] == "test-model-package-group-description"
    assert resp["ModelPackageGroupArn"] == f"{ARN}:model-package-group/test-model-package-group"
    assert resp["ModelPackageGroupStatus"] == "Completed"


def test_describe_model_package_group_not_exists(sm):
    with pytest.raises(ClientError) as e:
        sm.describe_model_package_group(ModelPackageGroupName="test-model-package-group")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "does not exist" in e.value.response["Error"]["Message"]


def test_list_and_delete_tags_model_package_group(sm):
    sm.create_model_package_group(ModelPackageGroupName="test-model-package-group")
    arn = f"{ARN}:model-package-group/test-model-package-group"
    # moto adds 80 tags; AWS allows 50 per resource.
    tags = [{"Key": str(uuid.uuid4()), "Value": "myValue"} for _ in range(80)]
    with pytest.raises(ClientError) as exc:
        sm.add_tags(ResourceArn=arn, Tags=tags)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    tags = sorted(tags[:50], key=lambda t: t["Key"])
    sm.add_tags(ResourceArn=arn, Tags=tags)
    pages = sm.get_paginator("list_tags").paginate(ResourceArn=arn)
    assert [t for page in pages for t in page["Tags"]] == tags
    sm.delete_tags(ResourceArn=arn, TagKeys=[t["Key"] for t in tags[:20]])
    pages = sm.get_paginator("list_tags").paginate(ResourceArn=arn)
    assert [t for page in pages for t in page["Tags"]] == tags[20:]


def test_search_model_package_groups(sm):
    arn1 = sm.create_model_package_group(
        ModelPackageGroupName="test-model-package-group-1",
        ModelPackageGroupDescription="test-model-package-group-description-1",
    )["ModelPackageGroupArn"]
    sm.add_tags(ResourceArn=arn1, Tags=[{"Key": "k1", "Value": "v1"}])
    sm.create_model_package_group(
        ModelPackageGroupName="test-model-package-group-2",
        ModelPackageGroupDescription="test-model-package-group-description-2")
    summary = sm.search(Resource="ModelPackageGroup")["Results"]
    assert len(summary) == 2
    # AWS sorts on CreationTime, Descending, by default (moto: insertion order)
    assert [r["ModelPackageGroup"]["ModelPackageGroupName"] for r in summary] == [
        "test-model-package-group-2", "test-model-package-group-1"]
    assert summary[1]["ModelPackageGroup"]["Tags"] == [{"Key": "k1", "Value": "v1"}]
