"""Pipeline steps that run real processing jobs, through boto3: a retry policy that runs a
failed step again, RetryPipelineExecution after a fix (the succeeded steps keep their jobs),
stop (the running job is stopped), and a server restart mid-execution (the execution goes
on, the step's job was created once)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

from tests.api.pipeline_helpers import ROLE, definition, steps_of, wait_for, wait_for_step
from tests.integration.script_jobs import FIRST_BUILD_TIMEOUT
from tests.integration.test_processing import put_code, request
from tests.integration.test_training_jobs import BUCKET


def processing_step(name: str, code_uri: str, *, depends_on: list[str] | None = None,
                    **extra: Any) -> dict[str, Any]:
    arguments = request("unused", code_uri)
    del arguments["ProcessingJobName"]  # the SDK drops it: the service names the job
    step: dict[str, Any] = {"Name": name, "Type": "Processing", "Arguments": arguments,
                            **extra}
    if depends_on:
        step["DependsOn"] = depends_on
    return step


def _jobs(sm: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = sm.list_processing_jobs(MaxResults=100)[
        "ProcessingJobSummaries"]
    return found


def test_a_retry_policy_runs_a_failed_step_again(sm: Any, s3: Any, tmp_path: Path):
    marker = tmp_path / "failed-once"
    code = put_code(s3, "flaky", f"""
        import pathlib
        marker = pathlib.Path({str(marker)!r})
        if not marker.exists():
            marker.touch()
            pathlib.Path("/opt/ml/output/failure").write_text(
                "InternalServerError: a transient fault (simulated)")
            raise SystemExit(1)
    """)
    policy = {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 1,
              "BackoffRate": 1.0, "MaxAttempts": 2}
    sm.create_pipeline(PipelineName="flaky", RoleArn=ROLE, PipelineDefinition=definition(
        [processing_step("Flaky", code, RetryPolicies=[policy])]))
    arn = sm.start_pipeline_execution(PipelineName="flaky")["PipelineExecutionArn"]
    ended = wait_for(sm, arn, timeout=FIRST_BUILD_TIMEOUT)
    assert ended["PipelineExecutionStatus"] == "Succeeded", steps_of(sm, arn)
    step = steps_of(sm, arn)["Flaky"]
    assert step["AttemptCount"] == 2
    statuses = {j["ProcessingJobName"]: j["ProcessingJobStatus"] for j in _jobs(sm)}
    assert sorted(statuses.values()) == ["Completed", "Failed"]
    assert statuses[step["Metadata"]["ProcessingJob"]["Arn"].split("/")[-1]] == "Completed"


def test_retry_pipeline_execution_reruns_the_failed_step_only(sm: Any, s3: Any,
                                                              tmp_path: Path):
    fixed = tmp_path / "fixed"
    first = put_code(s3, "first", "print('first step')")
    second = put_code(s3, "second", f"""
        import pathlib, sys
        if not pathlib.Path({str(fixed)!r}).exists():
            sys.exit("the input is broken")
    """)
    sm.create_pipeline(PipelineName="fixme", RoleArn=ROLE, PipelineDefinition=definition(
        [processing_step("First", first),
         processing_step("Second", second, depends_on=["First"])]))
    arn = sm.start_pipeline_execution(PipelineName="fixme")["PipelineExecutionArn"]
    ended = wait_for(sm, arn, timeout=FIRST_BUILD_TIMEOUT)
    assert ended["PipelineExecutionStatus"] == "Failed"
    before = steps_of(sm, arn)
    assert "the input is broken" in before["Second"]["FailureReason"]
    fixed.touch()
    sm.retry_pipeline_execution(PipelineExecutionArn=arn)
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    after = steps_of(sm, arn)
    assert after["First"]["Metadata"] == before["First"]["Metadata"]  # kept, not re-run
    assert after["Second"]["Metadata"] != before["Second"]["Metadata"]
    assert sorted(j["ProcessingJobStatus"] for j in _jobs(sm)) == [
        "Completed", "Completed", "Failed"]


def test_stop_stops_the_running_job(sm: Any, s3: Any):
    code = put_code(s3, "forever", "import time\nwhile True:\n    time.sleep(1)\n")
    after = {"Name": "After", "Type": "Fail", "Arguments": {"ErrorMessage": "never"},
             "DependsOn": ["Forever"]}
    sm.create_pipeline(PipelineName="stopme", RoleArn=ROLE, PipelineDefinition=definition(
        [processing_step("Forever", code), after]))
    arn = sm.start_pipeline_execution(PipelineName="stopme")["PipelineExecutionArn"]
    step = wait_for_step(sm, arn, "Forever", {"Executing"})
    job = step["Metadata"]["ProcessingJob"]["Arn"].split("/")[-1]
    sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert wait_for(sm, arn, timeout=FIRST_BUILD_TIMEOUT)["PipelineExecutionStatus"] == \
        "Stopped"
    assert sm.describe_processing_job(ProcessingJobName=job)["ProcessingJobStatus"] == \
        "Stopped"
    steps = steps_of(sm, arn)
    assert steps["Forever"]["StepStatus"] == "Stopped" and "After" not in steps


def test_an_execution_goes_on_after_a_server_restart(tmp_path: Path):
    """The first server dies while a step's job runs; the next one on the same data
    directory carries the execution on: the job runs again under the same name (created
    once), and the step after it runs."""
    import io

    from opensage.services.wiring import build_services
    from opensage.settings import Settings
    from opensage.testing import frameworks_dir_for_tests, wheelhouse_for_tests

    marker = tmp_path / "first-run"
    settings = Settings(data_dir=tmp_path / "data", port=0,
                        frameworks_dir=frameworks_dir_for_tests(),
                        wheelhouse=wheelhouse_for_tests())
    code = textwrap.dedent(f"""
        import pathlib, time
        marker = pathlib.Path({str(marker)!r})
        if not marker.exists():
            marker.touch()
            while True:  # the first run never ends: the server dies under it
                time.sleep(1)
    """)
    uri = f"s3://{BUCKET}/restart/code/script.py"
    text = definition([processing_step("Slow", uri),
                       {"Name": "Check", "Type": "Condition", "DependsOn": ["Slow"],
                        "Arguments": {"Conditions": [{
                            "Type": "Equals", "RightValue": "Completed", "LeftValue": {
                                "Get": "Steps.Slow.ProcessingJobStatus"}}],
                            "IfSteps": [], "ElseSteps": []}}])
    first = build_services(settings)
    first.start()
    try:
        first.context.objects.create_bucket(BUCKET)
        first.context.objects.put_object(BUCKET, "restart/code/script.py",
                                         io.BytesIO(code.encode()))
        first.pipelines.create({"PipelineName": "restart", "RoleArn": ROLE,
                                "PipelineDefinition": text})
        arn = first.pipelines.start_execution({"PipelineName": "restart"})
        deadline = time.monotonic() + FIRST_BUILD_TIMEOUT
        while not marker.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        first.close()
    second = build_services(settings)
    try:
        assert second.pipelines.describe_execution(arn)["PipelineExecutionStatus"] == \
            "Executing"
        second.start()
        deadline = time.monotonic() + FIRST_BUILD_TIMEOUT
        while second.pipelines.describe_execution(arn)["PipelineExecutionStatus"] == \
                "Executing":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert second.pipelines.describe_execution(arn)["PipelineExecutionStatus"] == \
            "Succeeded"
        steps = {s["StepName"]: s for s in second.pipelines.list_steps(
            {"PipelineExecutionArn": arn})["PipelineExecutionSteps"]}
        assert steps["Check"]["Metadata"] == {"Condition": {"Outcome": "True"}}
        jobs = list(second.context.resources.scan("processing-job"))
        assert [j.arn for j in jobs] == [steps["Slow"]["Metadata"]["ProcessingJob"]["Arn"]]
        assert [t[:2] for t in second.context.resources.transitions(
            "processing-job", jobs[0].name)] == [("InProgress", "Completed")]
    finally:
        second.close()
