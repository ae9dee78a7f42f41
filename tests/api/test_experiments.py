"""Experiments, trials, trial components, sagemaker-metrics and lineage through boto3 against
a real server: every operation, and errors that change nothing."""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION

PREFIX = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


def _error(call: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(ClientError) as err:
        call()
    return dict(err.value.response["Error"])


def test_experiment_lifecycle_and_errors(sm: Any) -> None:
    arn = sm.create_experiment(ExperimentName="exp", DisplayName="Exp", Description="d",
                               Tags=[{"Key": "k", "Value": "v"}])["ExperimentArn"]
    assert arn == f"{PREFIX}:experiment/exp"
    duplicate = _error(lambda: sm.create_experiment(ExperimentName="exp"))
    assert duplicate["Code"] == "ValidationException" and "already exists" in \
        duplicate["Message"]
    described = sm.describe_experiment(ExperimentName="exp")
    assert (described["DisplayName"], described["Description"]) == ("Exp", "d")
    sm.update_experiment(ExperimentName="exp", DisplayName="Renamed")
    assert sm.describe_experiment(ExperimentName="exp")["DisplayName"] == "Renamed"
    missing = _error(lambda: sm.describe_experiment(ExperimentName="nope"))
    assert missing == {"Code": "ResourceNotFound",
                       "Message": f"Experiment '{PREFIX}:experiment/nope' does not exist."}
    assert _error(lambda: sm.create_trial(TrialName="t", ExperimentName="nope"))[
        "Code"] == "ResourceNotFound"
    assert sm.list_trials()["TrialSummaries"] == []  # the refused trial left nothing
    sm.create_trial(TrialName="t", ExperimentName="exp")
    refused = _error(lambda: sm.delete_experiment(ExperimentName="exp"))
    assert refused["Code"] == "ValidationException" and "trials" in refused["Message"]
    assert sm.describe_experiment(ExperimentName="exp")["ExperimentName"] == "exp"
    assert sm.describe_trial(TrialName="t")["ExperimentName"] == "exp"
    sm.delete_trial(TrialName="t")
    sm.delete_experiment(ExperimentName="exp")
    assert sm.list_experiments()["ExperimentSummaries"] == []


def test_trial_component_membership_rules(sm: Any) -> None:
    sm.create_experiment(ExperimentName="e")
    sm.create_trial(TrialName="t1", ExperimentName="e", DisplayName="T1")
    sm.create_trial(TrialName="t2", ExperimentName="e")
    sm.update_trial(TrialName="t1", DisplayName="First")
    assert sm.describe_trial(TrialName="t1")["DisplayName"] == "First"
    sm.create_trial_component(TrialComponentName="c", Status={"PrimaryStatus": "InProgress"})
    sm.associate_trial_component(TrialComponentName="c", TrialName="t1")
    sm.associate_trial_component(TrialComponentName="c", TrialName="t2")
    names = {t["TrialName"] for t in sm.list_trials(TrialComponentName="c")["TrialSummaries"]}
    assert names == {"t1", "t2"}
    by_experiment = sm.list_trial_components(ExperimentName="e")["TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in by_experiment] == ["c"]
    assert by_experiment[0]["Status"] == {"PrimaryStatus": "InProgress"}
    assert sm.list_trials(ExperimentName="e", SortBy="Name", SortOrder="Ascending")[
        "TrialSummaries"][0]["TrialName"] == "t1"
    both = _error(lambda: sm.list_trial_components(ExperimentName="e", TrialName="t1"))
    assert both["Code"] == "ValidationException"
    # a member component and a trial with members are not deleted
    assert _error(lambda: sm.delete_trial_component(TrialComponentName="c"))[
        "Code"] == "ValidationException"
    assert _error(lambda: sm.delete_trial(TrialName="t1"))["Code"] == "ValidationException"
    assert sm.describe_trial_component(TrialComponentName="c")["TrialComponentName"] == "c"
    sm.disassociate_trial_component(TrialComponentName="c", TrialName="t1")
    sm.disassociate_trial_component(TrialComponentName="c", TrialName="t2")
    sm.delete_trial(TrialName="t1")
    sm.delete_trial_component(TrialComponentName="c")
    gone = _error(lambda: sm.describe_trial_component(TrialComponentName="c"))
    assert gone == {"Code": "ResourceNotFound", "Message":
                    f"TrialComponent '{PREFIX}:experiment-trial-component/c' does not exist."}


def test_trial_component_time_filters_and_status_moves(sm: Any) -> None:
    sm.create_trial_component(TrialComponentName="early")
    sm.create_trial_component(TrialComponentName="late")
    late = sm.describe_trial_component(TrialComponentName="late")["CreationTime"]
    newer = sm.list_trial_components(CreatedAfter=late - datetime.timedelta(milliseconds=1))[
        "TrialComponentSummaries"]
    assert "late" in [c["TrialComponentName"] for c in newer]
    ascending = sm.list_trial_components(SortBy="Name", SortOrder="Ascending")[
        "TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in ascending] == ["early", "late"]
    for status in ("InProgress", "Completed", "InProgress", "Failed"):
        sm.update_trial_component(TrialComponentName="early",
                                  Status={"PrimaryStatus": status, "Message": status})
        assert sm.describe_trial_component(TrialComponentName="early")["Status"] == {
            "PrimaryStatus": status, "Message": status}
    bad = _error(lambda: sm.update_trial_component(TrialComponentName="early",
                                                   Status={"PrimaryStatus": "Bogus"}))
    assert bad["Code"] == "ValidationException"
    assert sm.describe_trial_component(TrialComponentName="early")["Status"][
        "PrimaryStatus"] == "Failed"


def test_batch_put_metrics_summaries_and_batch_get(sm: Any, client: Callable[..., Any]) -> None:
    sm.create_trial_component(TrialComponentName="run-1")
    metrics = client("sagemaker-metrics")
    now = int(time.time())
    values = [0.9, 0.5, 0.4, 0.2]
    answer = metrics.batch_put_metrics(TrialComponentName="run-1", MetricData=[
        {"MetricName": "loss", "Timestamp": now + i, "Step": i, "Value": v}
        for i, v in enumerate(values)])
    assert answer.get("Errors", []) == []
    metrics.batch_put_metrics(TrialComponentName="run-1", MetricData=[
        {"MetricName": "acc", "Timestamp": now, "Value": 0.75}])
    summary = {m["MetricName"]: m for m in sm.describe_trial_component(
        TrialComponentName="run-1")["Metrics"]}
    loss = summary["loss"]
    mean = sum(values) / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)
    assert (loss["Count"], loss["Min"], loss["Max"], loss["Last"]) == (4, 0.2, 0.9, 0.2)
    assert loss["Avg"] == pytest.approx(mean) and loss["StdDev"] == pytest.approx(std)
    assert summary["acc"]["Count"] == 1 and summary["acc"]["StdDev"] == 0.0
    got = metrics.batch_get_metrics(MetricQueries=[{
        "MetricName": "loss", "ResourceArn": f"{PREFIX}:experiment-trial-component/run-1",
        "MetricStat": "Avg", "Period": "IterationNumber", "XAxisType": "IterationNumber"}])
    result = got["MetricQueryResults"][0]
    assert result["Status"] == "Complete"
    assert result["XAxisValues"] == [0, 1, 2, 3] and result["MetricValues"] == values
    missing = _error(lambda: metrics.batch_put_metrics(TrialComponentName="nope", MetricData=[
        {"MetricName": "loss", "Timestamp": now, "Value": 1.0}]))
    assert missing["Code"] == "ResourceNotFound"
    bad_name = _error(lambda: metrics.batch_put_metrics(TrialComponentName="Upper", MetricData=[
        {"MetricName": "loss", "Timestamp": now, "Value": 1.0}]))
    assert bad_name["Code"] == "ValidationException"
    assert sm.describe_trial_component(TrialComponentName="run-1")["Metrics"][1][
        "Count"] == 4  # nothing was added by the refused calls


def test_search_experiments_trials_and_components(sm: Any) -> None:
    sm.create_experiment(ExperimentName="e1")
    sm.create_experiment(ExperimentName="e2")
    sm.create_trial(TrialName="t1", ExperimentName="e1")
    sm.create_trial(TrialName="t2", ExperimentName="e2")
    for name, trial, lr in (("c1", "t1", 0.1), ("c2", "t1", 0.2), ("c3", "t2", 0.3)):
        sm.create_trial_component(TrialComponentName=name, Parameters={
            "lr": {"NumberValue": lr}}, Tags=[{"Key": "team", "Value": "a"}])
        sm.associate_trial_component(TrialComponentName=name, TrialName=trial)
    found = sm.search(Resource="ExperimentTrialComponent", SearchExpression={"Filters": [
        {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": "e1"}]},
        SortBy="Parameters.lr", SortOrder="Ascending")["Results"]
    assert [r["TrialComponent"]["TrialComponentName"] for r in found] == ["c1", "c2"]
    record = found[0]["TrialComponent"]
    assert record["Parents"] == [{"TrialName": "t1", "ExperimentName": "e1"}]
    assert record["Parameters"] == {"lr": {"NumberValue": 0.1}}
    assert record["Tags"] == [{"Key": "team", "Value": "a"}]
    by_trial = sm.search(Resource="ExperimentTrialComponent", SearchExpression={"Filters": [
        {"Name": "TrialComponentName", "Operator": "Equals", "Value": "c3"},
        {"Name": "Parents.TrialName", "Operator": "Equals", "Value": "t2"}]})["Results"]
    assert len(by_trial) == 1
    trials = sm.search(Resource="ExperimentTrial", SearchExpression={"Filters": [
        {"Name": "ExperimentName", "Operator": "Equals", "Value": "e1"}]})["Results"]
    assert [r["Trial"]["TrialName"] for r in trials] == ["t1"]
    assert {s["TrialComponentName"] for s in trials[0]["Trial"]["TrialComponentSummaries"]} \
        == {"c1", "c2"}
    experiments = sm.search(Resource="Experiment", SearchExpression={"Filters": [
        {"Name": "ExperimentName", "Operator": "Contains", "Value": "2"}]})["Results"]
    assert [r["Experiment"]["ExperimentName"] for r in experiments] == ["e2"]


def test_lineage_entities_associations_and_query(sm: Any) -> None:
    data = sm.create_artifact(ArtifactName="data", ArtifactType="DataSet",
                              Source={"SourceUri": "s3://b/train.csv"},
                              Properties={"p": "1"})["ArtifactArn"]
    assert data.startswith(f"{PREFIX}:artifact/")
    again = _error(lambda: sm.create_artifact(
        ArtifactType="DataSet", Source={"SourceUri": "s3://b/train.csv"}))
    assert again["Code"] == "ValidationException" and "already exists" in again["Message"]
    model = sm.create_artifact(ArtifactType="Model",
                               Source={"SourceUri": "s3://b/model.tar.gz"})["ArtifactArn"]
    action = sm.create_action(ActionName="train", ActionType="Training",
                              Source={"SourceUri": "job"}, Status="Completed")["ActionArn"]
    context = sm.create_context(ContextName="endpoint", ContextType="Endpoint",
                                Source={"SourceUri": "ep"})["ContextArn"]
    assert sm.describe_action(ActionName="train")["Status"] == "Completed"
    sm.update_action(ActionName="train", Description="d", Properties={"a": "b"})
    assert sm.describe_action(ActionName="train")["Properties"] == {"a": "b"}
    sm.update_context(ContextName="endpoint", Description="ctx")
    assert sm.describe_context(ContextName="endpoint")["Description"] == "ctx"
    sm.update_artifact(ArtifactArn=data, PropertiesToRemove=["p"])
    assert sm.describe_artifact(ArtifactArn=data)["Properties"] == {}
    sm.add_association(SourceArn=data, DestinationArn=action, AssociationType="ContributedTo")
    sm.add_association(SourceArn=action, DestinationArn=model, AssociationType="Produced")
    sm.add_association(SourceArn=model, DestinationArn=context)
    dup = _error(lambda: sm.add_association(SourceArn=data, DestinationArn=action))
    assert dup["Code"] == "ValidationException"
    assert _error(lambda: sm.add_association(SourceArn=data, DestinationArn=f"{PREFIX}:"
                                             "artifact/nope"))["Code"] == "ResourceNotFound"
    listed = sm.list_associations(SourceArn=data)["AssociationSummaries"]
    assert [(a["DestinationArn"], a["AssociationType"], a["SourceType"],
             a["DestinationType"]) for a in listed] == [
        (action, "ContributedTo", "DataSet", "Training")]
    ascendants = sm.query_lineage(StartArns=[model], Direction="Ascendants",
                                  IncludeEdges=True)
    assert [v["Arn"] for v in ascendants["Vertices"]] == [action, data]
    assert {"Arn": data, "Type": "DataSet", "LineageType": "Artifact"} in \
        ascendants["Vertices"]
    assert len(ascendants["Edges"]) == 2
    one_hop = sm.query_lineage(StartArns=[model], Direction="Both", MaxDepth=1)
    assert {v["Arn"] for v in one_hop["Vertices"]} == {action, context}
    only_artifacts = sm.query_lineage(StartArns=[context], Direction="Ascendants",
                                      Filters={"LineageTypes": ["Artifact"]})
    assert {v["Arn"] for v in only_artifacts["Vertices"]} == {model, data}
    types = sm.list_artifacts(ArtifactType="Model")["ArtifactSummaries"]
    assert [a["ArtifactArn"] for a in types] == [model]
    assert [a["ActionName"] for a in sm.list_actions()["ActionSummaries"]] == ["train"]
    assert [c["ContextName"] for c in sm.list_contexts()["ContextSummaries"]] == ["endpoint"]
    sm.delete_association(SourceArn=model, DestinationArn=context)
    assert _error(lambda: sm.delete_association(SourceArn=model, DestinationArn=context))[
        "Code"] == "ResourceNotFound"
    sm.delete_context(ContextName="endpoint")
    sm.delete_artifact(ArtifactArn=model)  # its edges go with it
    assert sm.list_associations(DestinationArn=model)["AssociationSummaries"] == []
    assert _error(lambda: sm.describe_artifact(ArtifactArn=model))["Code"] == "ResourceNotFound"
    sm.delete_action(ActionName="train")
    sm.delete_artifact(Source={"SourceUri": "s3://b/train.csv"})
    assert sm.list_artifacts()["ArtifactSummaries"] == []
