"""Tuning jobs that end before MaxNumberOfTrainingJobs (completion criteria, MaxRuntimeInSeconds),
several training job definitions, and retried internal errors: boto3 against a real server."""

from __future__ import annotations

import copy
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_tuning import OBJECTIVE, all_children, tuning_request, wait_for_tuning

# alpha in [0, 1e-9] changes nothing: every child scores the same, so none improves on the first
FLAT = {"ContinuousParameterRanges": [{"Name": "alpha", "MinValue": "0", "MaxValue": "1e-9",
                                       "ScalingType": "Linear"}]}


def _config(request: dict[str, Any]) -> dict[str, Any]:
    return request["HyperParameterTuningJobConfig"]


def test_target_objective_value_ends_the_search_at_the_first_child_that_reaches_it(sm, data):
    request = tuning_request("tune-target", max_jobs=6, parallel=1)
    _config(request)["TuningJobCompletionCriteria"] = {"TargetObjectiveMetricValue": 1e6}
    sm.create_hyper_parameter_tuning_job(**request)
    job = wait_for_tuning(sm, "tune-target")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    children = all_children(sm, "tune-target")
    assert len(children) == 1  # rmse <= 1e6 at once: no second child
    assert job["TrainingJobStatusCounters"]["Completed"] == 1
    assert job["TuningJobCompletionDetails"] == {"NumberOfTrainingJobsObjectiveNotImproving": 0}
    assert job["HyperParameterTuningJobConfig"]["TuningJobCompletionCriteria"] == {
        "TargetObjectiveMetricValue": 1e6}
    assert job["BestTrainingJob"]["TrainingJobName"] == children[0]["TrainingJobName"]


@pytest.mark.parametrize("criteria, converged", [
    ({"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3}}, False),
    # MaxNumberOfTrainingJobs 8: convergence window max(3, 8/4) = 3
    ({"ConvergenceDetected": {"CompleteOnConvergence": "Enabled"}}, True),
])
def test_a_search_that_stops_improving_ends_early_with_its_details(sm, data, criteria,
                                                                    converged):
    request = tuning_request("tune-flat", max_jobs=8, parallel=1, ranges=FLAT)
    _config(request)["TuningJobCompletionCriteria"] = criteria
    sm.create_hyper_parameter_tuning_job(**request)
    job = wait_for_tuning(sm, "tune-flat")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    children = all_children(sm, "tune-flat")
    objectives = {c["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for c in children}
    assert len(objectives) == 1  # the premise: every child scores the same
    assert len(children) == 4  # the first, then three that do not improve on it
    details = job["TuningJobCompletionDetails"]
    assert details["NumberOfTrainingJobsObjectiveNotImproving"] == 3
    if converged:
        assert job["CreationTime"] <= details["ConvergenceDetectedTime"] <= job[
            "HyperParameterTuningEndTime"]
    else:
        assert "ConvergenceDetectedTime" not in details
    assert job["TrainingJobStatusCounters"]["InProgress"] == 0


def test_no_criterion_met_runs_every_child(sm, data):
    request = tuning_request("tune-miss", max_jobs=2, parallel=2)
    _config(request)["TuningJobCompletionCriteria"] = {
        "TargetObjectiveMetricValue": -1.0,  # rmse never gets below 0
        "ConvergenceDetected": {"CompleteOnConvergence": "Disabled"}}
    sm.create_hyper_parameter_tuning_job(**request)
    job = wait_for_tuning(sm, "tune-miss")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert len(all_children(sm, "tune-miss")) == 2
    assert "ConvergenceDetectedTime" not in job["TuningJobCompletionDetails"]


def test_max_runtime_stops_the_running_children_and_completes(sm, data, monkeypatch):
    """MaxRuntimeInSeconds may not be under 120 s: the tuning service's clock runs 40 times
    faster here, so the limit is reached after 3 s of real time."""
    from opensage.services.tuning.jobs import TuningService

    monkeypatch.setattr(TuningService, "_runtime",
                        lambda self, body: 40 * (time.time() - body["CreationTime"]))
    request = tuning_request("tune-time", max_jobs=6, parallel=2,
                             static={"objective": "reg:squarederror", "num_round": "100000"})
    _config(request)["ResourceLimits"]["MaxRuntimeInSeconds"] = 120
    sm.create_hyper_parameter_tuning_job(**request)
    job = wait_for_tuning(sm, "tune-time", timeout=60)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    children = all_children(sm, "tune-time")
    assert len(children) == 2  # the two that ran when time was up; no third
    assert {c["TrainingJobStatus"] for c in children} == {"Stopped"}
    for child in children:
        described = sm.describe_training_job(TrainingJobName=child["TrainingJobName"])
        assert described["TrainingJobStatus"] == "Stopped"
    assert job["TrainingJobStatusCounters"]["Stopped"] == 2
    assert job["TrainingJobStatusCounters"]["InProgress"] == 0
    runtime = job["ConsumedResources"]["RuntimeInSeconds"]
    elapsed = (job["HyperParameterTuningEndTime"] - job["CreationTime"]).total_seconds()
    assert runtime == round(elapsed) and 2 <= runtime < 60


def _definitions_request(name: str) -> dict[str, Any]:
    request = tuning_request(name, max_jobs=4, parallel=2)
    single = request.pop("TrainingJobDefinition")
    config = _config(request)
    ranges = config.pop("ParameterRanges")
    config.pop("HyperParameterTuningJobObjective")
    definitions = []
    for definition, depth in (("shallow", "1"), ("deep", "4")):
        job = copy.deepcopy(single)
        job.update(DefinitionName=definition, TuningObjective=dict(OBJECTIVE),
                   HyperParameterRanges={"ContinuousParameterRanges": ranges[
                       "ContinuousParameterRanges"]})
        job["StaticHyperParameters"] = {**job["StaticHyperParameters"], "max_depth": depth}
        definitions.append(job)
    request["TrainingJobDefinitions"] = definitions
    return request


def test_training_job_definitions_take_turns_and_report_their_names(sm, data):
    sm.create_hyper_parameter_tuning_job(**_definitions_request("tune-defs"))
    job = wait_for_tuning(sm, "tune-defs")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert "TrainingJobDefinition" not in job
    assert [d["DefinitionName"] for d in job["TrainingJobDefinitions"]] == ["shallow", "deep"]
    assert job["TrainingJobDefinitions"][1]["StaticHyperParameters"][
        "_tuning_objective_metric"] == "validation:rmse"
    children = sorted(all_children(sm, "tune-defs"), key=lambda c: c["TrainingJobName"])
    assert [c["TrainingJobDefinitionName"] for c in children] == [
        "shallow", "deep", "shallow", "deep"]
    for child in children:
        hps = sm.describe_training_job(TrainingJobName=child["TrainingJobName"])[
            "HyperParameters"]
        assert hps["max_depth"] == {"shallow": "1", "deep": "4"}[child[
            "TrainingJobDefinitionName"]]
        assert set(child["TunedHyperParameters"]) == {"eta"}
        assert child["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == (
            "validation:rmse")
    best = min(children, key=lambda c: c["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert job["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    assert job["BestTrainingJob"]["TrainingJobDefinitionName"] == best[
        "TrainingJobDefinitionName"]


def _defs(change) -> dict[str, Any]:
    request = _definitions_request("tune-bad")
    change(request)
    return request


@pytest.mark.parametrize("request_, fragment", [
    (_defs(lambda r: r.update(TrainingJobDefinition=r["TrainingJobDefinitions"][0])),
     "Exactly one"),
    (_defs(lambda r: r.pop("TrainingJobDefinitions")), "Exactly one"),
    (_defs(lambda r: r["TrainingJobDefinitions"][1].update(DefinitionName="shallow")),
     "unique"),
    (_defs(lambda r: r["TrainingJobDefinitions"].extend(
        copy.deepcopy(r["TrainingJobDefinitions"][0]) for _ in range(9))), "less than or equal to 10"),
    (_defs(lambda r: r["TrainingJobDefinitions"][1].pop("TuningObjective")), "TuningObjective"),
    (_defs(lambda r: r["TrainingJobDefinitions"][1]["TuningObjective"].update(Type="Maximize")),
     "same Type"),
    (_defs(lambda r: _config(r).update(ParameterRanges=FLAT)), "HyperParameterRanges"),
    (_defs(lambda r: r["TrainingJobDefinitions"][1].update(HyperParameterRanges={
        "ContinuousParameterRanges": [{"Name": "nope", "MinValue": "0", "MaxValue": "1"}]})),
     "nope"),
    (_defs(lambda r: _config(r).update(Strategy="Grid")), "Bayesian and Random"),
    (_defs(lambda r: _config(r).update(TuningJobCompletionCriteria={
        "ConvergenceDetected": {"CompleteOnConvergence": "Sometimes"}})),
     "[Disabled, Enabled]"),
])
def test_bad_definitions_or_criteria_are_refused_and_create_nothing(sm, data, request_,
                                                                    fragment):
    with pytest.raises(ClientError) as exc:
        sm.create_hyper_parameter_tuning_job(**request_)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert fragment in exc.value.response["Error"]["Message"]
    assert sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"] == []
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []


@pytest.mark.parametrize("error, retried", [("internal", True), ("client", False)])
def test_an_internal_failure_is_retried_once_and_a_client_error_is_not(sm, data, monkeypatch,
                                                                        error, retried):
    """The first child's run fails: with an internal error (the runner crashing) it counts
    as RetryableError and runs again with the same hyperparameters; with a ClientError it
    counts as NonRetryableError and the search goes on without it."""
    from opensage.runner.local import LocalExecutor, Outcome

    run = LocalExecutor._run
    failed: list[str] = []

    def flaky(self, job_run):
        name = job_run.spec.name
        if re.search(r"-001-", name) and not failed:
            failed.append(name)
            if error == "internal":
                raise RuntimeError("the runner fell over")  # reported as InternalServerError
            return Outcome("Failed", "ClientError: the data is bad")
        return run(self, job_run)

    monkeypatch.setattr(LocalExecutor, "_run", flaky)
    sm.create_hyper_parameter_tuning_job(**tuning_request("tune-retry", max_jobs=2,
                                                          parallel=1))
    job = wait_for_tuning(sm, "tune-retry")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    children = sorted(all_children(sm, "tune-retry"), key=lambda c: c["TrainingJobName"])
    first = children[0]
    assert first["TrainingJobName"] == failed[0]
    assert first["TrainingJobStatus"] == "Failed"
    counters = job["TrainingJobStatusCounters"]
    if retried:
        assert first["FailureReason"].startswith("InternalServerError")
        assert len(children) == 3  # MaxNumberOfTrainingJobs 2, plus the retry
        retry = children[1]
        assert retry["TunedHyperParameters"] == first["TunedHyperParameters"]
        assert retry["TrainingJobStatus"] == "Completed"
        assert counters["RetryableError"] == 1 and counters["NonRetryableError"] == 0
        assert counters["Completed"] == 2
    else:
        assert first["FailureReason"].startswith("ClientError")
        assert len(children) == 2
        assert children[1]["TunedHyperParameters"] != first["TunedHyperParameters"]
        assert counters["RetryableError"] == 0 and counters["NonRetryableError"] == 1
        assert counters["Completed"] == 1  # the failed child counts against the two

