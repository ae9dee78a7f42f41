"""Models and endpoint configurations through boto3, against a real server."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/opensage"


def make_model(sm, name: str, **extra):
    return sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                           PrimaryContainer={"Image": IMAGE, "Environment": {}}, **extra)


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = excinfo.value.response["Error"]
    return err["Code"], err["Message"]


def test_model_create_describe_delete(sm):
    arn = make_model(sm, "my-model", Tags=[{"Key": "team", "Value": "ml"}])["ModelArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/my-model"
    described = sm.describe_model(ModelName="my-model")
    assert described["ModelName"] == "my-model"
    assert described["ModelArn"] == arn
    assert described["PrimaryContainer"]["Image"] == IMAGE
    assert described["ExecutionRoleArn"] == ROLE
    assert isinstance(described["CreationTime"], dt.datetime)
    assert abs(described["CreationTime"].timestamp() - time.time()) < 60
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    sm.delete_model(ModelName="my-model")
    with pytest.raises(ClientError) as exc:
        sm.describe_model(ModelName="my-model")
    assert error_of(exc) == ("ValidationException", f'Could not find model "{arn}".')


def test_duplicate_model_is_refused_and_changes_nothing(sm):
    make_model(sm, "dup")
    with pytest.raises(ClientError) as exc:
        sm.create_model(ModelName="DUP", PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"})
    code, message = error_of(exc)
    assert code == "ValidationException" and "Cannot create already existing model" in message
    assert sm.describe_model(ModelName="dup")["PrimaryContainer"]["Image"] == IMAGE
    assert len(sm.list_models()["Models"]) == 1


def test_model_needs_a_container(sm):
    with pytest.raises(ClientError) as exc:
        sm.create_model(ModelName="empty", ExecutionRoleArn=ROLE)
    assert error_of(exc)[0] == "ValidationException"
    assert sm.list_models()["Models"] == []


def test_delete_missing_model(sm):
    with pytest.raises(ClientError) as exc:
        sm.delete_model(ModelName="ghost")
    assert error_of(exc) == (
        "ValidationException",
        f'Could not find model "arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/ghost".')


def test_list_models_sort_filter_and_paginate(sm):
    names = [f"model-{i:02d}" for i in range(25)]
    for name in names:
        make_model(sm, name)
    make_model(sm, "other-thing")
    newest_first = [m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"]]
    assert newest_first == ["other-thing", *reversed(names)]

    page = sm.list_models(SortBy="Name", SortOrder="Ascending", NameContains="MODEL-",
                          MaxResults=10)
    assert [m["ModelName"] for m in page["Models"]] == names[:10]
    seen = [m["ModelName"] for m in page["Models"]]
    token = page["NextToken"]
    make_model(sm, "model-00a")  # inserted behind the cursor: must not shift later pages
    make_model(sm, "model-99")  # inserted ahead of the cursor: appears once, at the end
    while token:
        page = sm.list_models(SortBy="Name", SortOrder="Ascending", NameContains="model-",
                              MaxResults=10, NextToken=token)
        seen += [m["ModelName"] for m in page["Models"]]
        token = page.get("NextToken")
    assert seen == [*names, "model-99"]

    paginator = sm.get_paginator("list_models")
    all_names = [m["ModelName"] for p in paginator.paginate(PaginationConfig={"PageSize": 7})
                 for m in p["Models"]]
    assert sorted(all_names) == sorted([*names, "other-thing", "model-00a", "model-99"])


def test_list_models_creation_time_filters(sm):
    make_model(sm, "early")
    time.sleep(0.05)
    middle = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    make_model(sm, "late")
    after = sm.list_models(CreationTimeAfter=middle)["Models"]
    before = sm.list_models(CreationTimeBefore=middle)["Models"]
    assert [m["ModelName"] for m in after] == ["late"]
    assert [m["ModelName"] for m in before] == ["early"]


def test_next_token_from_another_query_is_refused(sm):
    for i in range(3):
        make_model(sm, f"m{i}")
    token = sm.list_models(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as exc:
        sm.list_models(MaxResults=1, SortBy="Name", NextToken=token)
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sm.list_models(NextToken="garbage!!")
    assert error_of(exc)[0] == "ValidationException"


def test_endpoint_config_lifecycle(sm):
    make_model(sm, "m1")
    variants = [{"VariantName": "AllTraffic", "ModelName": "m1", "InitialInstanceCount": 1,
                 "InstanceType": "ml.m5.large"}]
    arn = sm.create_endpoint_config(EndpointConfigName="cfg", ProductionVariants=variants,
                                    DataCaptureConfig={
                                        "EnableCapture": True, "InitialSamplingPercentage": 50,
                                        "DestinationS3Uri": "s3://bucket/capture",
                                        "CaptureOptions": [{"CaptureMode": "Input"}]}
                                    )["EndpointConfigArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/cfg"
    described = sm.describe_endpoint_config(EndpointConfigName="cfg")
    assert described["ProductionVariants"][0]["ModelName"] == "m1"
    assert described["ProductionVariants"][0]["InitialVariantWeight"] == 1.0
    assert described["DataCaptureConfig"]["InitialSamplingPercentage"] == 50
    listed = sm.list_endpoint_configs()["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in listed] == ["cfg"]
    sm.delete_endpoint_config(EndpointConfigName="cfg")
    with pytest.raises(ClientError) as exc:
        sm.describe_endpoint_config(EndpointConfigName="cfg")
    assert error_of(exc) == ("ValidationException",
                             f'Could not find endpoint configuration "{arn}".')


@pytest.mark.parametrize("variant, fragment", [
    ({"VariantName": "v", "ModelName": "nope", "InitialInstanceCount": 1,
      "InstanceType": "ml.m5.large"}, "Could not find model"),
    ({"VariantName": "v", "ModelName": "m1", "InstanceType": "ml.m5.large"},
     "InitialInstanceCount is required"),
    ({"VariantName": "v", "ModelName": "m1", "InitialInstanceCount": 1,
      "InstanceType": "ml.nope"}, "enum value set"),
])
def test_bad_endpoint_config_is_refused(sm, variant, fragment):
    make_model(sm, "m1")
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint_config(EndpointConfigName="bad", ProductionVariants=[variant])
    code, message = error_of(exc)
    assert code == "ValidationException" and fragment in message
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []


def test_duplicate_variant_names_are_refused(sm):
    make_model(sm, "m1")
    variant = {"VariantName": "v", "ModelName": "m1", "InitialInstanceCount": 1,
               "InstanceType": "ml.m5.large"}
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint_config(EndpointConfigName="bad", ProductionVariants=[variant, variant])
    assert "unique" in error_of(exc)[1]


def test_model_data_url_must_exist(sm, client):
    s3 = client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="m/model.tar.gz", Body=b"not really a tarball")
    for url in ("s3://models/m/missing.tar.gz", "s3://no-such-bucket/model.tar.gz"):
        with pytest.raises(ClientError) as exc:
            sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": url})
        code, message = error_of(exc)
        assert code == "ValidationException" and url in message
    assert sm.list_models()["Models"] == []
    sm.create_model(ModelName="m", PrimaryContainer={
        "Image": IMAGE, "ModelDataUrl": "s3://models/m/model.tar.gz"})
    assert sm.describe_model(ModelName="m")["PrimaryContainer"]["ModelDataUrl"] == (
        "s3://models/m/model.tar.gz")
