"""moto 5.2.5's pipeline tests (tests/test_sagemaker/test_sagemaker_pipeline.py), their calls
ported to run against opensage. Where moto accepts input that AWS refuses, AWS's behaviour is
asserted instead, and said so:

- moto's definition ``" "`` is no pipeline definition: AWS and opensage refuse it, so the
  ported tests use a minimal valid definition (and one test asserts the refusal);
- ARNs carry the pipeline name in lower case, as AWS writes them;
- ``NextToken="0"`` is no token opensage (or AWS) gave out: refused.
The tests of moto's internals (``get_pipeline_from_name`` & co, the backend's stored
ClientRequestToken, ``load_pipeline_definition_from_s3``) are replaced by what they stand for
through the API: a definition read from S3, and a start repeated with its token.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import botocore
import pytest

from tests.api.pipeline_helpers import ROLE, definition

DEFINITION = definition([])


def create_pipelines(sm: Any, names: list[str], **extra: Any) -> None:
    for name in names:
        sm.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=DEFINITION,
                           **extra)


def test_a_blank_definition_is_refused(sm: Any):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sm.create_pipeline(PipelineName="APipelineName", RoleArn=ROLE, PipelineDefinition=" ")
    assert "not valid JSON" in err.value.response["Error"]["Message"]


def test_list_pipeline_executions(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    sm.start_pipeline_execution(PipelineName="APipelineName")
    sm.start_pipeline_execution(PipelineName="APipelineName")
    response = sm.list_pipeline_executions(PipelineName="APipelineName")
    assert len(response["PipelineExecutionSummaries"]) == 2
    assert "apipelinename" in response["PipelineExecutionSummaries"][0]["PipelineExecutionArn"]


def test_describe_pipeline_definition_for_execution(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    arn = sm.start_pipeline_execution(PipelineName="APipelineName")["PipelineExecutionArn"]
    response = sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)
    assert set(response) == {"PipelineDefinition", "CreationTime", "ResponseMetadata"}
    assert response["PipelineDefinition"] == DEFINITION


def test_list_pipeline_parameters_for_execution(sm: Any):
    sm.create_pipeline(PipelineName="APipelineName", RoleArn=ROLE, PipelineDefinition=(
        definition([], [{"Name": "foo", "Type": "String"}])))
    arn = sm.start_pipeline_execution(PipelineName="APipelineName", PipelineParameters=[
        {"Name": "foo", "Value": "bar"}])["PipelineExecutionArn"]
    response = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    assert response["PipelineParameters"] == [{"Name": "foo", "Value": "bar"}]


def test_start_pipeline_execution(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    arn = sm.start_pipeline_execution(PipelineName="APipelineName")["PipelineExecutionArn"]
    assert "apipelinename" in arn


def test_start_pipeline_execution_contains_client_request_token(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    first = sm.start_pipeline_execution(PipelineName="APipelineName",
                                        ClientRequestToken="a" * 32)["PipelineExecutionArn"]
    assert sm.start_pipeline_execution(PipelineName="APipelineName",
                                       ClientRequestToken="a" * 32)[
        "PipelineExecutionArn"] == first


def test_describe_pipeline_execution_not_exists(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    arn = sm.describe_pipeline(PipelineName="APipelineName")["PipelineArn"]
    with pytest.raises(botocore.exceptions.ClientError):
        sm.describe_pipeline_execution(PipelineExecutionArn=f"{arn}/execution/abcdef123456")


def test_describe_pipeline_execution(sm: Any):
    create_pipelines(sm, ["APipelineName", "BPipelineName"])
    expected = sm.start_pipeline_execution(PipelineName="APipelineName")[
        "PipelineExecutionArn"]
    sm.start_pipeline_execution(PipelineName="BPipelineName")
    described = sm.describe_pipeline_execution(PipelineExecutionArn=expected)
    assert described["PipelineExecutionArn"] == expected


def test_load_pipeline_definition_from_s3(sm: Any, client: Any):
    s3 = client("s3")
    s3.create_bucket(Bucket="some-bucket-1")
    s3.put_object(Bucket="some-bucket-1", Key="some/object/key.json", Body=DEFINITION)
    sm.create_pipeline(PipelineName="FromS3", RoleArn=ROLE, PipelineDefinitionS3Location={
        "Bucket": "some-bucket-1", "ObjectKey": "some/object/key.json"})
    assert json.loads(sm.describe_pipeline(PipelineName="FromS3")["PipelineDefinition"]) == \
        json.loads(DEFINITION)


def test_create_pipeline(sm: Any):
    response = sm.create_pipeline(PipelineName="MyPipelineName", RoleArn=ROLE,
                                  PipelineDefinition=DEFINITION)
    assert response["PipelineArn"] == "arn:aws:sagemaker:us-east-1:123456789012:pipeline/" \
        "mypipelinename"


@pytest.mark.parametrize("kwargs", [
    {"PipelineName": "MyPipelineName", "RoleArn": ROLE},
    {"RoleArn": ROLE, "PipelineDefinition": DEFINITION},
    {"PipelineName": "MyPipelineName", "PipelineDefinition": DEFINITION},
    {"PipelineName": "MyPipelineName", "RoleArn": ROLE, "PipelineDefinition": DEFINITION,
     "PipelineDefinitionS3Location": {"Bucket": "b", "ObjectKey": "k"}},
])
def test_create_pipeline_invalid_required_kwargs(sm: Any, kwargs: dict[str, Any]):
    with pytest.raises((botocore.exceptions.ParamValidationError,
                        botocore.exceptions.ClientError)):
        sm.create_pipeline(**kwargs)


def test_create_pipeline_duplicate_pipeline_name(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    with pytest.raises(botocore.exceptions.ClientError):
        create_pipelines(sm, ["APipelineName"])


def test_list_pipelines_none(sm: Any):
    assert not sm.list_pipelines()["PipelineSummaries"]


def test_list_pipelines_single(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    response = sm.list_pipelines()
    assert len(response["PipelineSummaries"]) == 1
    assert response["PipelineSummaries"][0]["PipelineArn"].endswith(":pipeline/apipelinename")


def test_list_pipelines_multiple(sm: Any):
    names = ["APipelineName", "BPipelineName"]
    create_pipelines(sm, names)
    response = sm.list_pipelines(SortBy="CreationTime", SortOrder="Descending")
    assert len(response["PipelineSummaries"]) == len(names)


def test_list_pipelines_sort_name_ascending(sm: Any):
    create_pipelines(sm, ["APipelineName", "BPipelineName", "CPipelineName"])
    response = sm.list_pipelines(SortBy="Name", SortOrder="Ascending")
    assert [p["PipelineName"] for p in response["PipelineSummaries"]] == [
        "APipelineName", "BPipelineName", "CPipelineName"]


def test_list_pipelines_sort_creation_time_descending(sm: Any):
    create_pipelines(sm, ["APipelineName", "BPipelineName", "CPipelineName"])
    response = sm.list_pipelines(SortBy="CreationTime", SortOrder="Descending")
    assert [p["PipelineName"] for p in response["PipelineSummaries"]] == [
        "CPipelineName", "BPipelineName", "APipelineName"]


def test_list_pipelines_max_results(sm: Any):
    create_pipelines(sm, ["APipelineName", "BPipelineName", "CPipelineName"])
    assert len(sm.list_pipelines(MaxResults=2)["PipelineSummaries"]) == 2


def test_list_pipelines_next_token(sm: Any):
    create_pipelines(sm, ["APipelineName", "BPipelineName"])
    first = sm.list_pipelines(MaxResults=1)
    second = sm.list_pipelines(MaxResults=1, NextToken=first["NextToken"])
    assert len(second["PipelineSummaries"]) == 1 and "NextToken" not in second
    with pytest.raises(botocore.exceptions.ClientError):  # moto accepts "0"; AWS does not
        sm.list_pipelines(NextToken="0")


def test_list_pipelines_pipeline_name_prefix(sm: Any):
    create_pipelines(sm, ["APipelineName", "BPipelineName", "CPipelineName"])
    response = sm.list_pipelines(PipelineNamePrefix="APipe")
    assert [p["PipelineName"] for p in response["PipelineSummaries"]] == ["APipelineName"]
    # moto matches "Pipeline" anywhere; a prefix is a prefix on AWS
    assert not sm.list_pipelines(PipelineNamePrefix="Pipeline")["PipelineSummaries"]


@pytest.mark.parametrize("when", ["2099-12-31 23:59:59", dt.datetime(2099, 12, 31),
                                  dt.datetime(2099, 12, 31).timestamp()])
def test_list_pipelines_created_after(sm: Any, when: Any):
    create_pipelines(sm, ["APipelineName", "BPipelineName", "CPipelineName"])
    assert not sm.list_pipelines(CreatedAfter=when)["PipelineSummaries"]


@pytest.mark.parametrize("when", ["2000-12-31 23:59:59", dt.datetime(2000, 12, 31),
                                  dt.datetime(2000, 12, 31).timestamp()])
def test_list_pipelines_created_before(sm: Any, when: Any):
    create_pipelines(sm, ["APipelineName", "BPipelineName", "CPipelineName"])
    assert not sm.list_pipelines(CreatedBefore=when)["PipelineSummaries"]


@pytest.mark.parametrize("kwargs", [
    {"MaxResults": 200}, {"NextToken": "some-invalid-next-token"},
    {"SortOrder": "some-invalid-sort-order"}, {"SortBy": "some-invalid-sort-by"}])
def test_list_pipelines_invalid_values(sm: Any, kwargs: dict[str, Any]):
    with pytest.raises(botocore.exceptions.ClientError):
        sm.list_pipelines(**kwargs)


def test_delete_pipeline_exists(sm: Any):
    names = ["APipelineName", "BPipelineName", "CPipelineName"]
    create_pipelines(sm, names)
    assert sm.delete_pipeline(PipelineName=names[0])["PipelineArn"].endswith(
        names[0].lower())
    assert not sm.list_pipelines(PipelineNamePrefix=names[0])["PipelineSummaries"]
    remaining = {p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]}
    assert remaining == set(names[1:])


def test_delete_pipeline_not_exists(sm: Any):
    with pytest.raises(botocore.exceptions.ClientError):
        sm.delete_pipeline(PipelineName="some-pipeline-name")


def test_update_pipeline_not_exists(sm: Any):
    with pytest.raises(botocore.exceptions.ClientError):
        sm.update_pipeline(PipelineName="some-pipeline-name")


def test_update_pipeline_no_update(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    assert sm.update_pipeline(PipelineName="APipelineName")["PipelineArn"].endswith(
        ":pipeline/apipelinename")
    assert sm.list_pipelines()["PipelineSummaries"][0]["PipelineName"] == "APipelineName"


def test_update_pipeline_add_attribute(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    assert sm.list_pipelines()["PipelineSummaries"][0]["PipelineDisplayName"] == \
        "APipelineName"
    sm.update_pipeline(PipelineName="APipelineName",
                       PipelineDisplayName="APipelineDisplayName")
    summary = sm.list_pipelines()["PipelineSummaries"][0]
    assert summary["PipelineDisplayName"] == "APipelineDisplayName"
    assert len(summary) == 6


def test_update_pipeline_update_change_attribute(sm: Any):
    create_pipelines(sm, ["APipelineName"])
    sm.update_pipeline(PipelineName="APipelineName", RoleArn=f"{ROLE}Test")
    summary = sm.list_pipelines()["PipelineSummaries"][0]
    assert summary["RoleArn"] == f"{ROLE}Test" and len(summary) == 6


def test_describe_pipeline_not_exists(sm: Any):
    with pytest.raises(botocore.exceptions.ClientError):
        sm.describe_pipeline(PipelineName="some-pipeline-name")


@pytest.mark.parametrize("extra,length", [({}, 11),
                                          ({"PipelineDescription": "some description"}, 12)])
def test_describe_pipeline_exists(sm: Any, extra: dict[str, Any], length: int):
    create_pipelines(sm, ["APipelineName"], **extra)
    assert len(sm.describe_pipeline(PipelineName="APipelineName")) == length
