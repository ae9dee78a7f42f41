"""Automatic model tuning through boto3 against a real server: real XGBoost child jobs."""

from __future__ import annotations

import copy
import itertools
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_training_jobs import BUCKET, ROLE, XGB_IMAGE

OBJECTIVE = {"Type": "Minimize", "MetricName": "validation:rmse"}


def tuning_request(name: str, *, strategy: str = "Random", max_jobs: int | None = 4,
                   parallel: int = 2, ranges: dict[str, Any] | None = None,
                   static: dict[str, str] | None = None) -> dict[str, Any]:
    limits = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "ResourceLimits": limits,
            "HyperParameterTuningJobObjective": dict(OBJECTIVE),
            "TrainingJobEarlyStoppingType": "Off", "RandomSeed": 7,
            "ParameterRanges": ranges if ranges is not None else {
                "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05",
                                               "MaxValue": "0.5", "ScalingType": "Auto"}],
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1",
                                            "MaxValue": "4", "ScalingType": "Linear"}],
                "CategoricalParameterRanges": []}},
        "TrainingJobDefinition": {
            "StaticHyperParameters": static if static is not None else {
                "objective": "reg:squarederror", "num_round": "8"},
            "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "InputDataConfig": [
                {"ChannelName": channel, "ContentType": "text/csv", "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix",
                                     "S3Uri": f"s3://{BUCKET}/data/{channel}",
                                     "S3DataDistributionType": "FullyReplicated"}}}
                for channel in ("train", "validation")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/tuning/"},
            "HyperParameterTuningResourceConfig": {"InstanceType": "ml.m5.large",
                                                   "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}},
        "Tags": [{"Key": "team", "Value": "search"}],
    }


def wait_for_tuning(sm, name: str, timeout: float = 150) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if job["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"{name} did not finish: {job['HyperParameterTuningJobStatus']}")


def all_children(sm, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    found, token = [], None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, **kwargs, **({"NextToken": token} if token else {}))
        found += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            return found


def test_random_search_runs_real_children_and_reports_the_best(sm, data):
    arn = sm.create_hyper_parameter_tuning_job(**tuning_request("tune-rand"))[
        "HyperParameterTuningJobArn"]
    assert arn.endswith(":hyper-parameter-tuning-job/tune-rand")
    job = wait_for_tuning(sm, "tune-rand")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TrainingJobStatusCounters"] == {
        "Completed": 4, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0,
        "Stopped": 0}
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    assert job["HyperParameterTuningEndTime"] >= job["CreationTime"]
    assert job["TrainingJobDefinition"]["StaticHyperParameters"]["num_round"] == "8"

    children = all_children(sm, "tune-rand")
    names = sorted(c["TrainingJobName"] for c in children)
    assert len(names) == 4
    assert [re.fullmatch(r"tune-rand-(\d{3})-[0-9a-f]{8}", n).group(1) for n in names] == [
        "001", "002", "003", "004"]
    objectives = {}
    windows = []
    for summary in children:
        child = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        assert child["TrainingJobStatus"] == summary["TrainingJobStatus"] == "Completed"
        assert child["TuningJobArn"] == arn
        hps = child["HyperParameters"]
        assert hps["_tuning_objective_metric"] == "validation:rmse"
        assert hps["num_round"] == "8" and hps["objective"] == "reg:squarederror"
        tuned = summary["TunedHyperParameters"]
        assert set(tuned) == {"eta", "max_depth"}
        assert {k: hps[k] for k in tuned} == tuned
        assert 0.05 <= float(tuned["eta"]) <= 0.5 and 1 <= int(tuned["max_depth"]) <= 4
        final = {m["MetricName"]: m["Value"] for m in child["FinalMetricDataList"]}
        metric = summary["FinalHyperParameterTuningJobObjectiveMetric"]
        assert metric["MetricName"] == "validation:rmse"
        assert metric["Value"] == pytest.approx(final["validation:rmse"])
        assert summary["ObjectiveStatus"] == "Succeeded"
        objectives[summary["TrainingJobName"]] = metric["Value"]
        windows.append((child["CreationTime"], child["TrainingEndTime"]))
        tags = sm.list_tags(ResourceArn=child["TrainingJobArn"])["Tags"]
        assert {"Key": "team", "Value": "search"} in tags
    # never more than MaxParallelTrainingJobs at once
    for start, _ in windows:
        assert sum(s <= start < e for s, e in windows) <= 2

    best = job["BestTrainingJob"]
    assert best["TrainingJobName"] == min(objectives, key=objectives.get)
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
        min(objectives.values()))
    assert best["TunedHyperParameters"] == next(
        c["TunedHyperParameters"] for c in children if c["TrainingJobName"] == best[
            "TrainingJobName"])

    by_objective = all_children(sm, "tune-rand", SortBy="FinalObjectiveMetricValue",
                                SortOrder="Ascending", MaxResults=3)
    assert [c["TrainingJobName"] for c in by_objective] == sorted(objectives,
                                                                  key=objectives.get)
    listed = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    assert [(j["HyperParameterTuningJobName"], j["Strategy"], j["HyperParameterTuningJobStatus"])
            for j in listed] == [("tune-rand", "Random", "Completed")]
    found = sm.search(Resource="TrainingJob", SearchExpression={"Filters": [
        {"Name": "TuningJobArn", "Operator": "Equals", "Value": arn}]})["Results"]
    assert len(found) == 4


def test_grid_enumerates_exactly_the_grid(sm, data):
    ranges = {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2",
                                          "MaxValue": "3"}],
              "CategoricalParameterRanges": [{"Name": "eta", "Values": ["0.1", "0.4"]}]}
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        "tune-grid", strategy="Grid", max_jobs=None, parallel=2, ranges=ranges))
    job = wait_for_tuning(sm, "tune-grid")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    children = sorted(all_children(sm, "tune-grid"), key=lambda c: c["TrainingJobName"])
    assert [c["TunedHyperParameters"] for c in children] == [
        {"max_depth": d, "eta": e} for d, e in itertools.product(["2", "3"], ["0.1", "0.4"])]
    assert job["TrainingJobStatusCounters"]["Completed"] == 4


def test_early_stopping_stops_a_clearly_bad_trial(sm, client, data):
    """Median rule: eta=0.001 is worse at every round than the running averages of the two
    good trials before it, so it is stopped long before its last round."""
    request = tuning_request(
        "tune-early", strategy="Grid", max_jobs=None, parallel=1,
        ranges={"CategoricalParameterRanges": [{"Name": "eta",
                                                "Values": ["0.3", "0.5", "0.001"]}]},
        # xgboost's own early stopping ends the good trials in a few dozen rounds; the bad
        # one keeps improving slowly and would run all 3000 (seconds) unless stopped.
        static={"objective": "reg:squarederror", "num_round": "3000",
                "early_stopping_rounds": "5"})
    _config(request)["TrainingJobEarlyStoppingType"] = "Auto"
    sm.create_hyper_parameter_tuning_job(**request)
    job = wait_for_tuning(sm, "tune-early")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Auto"
    children = {c["TunedHyperParameters"]["eta"]: c for c in all_children(sm, "tune-early")}
    assert [children[e]["TrainingJobStatus"] for e in ("0.3", "0.5")] == ["Completed"] * 2
    bad = children["0.001"]
    assert bad["TrainingJobStatus"] == "Stopped"
    assert bad["ObjectiveStatus"] == "Succeeded"
    described = sm.describe_training_job(TrainingJobName=bad["TrainingJobName"])
    assert described["TrainingJobStatus"] == "Stopped"
    last = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert bad["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
        last["validation:rmse"])
    events = client("logs").filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamNamePrefix=bad["TrainingJobName"])["events"]
    rounds = [e for e in events if "validation-rmse" in e["message"]]
    assert 0 < len(rounds) < 1500  # stopped long before its 3000th round
    assert job["TrainingJobStatusCounters"]["Stopped"] == 1
    assert job["TrainingJobStatusCounters"]["Completed"] == 2
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 3, "Pending": 0, "Failed": 0}
    assert job["BestTrainingJob"]["TunedHyperParameters"]["eta"] != "0.001"


def test_hyperband_stops_a_low_performer_at_a_rung_and_reports_the_best(sm, client, data):
    """Every child gets MaxResource (3000) as num_round; with RandomSeed 1 the trials are
    eta 0.5 (bracket 0), 0.5 (bracket 1), 0.001 (bracket 0), 0.5 (bracket 0). At bracket 0's
    first rung (round 10) eta=0.001 is worse than the first trial was there: stopped long
    before round 3000 (xgboost's own early stopping ends the good ones in a few dozen)."""
    request = tuning_request(
        "tune-hb", strategy="Hyperband", max_jobs=4, parallel=1,
        ranges={"CategoricalParameterRanges": [{"Name": "eta", "Values": ["0.5", "0.001"]}]},
        static={"objective": "reg:squarederror", "early_stopping_rounds": "5"})
    _config(request).update(RandomSeed=1, StrategyConfig={
        "HyperbandStrategyConfig": {"MinResource": 10, "MaxResource": 3000}})
    sm.create_hyper_parameter_tuning_job(**request)
    job = wait_for_tuning(sm, "tune-hb")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["HyperParameterTuningJobConfig"]["Strategy"] == "Hyperband"
    children = sorted(all_children(sm, "tune-hb"), key=lambda c: c["TrainingJobName"])
    assert [c["TunedHyperParameters"]["eta"] for c in children] == ["0.5", "0.5", "0.001", "0.5"]
    for child in children:
        hps = sm.describe_training_job(TrainingJobName=child["TrainingJobName"])[
            "HyperParameters"]
        assert hps["num_round"] == "3000"
    bad = children[2]
    assert bad["TrainingJobStatus"] == "Stopped" and bad["ObjectiveStatus"] == "Succeeded"
    assert [c["TrainingJobStatus"] for c in children if c is not bad] == ["Completed"] * 3
    events = client("logs").filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamNamePrefix=bad["TrainingJobName"])["events"]
    rounds = [e for e in events if "validation-rmse" in e["message"]]
    assert 10 <= len(rounds) < 1500  # past the rung, stopped long before MaxResource
    assert job["TrainingJobStatusCounters"]["Stopped"] == 1
    best = min(children, key=lambda c: c["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert job["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    assert job["BestTrainingJob"]["TunedHyperParameters"]["eta"] == "0.5"


def test_warm_start_reuses_the_parents_trials_and_reports_the_overall_best(sm, data,
                                                                           monkeypatch):
    from opensage.services.tuning.strategies import Search

    seen: list[list[tuple[str, float | None]]] = []
    ask = Search.ask

    def spy(self, trials, prior=()):
        seen.append([(t.tuned["eta"], t.objective) for t in prior])
        return ask(self, trials, prior)

    monkeypatch.setattr(Search, "ask", spy)
    sm.create_hyper_parameter_tuning_job(**tuning_request("tune-parent", max_jobs=2))
    parent = wait_for_tuning(sm, "tune-parent")
    assert parent["HyperParameterTuningJobStatus"] == "Completed", parent.get("FailureReason")
    # One round instead of eight (a static change TransferLearning allows): every child of
    # the warm-started job is worse than the parent's best.
    request = tuning_request("tune-warm", strategy="Bayesian", max_jobs=2, parallel=2,
                             static={"objective": "reg:squarederror", "num_round": "1"})
    warm = {"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "tune-parent"}],
            "WarmStartType": "IdenticalDataAndAlgorithm"}
    with pytest.raises(ClientError) as exc:  # a parent that does not exist
        sm.create_hyper_parameter_tuning_job(**request, WarmStartConfig={
            **warm, "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "nope"}]})
    assert "nope" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:  # IdenticalDataAndAlgorithm: same data
        sm.create_hyper_parameter_tuning_job(**_bad_data(request), WarmStartConfig=warm)
    assert "input data" in exc.value.response["Error"]["Message"]
    sm.create_hyper_parameter_tuning_job(**request, WarmStartConfig={
        **warm, "WarmStartType": "TransferLearning"})
    job = wait_for_tuning(sm, "tune-warm")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["WarmStartConfig"]["WarmStartType"] == "TransferLearning"
    own = {c["TrainingJobName"] for c in all_children(sm, "tune-warm")}
    assert len(own) == 2 and job["BestTrainingJob"]["TrainingJobName"] in own
    overall = job["OverallBestTrainingJob"]
    assert overall["TrainingJobName"] == parent["BestTrainingJob"]["TrainingJobName"]
    assert overall["TuningJobName"] == "tune-parent"
    assert overall["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] < job[
        "BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert "OverallBestTrainingJob" not in parent
    parents = {(c["TunedHyperParameters"]["eta"],
                c["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
               for c in all_children(sm, "tune-parent")}
    assert seen[:2] == [[], []]  # the parent's own asks
    assert len(seen) == 4 and all(set(s) == parents for s in seen[2:])  # the warm job's


def test_cli_tuning_show_prints_the_leaderboard(sm, data, endpoint):
    from typer.testing import CliRunner

    from opensage.cli.main import app

    sm.create_hyper_parameter_tuning_job(**tuning_request("tune-cli", max_jobs=2))
    runner = CliRunner()
    watched = runner.invoke(app, ["tuning", "show", "tune-cli", "--endpoint-url", endpoint,
                                  "--watch", "--interval", "0.2"], env={"COLUMNS": "200"})
    assert watched.exit_code == 0, watched.output
    job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-cli")
    assert job["HyperParameterTuningJobStatus"] == "Completed"  # --watch ran until the end
    shown = runner.invoke(app, ["tuning", "show", "tune-cli", "--endpoint-url", endpoint],
                          env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    best = job["BestTrainingJob"]
    lines = [line for line in shown.output.splitlines() if "tune-cli-" in line]
    assert len(lines) == 2 and best["TrainingJobName"] in lines[0]  # best first
    assert best["TunedHyperParameters"]["max_depth"] in lines[0]
    assert "Completed" in shown.output and "validation:rmse" in shown.output
    missing = runner.invoke(app, ["tuning", "show", "nope", "--endpoint-url", endpoint])
    assert missing.exit_code == 1


def _bad_data(request: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    channel = changed["TrainingJobDefinition"]["InputDataConfig"][0]
    channel["DataSource"]["S3DataSource"]["S3Uri"] += "-other"
    return changed


def test_stop_stops_the_children_and_ends_stopped(sm, data):
    request = tuning_request("tune-stop", max_jobs=6, parallel=2,
                             static={"objective": "reg:squarederror", "num_round": "2000"})
    sm.create_hyper_parameter_tuning_job(**request)
    deadline = time.monotonic() + 30
    while not all_children(sm, "tune-stop") and time.monotonic() < deadline:
        time.sleep(0.1)
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")
    status = sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-stop")["HyperParameterTuningJobStatus"]
    assert status in ("Stopping", "Stopped")
    job = wait_for_tuning(sm, "tune-stop", timeout=60)
    assert job["HyperParameterTuningJobStatus"] == "Stopped"
    children = all_children(sm, "tune-stop")
    assert 1 <= len(children) <= 2
    assert all(c["TrainingJobStatus"] in ("Stopped", "Completed") for c in children)
    assert job["TrainingJobStatusCounters"]["InProgress"] == 0
    with pytest.raises(ClientError) as exc:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def _continuous(name: str, low: str, high: str, scaling: str = "Auto") -> dict[str, Any]:
    return {"ContinuousParameterRanges": [{"Name": name, "MinValue": low, "MaxValue": high,
                                           "ScalingType": scaling}]}


def _bad(change) -> dict[str, Any]:
    request = copy.deepcopy(tuning_request("tune-bad"))
    change(request)
    return request


def _config(request: dict[str, Any]) -> dict[str, Any]:
    return request["HyperParameterTuningJobConfig"]


@pytest.mark.parametrize("request_, fragment", [
    (_bad(lambda r: _config(r).update(ParameterRanges=_continuous("not_a_param", "0", "1"))),
     "not_a_param"),
    (_bad(lambda r: _config(r).update(ParameterRanges=_continuous("sketch_eps", "0.1", "0.2"))),
     "not tunable"),
    (_bad(lambda r: r["TrainingJobDefinition"]["StaticHyperParameters"].update(eta="0.1")),
     "static"),
    (_bad(lambda r: _config(r).update(ParameterRanges=_continuous("subsample", "0.5", "1.5"))),
     "outside the algorithm's allowed values"),
    (_bad(lambda r: _config(r).update(ParameterRanges=_continuous(
        "alpha", "0", "10", "Logarithmic"))), "Logarithmic"),
    (_bad(lambda r: _config(r).update(Strategy="Grid")), "continuous"),
    (_bad(lambda r: _config(r)["HyperParameterTuningJobObjective"].update(
        MetricName="validation:nonsense")), "validation:nonsense"),
    (_bad(lambda r: _config(r)["ResourceLimits"].update(MaxParallelTrainingJobs=5)),
     "MaxParallelTrainingJobs"),
    (_bad(lambda r: _config(r).update(StrategyConfig={
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 9}})), "Hyperband"),
    (_bad(lambda r: _config(r).update(Strategy="Hyperband", StrategyConfig={
        "HyperbandStrategyConfig": {"MinResource": 9, "MaxResource": 9}})), "less than"),
    (_bad(lambda r: _config(r).update(Strategy="Hyperband", StrategyConfig={
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 30000}})), "20000"),
    (_bad(lambda r: _config(r).update(Strategy="Hyperband", TrainingJobEarlyStoppingType="Auto",
                                      StrategyConfig={"HyperbandStrategyConfig": {
                                          "MinResource": 1, "MaxResource": 9}})), "Off"),
    (_bad(lambda r: (_config(r).update(
        Strategy="Hyperband", ParameterRanges={"IntegerParameterRanges": [
            {"Name": "num_round", "MinValue": "1", "MaxValue": "9"}]}, StrategyConfig={
                "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 9}}),
        r["TrainingJobDefinition"]["StaticHyperParameters"].pop("num_round"))),
     "cannot be tuned"),
])
def test_bad_input_is_refused_and_creates_nothing(sm, data, request_, fragment):
    with pytest.raises(ClientError) as exc:
        sm.create_hyper_parameter_tuning_job(**request_)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert fragment in exc.value.response["Error"]["Message"]
    assert sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"] == []
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    with pytest.raises(ClientError) as missing:
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-bad")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"


def test_a_restart_mid_search_resumes_it_without_losing_or_repeating_a_trial(tmp_path):
    import boto3
    from botocore.config import Config

    from opensage.server import start_in_thread
    from opensage.settings import Settings
    from tests.conftest import ACCOUNT, REGION
    from tests.integration.test_training_jobs import regression_csv

    def start():
        server = start_in_thread(Settings(data_dir=tmp_path / "data", port=0,
                                          account_id=ACCOUNT, region=REGION))
        def make(service):
            return boto3.client(service, endpoint_url=server.url, region_name=REGION,
                                aws_access_key_id="test", aws_secret_access_key="test",
                                config=Config(retries={"max_attempts": 1}))
        return server, make

    server, client = start()
    try:
        s3 = client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for channel, rows, seed in (("train", 300, 1), ("validation", 80, 2)):
            s3.put_object(Bucket=BUCKET, Key=f"data/{channel}/part-0.csv",
                          Body=regression_csv(rows, seed=seed)[0])
        sm = client("sagemaker")
        sm.create_hyper_parameter_tuning_job(**tuning_request("tune-restart", max_jobs=3,
                                                              parallel=1))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-restart")
            if job["ObjectiveStatusCounters"]["Succeeded"] >= 1:
                break
            time.sleep(0.05)
    finally:
        server.stop()
    assert job["HyperParameterTuningJobStatus"] == "InProgress"

    server, client = start()
    try:
        sm = client("sagemaker")
        job = wait_for_tuning(sm, "tune-restart")
        children = all_children(sm, "tune-restart")
        listed = sm.list_training_jobs()["TrainingJobSummaries"]
    finally:
        server.stop()
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    numbers = sorted(c["TrainingJobName"].split("-")[2] for c in children)
    assert numbers == ["001", "002", "003"]
    # Every trial ended, none twice. (The child running at the graceful stop may end Failed:
    # the local executor reports its killed process as a failure; kill -9 would not.)
    assert all(c["TrainingJobStatus"] in ("Completed", "Failed") for c in children)
    assert sum(c["TrainingJobStatus"] == "Completed" for c in children) >= 2
    assert sum(job["TrainingJobStatusCounters"].values()) == 3
    assert len(listed) == 3


def test_sdk_hyperparameter_tuner_fit_best_job_and_analytics(sdk_env, tmp_path):
    """The SageMaker SDK's HyperparameterTuner, unchanged, with no network beyond 127.0.0.1."""
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

    from opensage.sdk import fast_polling
    from tests.conftest import REGION
    from tests.integration.test_training_jobs import regression_csv

    session = sagemaker.Session()
    inputs = {}
    for channel, seed in (("train", 1), ("validation", 2)):
        (tmp_path / channel).mkdir()
        (tmp_path / channel / "data.csv").write_bytes(regression_csv(300, seed)[0])
        uri = session.upload_data(str(tmp_path / channel), key_prefix=f"tune/{channel}")
        inputs[channel] = TrainingInput(uri, content_type="text/csv")
    estimator = Estimator(image_uri=sagemaker.image_uris.retrieve("xgboost", REGION, "1.7-1"),
                          role=ROLE, instance_count=1, instance_type="ml.m5.large",
                          sagemaker_session=session,
                          hyperparameters={"objective": "reg:squarederror", "num_round": 8})
    tuner = HyperparameterTuner(
        estimator, objective_metric_name="validation:rmse", objective_type="Minimize",
        hyperparameter_ranges={"eta": ContinuousParameter(0.05, 0.5),
                               "max_depth": IntegerParameter(1, 4)},
        max_jobs=3, max_parallel_jobs=2, strategy="Bayesian")
    with fast_polling(factor=100):
        tuner.fit(inputs, wait=True)
    best = tuner.best_training_job()
    frame = tuner.analytics().dataframe()
    assert len(frame) == 3
    assert set(frame["TrainingJobStatus"]) == {"Completed"}
    assert frame.sort_values("FinalObjectiveValue").iloc[0]["TrainingJobName"] == best
    assert set(frame.columns) >= {"eta", "max_depth", "FinalObjectiveValue"}
    attached = HyperparameterTuner.attach(tuner.latest_tuning_job.name, sagemaker_session=session)
    assert attached.best_training_job() == best
    assert set(attached.hyperparameter_ranges()) == {"ContinuousParameterRanges",
                                                     "IntegerParameterRanges",
                                                     "CategoricalParameterRanges"}
    with fast_polling(factor=100):
        best_estimator = tuner.best_estimator()
    assert best_estimator.latest_training_job.name == best
    tuned = frame.set_index("TrainingJobName").loc[best]
    assert int(best_estimator.hyperparameters()["max_depth"]) == tuned["max_depth"]
