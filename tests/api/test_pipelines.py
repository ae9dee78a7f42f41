"""Pipelines through boto3 against a real server: the API (pipelines, versions, tags,
executions, parameters, idempotency, errors) and the engine on steps that need no job
(Condition, Fail, Callback, unsupported step types)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.pipeline_helpers import ROLE, definition, steps_of, wait_for, wait_for_step

PARAMETERS = [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5},
              {"Name": "Count", "Type": "Integer", "DefaultValue": 2},
              {"Name": "Mode", "Type": "String", "DefaultValue": "fast",
               "EnumValues": ["fast", "slow"]},
              {"Name": "Flag", "Type": "Boolean", "DefaultValue": True}]


def _branching() -> str:
    """Check: Threshold >= 0.3 and (Mode in [fast] or not Flag == False) -> Fail with a
    joined message naming the execution; else a Fail saying 'low'."""
    conditions = [
        {"Type": "GreaterThanOrEqualTo", "LeftValue": {"Get": "Parameters.Threshold"},
         "RightValue": 0.3},
        {"Type": "Or", "Conditions": [
            {"Type": "In", "QueryValue": {"Get": "Parameters.Mode"}, "Values": ["fast"]},
            {"Type": "Not", "Condition": {"Type": "Equals",
                                          "LeftValue": {"Get": "Parameters.Flag"},
                                          "RightValue": False}}]}]
    high = {"Name": "High", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
        "On": " ", "Values": ["high", {"Get": "Parameters.Count"},
                              {"Get": "Execution.PipelineExecutionId"}]}}}}
    low = {"Name": "Low", "Type": "Fail", "Arguments": {"ErrorMessage": "low"}}
    return definition([{"Name": "Check", "Type": "Condition", "Arguments": {
        "Conditions": conditions, "IfSteps": [high], "ElseSteps": [low]}}], PARAMETERS)


def test_pipeline_crud_versions_and_tags(sm: Any):
    arn = sm.create_pipeline(PipelineName="crud", PipelineDefinition=_branching(),
                             RoleArn=ROLE, PipelineDescription="first",
                             Tags=[{"Key": "team", "Value": "ml"}])["PipelineArn"]
    assert arn.endswith(":pipeline/crud")
    with pytest.raises(ClientError) as err:
        sm.create_pipeline(PipelineName="crud", PipelineDefinition=_branching(), RoleArn=ROLE)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "already exists" in err.value.response["Error"]["Message"]
    described = sm.describe_pipeline(PipelineName="crud")
    assert described["PipelineStatus"] == "Active"
    assert json.loads(described["PipelineDefinition"])["Steps"][0]["Name"] == "Check"
    updated = sm.update_pipeline(PipelineName="crud", PipelineDescription="second",
                                 PipelineDefinition=definition([]))
    assert updated["PipelineVersionId"] == 2
    assert sm.describe_pipeline(PipelineName=arn)["PipelineDescription"] == "second"
    first = sm.describe_pipeline(PipelineName="crud", PipelineVersionId=1)
    assert json.loads(first["PipelineDefinition"])["Steps"][0]["Name"] == "Check"
    sm.update_pipeline_version(PipelineArn=arn, PipelineVersionId=1,
                               PipelineVersionDisplayName="v-one")
    versions = sm.list_pipeline_versions(PipelineName="crud")["PipelineVersionSummaries"]
    assert [v["PipelineVersionId"] for v in versions] == [2, 1]
    assert versions[1]["PipelineVersionDisplayName"] == "v-one"
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    sm.create_pipeline(PipelineName="crud-b", PipelineDefinition=definition([]), RoleArn=ROLE)
    names = [p["PipelineName"] for p in sm.list_pipelines(
        PipelineNamePrefix="crud", SortBy="Name", SortOrder="Ascending")["PipelineSummaries"]]
    assert names == ["crud", "crud-b"]
    page = sm.list_pipelines(MaxResults=1)
    assert len(page["PipelineSummaries"]) == 1 and page["NextToken"]
    assert sm.delete_pipeline(PipelineName="crud-b")["PipelineArn"].endswith("crud-b")
    with pytest.raises(ClientError) as err:
        sm.describe_pipeline(PipelineName="crud-b")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"


@pytest.mark.parametrize("text,problem", [
    ("{not json", "not valid JSON"),
    (definition([{"Name": "A", "Type": "Nope", "Arguments": {}}]), "unknown Type 'Nope'"),
    (definition([{"Name": "A", "Type": "Fail", "Arguments": {}, "DependsOn": ["B"]}]),
     "do not exist: B"),
    (definition([{"Name": "A", "Type": "Fail", "Arguments": {}},
                 {"Name": "A", "Type": "Fail", "Arguments": {}}]), "more than once"),
    (definition([{"Name": "A", "Type": "Fail", "Arguments": {}, "DependsOn": ["B"]},
                 {"Name": "B", "Type": "Fail", "Arguments": {}, "DependsOn": ["A"]}]),
     "cycle"),
    (definition([{"Name": "A", "Type": "Fail", "Arguments": {
        "ErrorMessage": {"Get": "Parameters.Missing"}}}]), "undefined parameter 'Missing'"),
    (definition([], [{"Name": "P", "Type": "Integer", "DefaultValue": "x"}]),
     "not a valid Integer"),
])
def test_an_invalid_definition_is_refused_naming_the_problem(sm: Any, text: str,
                                                               problem: str):
    with pytest.raises(ClientError) as err:
        sm.create_pipeline(PipelineName="bad", PipelineDefinition=text, RoleArn=ROLE)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert problem in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        sm.describe_pipeline(PipelineName="bad")


def test_condition_and_fail_steps_follow_the_parameters(sm: Any):
    sm.create_pipeline(PipelineName="branch", PipelineDefinition=_branching(), RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName="branch", PipelineParameters=[
        {"Name": "Count", "Value": "7"}])["PipelineExecutionArn"]
    execution_id = arn.split("/")[-1]
    ended = wait_for(sm, arn)
    assert ended["PipelineExecutionStatus"] == "Failed"
    assert ended["PipelineExperimentConfig"] == {"ExperimentName": "branch",
                                                 "TrialName": execution_id}
    steps = steps_of(sm, arn)
    assert steps["Check"]["StepStatus"] == "Succeeded"
    assert steps["Check"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    assert steps["High"]["StepStatus"] == "Failed"
    assert steps["High"]["FailureReason"] == f"high 7 {execution_id}"
    assert steps["High"]["Metadata"] == {"Fail": {"ErrorMessage": f"high 7 {execution_id}"}}
    assert "Low" not in steps
    parameters = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    assert {p["Name"]: p["Value"] for p in parameters["PipelineParameters"]} == {
        "Threshold": "0.5", "Count": "7", "Mode": "fast", "Flag": "true"}

    low = sm.start_pipeline_execution(PipelineName="branch", PipelineParameters=[
        {"Name": "Threshold", "Value": "0.1"}])["PipelineExecutionArn"]
    wait_for(sm, low)
    steps = steps_of(sm, low)
    assert steps["Check"]["Metadata"] == {"Condition": {"Outcome": "False"}}
    assert steps["Low"]["FailureReason"] == "low" and "High" not in steps
    summaries = sm.list_pipeline_executions(PipelineName="branch")[
        "PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in summaries] == [low, arn]
    assert sm.describe_pipeline_definition_for_execution(
        PipelineExecutionArn=arn)["PipelineDefinition"] == _branching()


@pytest.mark.parametrize("given,problem", [
    ([{"Name": "Nope", "Value": "1"}], "Unknown parameter 'Nope'"),
    ([{"Name": "Count", "Value": "two"}], "not a valid Integer"),
    ([{"Name": "Mode", "Value": "medium"}], "not one of its allowed values"),
])
def test_bad_parameters_are_refused_at_start(sm: Any, given: list[dict[str, str]],
                                             problem: str):
    sm.create_pipeline(PipelineName="params", PipelineDefinition=_branching(), RoleArn=ROLE)
    with pytest.raises(ClientError) as err:
        sm.start_pipeline_execution(PipelineName="params", PipelineParameters=given)
    assert problem in err.value.response["Error"]["Message"]


def test_start_is_idempotent_on_its_client_request_token(sm: Any):
    sm.create_pipeline(PipelineName="idem", PipelineDefinition=_branching(), RoleArn=ROLE)
    first = sm.start_pipeline_execution(PipelineName="idem", ClientRequestToken="t" * 32)
    again = sm.start_pipeline_execution(PipelineName="idem", ClientRequestToken="t" * 32)
    assert first["PipelineExecutionArn"] == again["PipelineExecutionArn"]
    assert len(sm.list_pipeline_executions(PipelineName="idem")[
        "PipelineExecutionSummaries"]) == 1


def _callback_pipeline() -> str:
    wait = {"Name": "Wait", "Type": "Callback", "Arguments": {"x": "1"},
            "SqsQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            "OutputParameters": [{"OutputName": "verdict", "OutputType": "String"}]}
    after = {"Name": "After", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "Equals", "LeftValue": {
            "Get": "Steps.Wait.OutputParameters['verdict']"}, "RightValue": "good"}],
        "IfSteps": [], "ElseSteps": [{"Name": "Bad", "Type": "Fail",
                                      "Arguments": {"ErrorMessage": "bad verdict"}}]}}
    return definition([wait, after])


def test_a_callback_step_waits_for_send_step_success(sm: Any):
    sm.create_pipeline(PipelineName="cb", PipelineDefinition=_callback_pipeline(),
                       RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName="cb")["PipelineExecutionArn"]
    step = wait_for_step(sm, arn, "Wait", {"Executing"})
    token = step["Metadata"]["Callback"]["CallbackToken"]
    assert len(token) == 10
    assert sm.describe_pipeline_execution(
        PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"
    with pytest.raises(ClientError):
        sm.send_pipeline_execution_step_success(CallbackToken="0123456789")
    assert sm.send_pipeline_execution_step_success(CallbackToken=token, OutputParameters=[
        {"Name": "verdict", "Value": "good"}])["PipelineExecutionArn"] == arn
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    steps = steps_of(sm, arn)
    assert steps["Wait"]["Metadata"]["Callback"]["OutputParameters"] == [
        {"Name": "verdict", "Value": "good"}]
    assert steps["After"]["Metadata"] == {"Condition": {"Outcome": "True"}}

    failing = sm.start_pipeline_execution(PipelineName="cb")["PipelineExecutionArn"]
    token = wait_for_step(sm, failing, "Wait", {"Executing"})["Metadata"]["Callback"][
        "CallbackToken"]
    sm.send_pipeline_execution_step_failure(CallbackToken=token, FailureReason="said no")
    assert wait_for(sm, failing)["PipelineExecutionStatus"] == "Failed"
    assert steps_of(sm, failing)["Wait"]["FailureReason"] == "said no"
    assert "After" not in steps_of(sm, failing)


def test_stop_ends_a_waiting_execution_stopped_and_retry_runs_it_again(sm: Any):
    sm.create_pipeline(PipelineName="stop", PipelineDefinition=_callback_pipeline(),
                       RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName="stop")["PipelineExecutionArn"]
    wait_for_step(sm, arn, "Wait", {"Executing"})
    sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Stopped"
    assert steps_of(sm, arn)["Wait"]["StepStatus"] == "Stopped"
    with pytest.raises(ClientError):
        sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    sm.retry_pipeline_execution(PipelineExecutionArn=arn)
    token = wait_for_step(sm, arn, "Wait", {"Executing"})["Metadata"]["Callback"][
        "CallbackToken"]
    sm.send_pipeline_execution_step_success(CallbackToken=token, OutputParameters=[
        {"Name": "verdict", "Value": "good"}])
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"


def test_steps_that_need_a_missing_service_fail_naming_it(sm: Any):
    lam = {"Name": "Lam", "Type": "Lambda", "Arguments": {},
           "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
           "OutputParameters": []}
    emr = {"Name": "Emr", "Type": "EMR", "Arguments": {"ClusterId": "j-1"}}
    sm.create_pipeline(PipelineName="missing", PipelineDefinition=definition([lam, emr]),
                       RoleArn=ROLE, ParallelismConfiguration={"MaxParallelExecutionSteps": 2})
    arn = sm.start_pipeline_execution(PipelineName="missing")["PipelineExecutionArn"]
    ended = wait_for(sm, arn)
    assert ended["PipelineExecutionStatus"] == "Failed"
    assert ended["FailureReason"] == "Step failure: One or multiple steps failed."
    steps = steps_of(sm, arn)
    assert "AWS Lambda" in steps["Lam"]["FailureReason"]
    assert "Amazon EMR" in steps["Emr"]["FailureReason"]


def test_update_pipeline_execution_and_unknown_execution(sm: Any):
    sm.create_pipeline(PipelineName="upd", PipelineDefinition=_branching(), RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName="upd")["PipelineExecutionArn"]
    sm.update_pipeline_execution(PipelineExecutionArn=arn, PipelineExecutionDisplayName="n2",
                                 PipelineExecutionDescription="d2")
    described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionDisplayName"] == "n2"
    assert described["PipelineExecutionDescription"] == "d2"
    with pytest.raises(ClientError) as err:
        sm.describe_pipeline_execution(PipelineExecutionArn=arn[:-3] + "zzz")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
