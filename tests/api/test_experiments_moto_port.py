"""moto 5.2.5's own experiment, trial and trial component tests
(tests/test_sagemaker/test_sagemaker_{experiment,trial,trial_component}.py), their calls
ported to run against an opensage server (no moto). Where moto answers what AWS does not,
the assertion is AWS's, and says so: ARNs carry the name in lower case; a resource holds at
most 50 tags; disassociating a trial that does not exist is ResourceNotFound."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION

PREFIX = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
TEST_EXPERIMENT_NAME = "MyExperimentName"


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


# -- test_sagemaker_experiment.py ------------------------------------------------------------
def test_create_experiment(sm: Any) -> None:
    resp = sm.create_experiment(ExperimentName=TEST_EXPERIMENT_NAME)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    resp = sm.list_experiments()
    assert len(resp["ExperimentSummaries"]) == 1
    assert resp["ExperimentSummaries"][0]["ExperimentName"] == TEST_EXPERIMENT_NAME
    # AWS: the ARN carries the name in lower case (moto keeps the case)
    assert resp["ExperimentSummaries"][0]["ExperimentArn"] == \
        f"{PREFIX}:experiment/{TEST_EXPERIMENT_NAME.lower()}"


def test_list_experiments(sm: Any) -> None:
    for i in range(10):
        sm.create_experiment(ExperimentName=f"some-experiment-name-{i}")
    resp = sm.list_experiments(MaxResults=1)
    assert len(resp["ExperimentSummaries"]) == 1
    resp = sm.list_experiments(MaxResults=2, NextToken=resp["NextToken"])
    assert len(resp["ExperimentSummaries"]) == 2
    resp = sm.list_experiments(NextToken=resp["NextToken"])
    assert len(resp["ExperimentSummaries"]) == 7
    assert resp.get("NextToken") is None


def test_delete_experiment(sm: Any) -> None:
    sm.create_experiment(ExperimentName=TEST_EXPERIMENT_NAME)
    resp = sm.delete_experiment(ExperimentName=TEST_EXPERIMENT_NAME)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["ExperimentArn"] == f"{PREFIX}:experiment/{TEST_EXPERIMENT_NAME.lower()}"
    assert sm.list_experiments()["ExperimentSummaries"] == []


@pytest.mark.parametrize("kind", ["experiment", "trial", "trial_component"])
def test_add_and_delete_tags(sm: Any, kind: str) -> None:
    arn = _make(sm, kind)
    tags = [{"Key": "name", "Value": "value"}]
    sm.add_tags(ResourceArn=arn, Tags=tags)
    assert sm.list_tags(ResourceArn=arn)["Tags"] == tags
    sm.delete_tags(ResourceArn=arn, TagKeys=[t["Key"] for t in tags])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []


@pytest.mark.parametrize("kind", ["trial", "trial_component"])
def test_list_tags_and_aws_caps_tags_at_50(sm: Any, kind: str) -> None:
    arn = _make(sm, kind)
    tags = [{"Key": str(uuid.uuid4()), "Value": "myValue"} for _ in range(80)]
    # moto accepts 80 tags; AWS refuses more than 50 per resource, and adds none
    with pytest.raises(ClientError) as err:
        sm.add_tags(ResourceArn=arn, Tags=tags)
    assert _code(err) == "ValidationException"
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []
    sm.add_tags(ResourceArn=arn, Tags=tags[:50])
    response = sm.list_tags(ResourceArn=arn)
    assert response.get("NextToken") is None
    assert sorted(t["Key"] for t in response["Tags"]) == sorted(t["Key"] for t in tags[:50])


def _make(sm: Any, kind: str) -> str:
    if kind == "experiment":
        sm.create_experiment(ExperimentName=TEST_EXPERIMENT_NAME)
        return str(sm.describe_experiment(ExperimentName=TEST_EXPERIMENT_NAME)["ExperimentArn"])
    if kind == "trial":
        sm.create_experiment(ExperimentName="some-experiment-name")
        sm.create_trial(ExperimentName="some-experiment-name", TrialName="some-trial-name")
        return str(sm.describe_trial(TrialName="some-trial-name")["TrialArn"])
    sm.create_trial_component(TrialComponentName="some-trial-component-name")
    return str(sm.describe_trial_component(
        TrialComponentName="some-trial-component-name")["TrialComponentArn"])


# -- test_sagemaker_trial.py -----------------------------------------------------------------
def test_create_trial(sm: Any) -> None:
    sm.create_experiment(ExperimentName="some-experiment-name")
    resp = sm.create_trial(ExperimentName="some-experiment-name", TrialName="some-trial-name")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    resp = sm.list_trials()
    assert len(resp["TrialSummaries"]) == 1
    assert resp["TrialSummaries"][0]["TrialName"] == "some-trial-name"
    assert resp["TrialSummaries"][0]["TrialArn"] == f"{PREFIX}:experiment-trial/some-trial-name"


def test_list_trials(sm: Any) -> None:
    sm.create_experiment(ExperimentName="some-experiment-name")
    for i in range(10):
        sm.create_trial(ExperimentName="some-experiment-name", TrialName=f"some-trial-name-{i}")
    resp = sm.list_trials(MaxResults=1)
    assert len(resp["TrialSummaries"]) == 1
    resp = sm.list_trials(MaxResults=2, NextToken=resp["NextToken"])
    assert len(resp["TrialSummaries"]) == 2
    resp = sm.list_trials(NextToken=resp["NextToken"])
    assert len(resp["TrialSummaries"]) == 7
    assert resp.get("NextToken") is None


def test_list_trials_by_trial_component_name(sm: Any) -> None:
    sm.create_experiment(ExperimentName="some-experiment-name")
    sm.create_trial(ExperimentName="some-experiment-name", TrialName="some-trial-name")
    sm.create_trial_component(TrialComponentName="some-trial-component-name")
    resp = sm.list_trials(TrialComponentName="some-trial-component-name")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(resp["TrialSummaries"]) == 0


def test_delete_trial(sm: Any) -> None:
    sm.create_experiment(ExperimentName="some-experiment-name")
    sm.create_trial(ExperimentName="some-experiment-name", TrialName="some-trial-name")
    resp = sm.delete_trial(TrialName="some-trial-name")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sm.list_trials()["TrialSummaries"] == []


# -- test_sagemaker_trial_component.py -------------------------------------------------------
def test_create_trial_component(sm: Any) -> None:
    name = "some-trial-component-name"
    resp = sm.create_trial_component(TrialComponentName=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    resp = sm.describe_trial_component(TrialComponentName=name)
    assert resp["TrialComponentName"] == name
    assert resp["TrialComponentArn"] == f"{PREFIX}:experiment-trial-component/{name}"
    assert resp["DisplayName"] == name
    assert resp.get("Status") is None
    assert resp.get("StartTime") is None
    assert resp.get("EndTime") is None
    assert resp.get("LastModifiedBy") == {}
    assert resp.get("CreatedBy") == {}
    assert resp.get("Parameters") == {}
    assert resp.get("InputArtifacts") == {}
    assert resp.get("OutputArtifacts") == {}
    assert resp.get("Metrics") == []
    assert resp.get("Sources") == []


def test_list_trial_components(sm: Any) -> None:
    for i in range(10):
        sm.create_trial_component(TrialComponentName=f"some-trial-component-name-{i}")
    resp = sm.list_trial_components(MaxResults=1)
    assert len(resp["TrialComponentSummaries"]) == 1
    resp = sm.list_trial_components(MaxResults=2, NextToken=resp["NextToken"])
    assert len(resp["TrialComponentSummaries"]) == 2
    resp = sm.list_trial_components(NextToken=resp["NextToken"])
    assert len(resp["TrialComponentSummaries"]) == 7
    assert resp.get("NextToken") is None


def test_delete_trial_component(sm: Any) -> None:
    sm.create_trial_component(TrialComponentName="some-trial-component-name")
    resp = sm.delete_trial_component(TrialComponentName="some-trial-component-name")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sm.list_trial_components()["TrialComponentSummaries"] == []


def test_associate_trial_component(sm: Any) -> None:
    sm.create_experiment(ExperimentName="some-experiment-name")
    sm.create_trial(ExperimentName="some-experiment-name", TrialName="some-trial-name")
    sm.create_trial_component(TrialComponentName="some-trial-component-name")
    resp = sm.associate_trial_component(TrialComponentName="some-trial-component-name",
                                        TrialName="some-trial-name")
    assert resp["TrialComponentArn"] == \
        f"{PREFIX}:experiment-trial-component/some-trial-component-name"
    assert resp["TrialArn"] == f"{PREFIX}:experiment-trial/some-trial-name"
    resp = sm.list_trial_components(TrialName="some-trial-name")
    assert resp["TrialComponentSummaries"][0]["TrialComponentName"] == \
        "some-trial-component-name"
    resp = sm.list_trials(TrialComponentName="some-trial-component-name")
    assert resp["TrialSummaries"][0]["TrialName"] == "some-trial-name"
    with pytest.raises(ClientError) as err:
        sm.associate_trial_component(TrialComponentName="does-not-exist",
                                     TrialName="does-not-exist")
    assert _code(err) == "ResourceNotFound"
    assert err.value.response["Error"]["Message"] == \
        f"Trial '{PREFIX}:experiment-trial/does-not-exist' does not exist."
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_disassociate_trial_component(sm: Any) -> None:
    sm.create_experiment(ExperimentName="some-experiment-name")
    sm.create_trial(ExperimentName="some-experiment-name", TrialName="some-trial-name")
    sm.create_trial_component(TrialComponentName="some-trial-component-name")
    sm.associate_trial_component(TrialComponentName="some-trial-component-name",
                                 TrialName="some-trial-name")
    resp = sm.disassociate_trial_component(TrialComponentName="some-trial-component-name",
                                           TrialName="some-trial-name")
    assert resp["TrialComponentArn"] == \
        f"{PREFIX}:experiment-trial-component/some-trial-component-name"
    assert resp["TrialArn"] == f"{PREFIX}:experiment-trial/some-trial-name"
    assert sm.list_trial_components(TrialName="some-trial-name")[
        "TrialComponentSummaries"] == []
    assert sm.list_trials(TrialComponentName="some-trial-component-name")[
        "TrialSummaries"] == []
    # moto answers 200 for resources that do not exist; AWS answers ResourceNotFound
    with pytest.raises(ClientError) as err:
        sm.disassociate_trial_component(TrialComponentName="does-not-exist",
                                        TrialName="does-not-exist")
    assert _code(err) == "ResourceNotFound"


def test_update_trial_component(sm: Any) -> None:
    name = "some-trial-component-name"
    sm.create_trial_component(TrialComponentName=name)
    given_status = {"PrimaryStatus": "InProgress", "Message": "a-message"}
    given_parameters = {"param1": {"StringValue": "param1-value", "NumberValue": 123.0},
                        "param2": {"StringValue": "param2-value", "NumberValue": 456.0}}
    given_input = {"artifact1": {"MediaType": "text/plain", "Value": "artifact1-value"}}
    given_output = {"artifact2": {"MediaType": "text/plain", "Value": "artifact2-value"}}
    start = datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC)
    end = datetime.datetime(2021, 1, 2, tzinfo=datetime.UTC)
    created = sm.describe_trial_component(TrialComponentName=name)
    updated = sm.update_trial_component(
        TrialComponentName=name, DisplayName="new-display-name", Status=given_status,
        StartTime=start, EndTime=end, Parameters=given_parameters,
        InputArtifacts=given_input, OutputArtifacts=given_output)
    resp = sm.describe_trial_component(TrialComponentName=name)
    assert updated["TrialComponentArn"] == f"{PREFIX}:experiment-trial-component/{name}"
    assert resp["DisplayName"] == "new-display-name"
    assert resp["Status"] == given_status
    assert resp["StartTime"] == start
    assert resp["EndTime"] == end
    assert resp["Parameters"] == given_parameters
    assert resp["InputArtifacts"] == given_input
    assert resp["OutputArtifacts"] == given_output
    assert resp["LastModifiedTime"] >= created["LastModifiedTime"]


def test_update_trial_component_with_to_remove_options(sm: Any) -> None:
    name = "some-trial-component-name"
    sm.create_trial_component(
        TrialComponentName=name,
        Parameters={"param1": {"StringValue": "param1-value", "NumberValue": 123.0},
                    "param2": {"StringValue": "param2-value", "NumberValue": 456.0}},
        InputArtifacts={"artifact1": {"MediaType": "text/plain", "Value": "artifact1-value"}},
        OutputArtifacts={"artifact2": {"MediaType": "text/plain", "Value": "artifact2-value"}})
    sm.update_trial_component(TrialComponentName=name, ParametersToRemove=["param1"],
                              InputArtifactsToRemove=["artifact1"],
                              OutputArtifactsToRemove=["artifact2"])
    resp = sm.describe_trial_component(TrialComponentName=name)
    assert resp["Parameters"].keys() == {"param2"}
    assert resp["InputArtifacts"] == {}
    assert resp["OutputArtifacts"] == {}


def test_update_trial_component_not_found(sm: Any) -> None:
    with pytest.raises(ClientError) as err:
        sm.update_trial_component(TrialComponentName="not-found",
                                  DisplayName="new-display-name")
    assert _code(err) == "ValidationException"
    assert err.value.response["Error"]["Message"] == (
        f"Could not find trial component '{PREFIX}:experiment-trial-component/not-found'")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
