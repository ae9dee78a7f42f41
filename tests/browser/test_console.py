"""The console clicked through in Chromium: real jobs, a tuning job and an endpoint made
through boto3, then found, charted, sorted, compared, tailed and invoked from the pages."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS
from tests.integration.script_jobs import FIRST_BUILD_TIMEOUT, script_request, upload_code
from tests.integration.test_training_jobs import BUCKET, job_request, regression_csv, wait_for
from tests.integration.test_tuning import tuning_request, wait_for_tuning

CONSOLE = "/_console"
LL_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
AXE = Path(__file__).parent / "axe" / "axe.min.js"


@pytest.fixture(scope="module")
def world(aws: Any, fresh_server: str) -> dict[str, Any]:
    """Two XGBoost jobs, a linear-learner job, a failed job, a finished tuning job of four
    children, an endpoint and an experiment run: everything the pages show."""
    sm, s3 = aws("sagemaker"), aws("s3")
    s3.create_bucket(Bucket=BUCKET)
    train, _, _ = regression_csv(400, seed=1)
    validation, _, _ = regression_csv(100, seed=2)
    s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=train)
    s3.put_object(Bucket=BUCKET, Key="data/validation/part-0.csv", Body=validation)
    s3.put_object(Bucket=BUCKET, Key="data/records.jsonl",
                  Body=b'{"features": [1, 2]}\n{"features": [3, 4]}\n')
    sm.create_training_job(**job_request("xgb-fast", Tags=[{"Key": "team", "Value": "vision"}]))
    sm.create_training_job(**job_request("xgb-slow", HyperParameters={
        "objective": "reg:squarederror", "num_round": "20", "max_depth": "2", "eta": "0.1"}))
    sm.create_training_job(**job_request(
        "linear-one", AlgorithmSpecification={"TrainingImage": LL_IMAGE,
                                              "TrainingInputMode": "File"},
        HyperParameters={"predictor_type": "regressor", "feature_dim": "4", "epochs": "2",
                         "mini_batch_size": "50"}))
    broken = job_request("broken-job")
    broken["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = \
        f"s3://{BUCKET}/nothing-here/"
    sm.create_training_job(**broken)
    sm.create_hyper_parameter_tuning_job(**tuning_request("tune-board", max_jobs=4))
    jobs = {n: wait_for(sm, n, timeout=120) for n in ("xgb-fast", "xgb-slow", "linear-one",
                                                      "broken-job")}
    assert jobs["xgb-fast"]["TrainingJobStatus"] == "Completed", jobs["xgb-fast"]
    assert jobs["broken-job"]["TrainingJobStatus"] == "Failed", jobs["broken-job"]
    tuning = wait_for_tuning(sm, "tune-board")
    endpoint = _deploy_xgb(sm, jobs)
    sm.create_experiment(ExperimentName="churn", Description="Runs of the churn model")
    for i, lr in enumerate((0.1, 0.01)):
        run = f"churn-run-{i}"
        sm.create_trial_component(TrialComponentName=run, Parameters={
            "lr": {"NumberValue": lr}, "optimizer": {"StringValue": "adam"}},
            Status={"PrimaryStatus": "Completed"})
        sm.create_trial(TrialName=f"churn-trial-{i}", ExperimentName="churn")
        sm.associate_trial_component(TrialComponentName=run, TrialName=f"churn-trial-{i}")
        aws("sagemaker-metrics").batch_put_metrics(TrialComponentName=run, MetricData=[
            {"MetricName": "loss", "Timestamp": time.time(), "Step": step,
             "Value": 1.0 / (step + 1 + i)} for step in range(5)])
    return {"jobs": jobs, "tuning": tuning, "endpoint": endpoint, "url": fresh_server,
            "sm": sm}


def _deploy_xgb(sm: Any, jobs: dict[str, Any]) -> str:
    job = jobs["xgb-fast"]
    image = job["AlgorithmSpecification"]["TrainingImage"]
    sm.create_model(ModelName="xgb-fast-model", ExecutionRoleArn=job["RoleArn"],
                    PrimaryContainer={"Image": image,
                                      "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName="xgb-fast-config", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "xgb-fast-model",
         "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="xgb-live", EndpointConfigName="xgb-fast-config")
    deadline = time.monotonic() + 60
    while sm.describe_endpoint(EndpointName="xgb-live")["EndpointStatus"] == "Creating":
        assert time.monotonic() < deadline, "the endpoint did not come up"
        time.sleep(0.05)
    assert sm.describe_endpoint(EndpointName="xgb-live")["EndpointStatus"] == "InService"
    return "xgb-live"


def shot(page: Page, name: str) -> None:
    """The page as a PNG: the README's screenshots when OPENSAGE_SCREENSHOTS=1 (so a test run
    leaves the tracked files alone), else a throwaway file (the capture must still work)."""
    if os.environ.get("OPENSAGE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
    else:
        target = Path(tempfile.gettempdir()) / f"opensage-console-{os.getpid()}-{name}.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 0


def test_home_counts_resources_and_puts_failures_first(page: Page, world: dict[str, Any],
                                                       errors: list[str]) -> None:
    page.goto(world["url"] + CONSOLE + "/")
    failures = page.get_by_role("region", name="Recent failures")
    expect(failures).to_contain_text("broken-job")
    first = page.locator("main section").first
    expect(first).to_have_attribute("aria-labelledby", "failures-h")
    training = page.get_by_role("region", name=re.compile(r"^Training jobs"))
    # 4 jobs of our own and the tuning job's 4 children
    expect(training.locator(".count")).to_have_text("8")
    expect(page.get_by_role("region", name=re.compile(r"^Endpoints"))).to_contain_text("xgb-live")
    shot(page, "home")


def test_find_a_job_and_open_its_chart(page: Page, world: dict[str, Any],
                                       errors: list[str]) -> None:
    page.goto(world["url"] + CONSOLE + "/")
    page.get_by_role("navigation", name="Resources").get_by_role("link", name="Training").click()
    page.get_by_label("Name contains").fill("fast")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"name=fast"))
    rows = page.locator("table.rows tbody tr")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name="xgb-fast").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("xgb-fast")
    expect(page.locator(".status").first).to_have_text("Completed")
    charts = page.get_by_role("region", name="Metrics over time")
    chart = charts.get_by_role("img", name="validation:rmse")
    expect(chart.locator("svg path")).to_have_count(1)
    expect(page.get_by_role("region", name="Status timeline")).to_contain_text("Training")
    hps = page.get_by_role("region", name="Hyperparameters")
    expect(hps).to_contain_text("num_round")
    expect(page.get_by_role("region", name="Final metrics")).to_contain_text("validation:rmse")
    download = page.get_by_role("region", name="Artifacts").get_by_role("link", name="download")
    href = download.first.get_attribute("href")
    assert href and href.endswith("model.tar.gz")
    blob = page.request.get(world["url"] + href)  # the S3 facade answers the link
    assert blob.ok and blob.body()[:2] == b"\x1f\x8b"
    shot(page, "training-job")


def test_training_list_filters_on_image_tag_and_status(page: Page, world: dict[str, Any],
                                                       errors: list[str]) -> None:
    base = world["url"] + CONSOLE + "/training-jobs"
    page.goto(base + "?image=linear-learner")
    expect(page.locator("table.rows tbody tr")).to_have_count(1)
    expect(page.locator("table.rows tbody")).to_contain_text("linear-one")
    page.goto(base + "?tag=team%3Dvision")
    expect(page.locator("table.rows tbody tr")).to_have_count(1)
    expect(page.locator("table.rows tbody")).to_contain_text("xgb-fast")
    page.goto(base)
    page.get_by_label("Status").select_option("Failed")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.rows tbody tr")).to_have_count(1)
    expect(page.locator("table.rows tbody")).to_contain_text("broken-job")
    page.goto(base + "?sort=Name&order=Ascending")
    names = page.locator("table.rows tbody tr td:nth-child(2)").all_inner_texts()
    assert names == sorted(names) and len(names) == 8
    shot(page, "training-jobs")


def test_tuning_leaderboard_sorts_and_highlights_the_best(page: Page, world: dict[str, Any],
                                                          errors: list[str]) -> None:
    tuning = world["tuning"]
    best = tuning["BestTrainingJob"]["TrainingJobName"]
    page.goto(world["url"] + CONSOLE + "/tuning-jobs")
    page.get_by_role("link", name="tune-board").click()
    board = page.locator("table.leaderboard tbody tr")
    expect(board).to_have_count(4)
    expect(page.locator("tr.best")).to_contain_text(best)
    expect(board.first).to_contain_text(best)  # best first: sorted on the objective
    values = [float(v) for v in page.locator("table.leaderboard tbody td:nth-child(5)")
              .all_inner_texts()]
    assert values == sorted(values)  # Minimize: ascending is best first
    page.get_by_role("link", name="validation:rmse").click()
    expect(page).to_have_url(re.compile(r"order=worst"))
    values = [float(v) for v in page.locator("table.leaderboard tbody td:nth-child(5)")
              .all_inner_texts()]
    assert values == sorted(values, reverse=True)
    expect(board.last).to_contain_text(best)
    page.get_by_role("link", name="eta").click()
    etas = [float(v) for v in page.locator("table.leaderboard tbody td:nth-child(6)")
            .all_inner_texts()]
    assert etas == sorted(etas)
    objective = page.get_by_role("img", name="Objective by training job (with best so far)")
    expect(objective.locator("circle")).to_have_count(4)
    expect(objective.locator("path")).to_have_count(1)  # the best-so-far line
    page.get_by_label("Hyperparameter against the objective").select_option("max_depth")
    expect(page.locator("#scatter-plot circle")).to_have_count(4)
    shot(page, "tuning-leaderboard")


def test_compare_two_jobs_side_by_side(page: Page, world: dict[str, Any],
                                       errors: list[str]) -> None:
    page.goto(world["url"] + CONSOLE + "/training-jobs?name=xgb")
    page.get_by_label("Select xgb-fast to compare").check()
    page.get_by_label("Select xgb-slow to compare").check()
    page.get_by_role("button", name="Compare selected").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Compare 2 training jobs")
    table = page.locator("table.compare")
    expect(table.locator("tr.differs")).to_contain_text(["eta", "max_depth"])
    curve = page.get_by_role("img", name="validation:rmse")
    expect(curve.locator("svg path")).to_have_count(2)  # the two runs overlaid
    expect(curve.locator(".legend li")).to_have_count(2)
    shot(page, "compare")


def test_invoke_an_endpoint_from_its_page(page: Page, world: dict[str, Any],
                                          errors: list[str]) -> None:
    page.goto(world["url"] + CONSOLE + "/endpoints/" + world["endpoint"])
    expect(page.get_by_role("region", name="Variants")).to_contain_text("AllTraffic")
    page.get_by_label("Content type").select_option("text/csv")
    page.get_by_label("Request body").fill("0.5,1.0,-0.3,0.2")
    page.get_by_role("button", name="Invoke endpoint").click()
    expect(page.locator(".try-status")).to_contain_text("200 OK")
    output = page.get_by_label("Response body")
    expect(output).to_have_text(re.compile(r"^-?\d+(\.\d+)?"))
    shot(page, "endpoint")


def test_clone_a_job_as_new_with_changed_hyperparameters(page: Page, world: dict[str, Any],
                                                         errors: list[str]) -> None:
    page.goto(world["url"] + CONSOLE + "/training-jobs/xgb-slow")
    page.get_by_role("button", name="Clone as new job").click()
    page.get_by_label("New job name").fill("xgb-slow-again")
    page.get_by_label("Hyperparameters (JSON)").fill(
        '{"objective": "reg:squarederror", "num_round": "5", "max_depth": "2", "eta": "0.2"}')
    page.get_by_role("button", name="Create training job").click()
    expect(page).to_have_url(re.compile(r"/training-jobs/xgb-slow-again$"))
    expect(page.locator(".status").first).to_have_text("Completed", timeout=60_000)
    job = wait_for(world["sm"], "xgb-slow-again")
    assert job["HyperParameters"]["eta"] == "0.2"


WAITING_SCRIPT = """
import os, sys, time
marker = os.environ["SM_HP_MARKER"]
print("started, waiting for", marker, flush=True)
while not os.path.exists(marker):
    time.sleep(0.05)
print("marker seen", flush=True)
while True:
    time.sleep(0.05)
"""


def test_tail_a_running_jobs_log_then_stop_it(page: Page, world: dict[str, Any], aws: Any,
                                              tmp_path: Path, errors: list[str]) -> None:
    sm, s3 = aws("sagemaker"), aws("s3")
    marker = tmp_path / "go"
    submit = upload_code(s3, "tail-me", {"train.py": WAITING_SCRIPT})
    sm.create_training_job(**script_request("tail-me", submit,
                                            hyperparameters={"marker": str(marker)}))
    page.goto(world["url"] + CONSOLE + "/training-jobs/tail-me")
    log = page.locator("pre.log").first
    expect(log).to_contain_text("started, waiting for", timeout=FIRST_BUILD_TIMEOUT * 1000)
    assert "marker seen" not in log.inner_text()
    marker.touch()
    expect(log).to_contain_text("marker seen", timeout=60_000)  # appended without a reload
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop training job").click()
    expect(page.locator(".head .status")).to_have_text("Stopped", timeout=60_000)
    assert sm.describe_training_job(TrainingJobName="tail-me")["TrainingJobStatus"] == "Stopped"


MAIN_PAGES = {
    "home": "/",
    "training-jobs": "/training-jobs",
    "training-job": "/training-jobs/xgb-fast",
    "tuning-leaderboard": "/tuning-jobs/tune-board",
    "compare": "/compare?job=xgb-fast&job=xgb-slow",
    "endpoint": "/endpoints/xgb-live",
    "experiment": "/experiments/churn",
    "run": "/trial-components/churn-run-0",
    "model": "/models/xgb-fast-model",
    "objects": "/objects/training-bucket?prefix=data%2F",
    "object-preview": "/objects/training-bucket/preview?key=data%2Ftrain%2Fpart-0.csv",
    "jsonl-preview": "/objects/training-bucket/preview?key=data%2Frecords.jsonl",
}


@pytest.mark.parametrize("name", list(MAIN_PAGES))
def test_pages_pass_axe_without_serious_violations(page: Page, world: dict[str, Any],
                                                   errors: list[str], name: str) -> None:
    page.goto(world["url"] + CONSOLE + MAIN_PAGES[name])
    expect(page.locator("main h1")).to_be_visible()
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    if name not in ("home", "training-job", "training-jobs", "tuning-leaderboard", "compare",
                    "endpoint"):
        shot(page, name)


def test_phone_width_layout_keeps_the_leaderboard_usable(page: Page, world: dict[str, Any],
                                                         errors: list[str]) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(world["url"] + CONSOLE + "/tuning-jobs/tune-board")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # wide tables scroll inside their own box, not the page
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    shot(page, "phone-leaderboard")
