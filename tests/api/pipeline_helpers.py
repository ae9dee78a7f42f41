"""Helpers for pipeline tests: definitions built as the SDK emits them, and waiting for an
execution to end (polled, bounded)."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import ACCOUNT

ROLE = f"arn:aws:iam::{ACCOUNT}:role/opensage"
TERMINAL = {"Succeeded", "Failed", "Stopped"}


def definition(steps: list[dict[str, Any]], parameters: list[dict[str, Any]] | None = None
               ) -> str:
    return json.dumps({"Version": "2020-12-01", "Metadata": {},
                       "Parameters": parameters or [],
                       "PipelineExperimentConfig": {
                           "ExperimentName": {"Get": "Execution.PipelineName"},
                           "TrialName": {"Get": "Execution.PipelineExecutionId"}},
                       "Steps": steps})


def wait_for(sm: Any, arn: str, statuses: set[str] = TERMINAL,
             timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        if described["PipelineExecutionStatus"] in statuses:
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"execution still {described['PipelineExecutionStatus']}")
        time.sleep(0.05)


def steps_of(sm: Any, arn: str) -> dict[str, dict[str, Any]]:
    return {s["StepName"]: s for s in sm.list_pipeline_execution_steps(
        PipelineExecutionArn=arn)["PipelineExecutionSteps"]}


def wait_for_step(sm: Any, arn: str, step: str, statuses: set[str],
                  timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = steps_of(sm, arn).get(step)
        if found is not None and found["StepStatus"] in statuses:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"step {step} is {found and found['StepStatus']}")
        time.sleep(0.05)
