"""The sagemaker-training toolkit's rules, checked against what the toolkit itself produced
(the verified example in shared/reference/script-mode.md §2.3-2.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensage.errors import ValidationException
from opensage.runner.toolkit import script
from opensage.runner.toolkit.contract import (
    UserEntry,
    container_env,
    resource_config,
    to_cmd_args,
    user_hyperparameters,
)
from opensage.runner.workspace import Workspace

HPS = {"epochs": "10", "flag": "true", "layers": "[64, 32]", "lr": "0.01",
       "model-name": '"resnet"', "opts": '{"a":1,"b":"x"}', "x": "3", "plain": "hello",
       "sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://b/k.tar.gz"',
       "sagemaker_torch_distributed_enabled": "true", "_tuning_objective_metric": '"loss"'}


def test_arguments_as_the_toolkit_renders_them():
    assert to_cmd_args(user_hyperparameters(HPS)) == [
        "--epochs", "10", "--flag", "True", "--layers", "[64, 32]", "--lr", "0.01",
        "--model-name", "resnet", "--opts", "a=1,b=x", "--plain", "hello", "-x", "3"]


def test_environment_of_a_script_host(tmp_path: Path):
    ws = Workspace(tmp_path)
    env = container_env(
        ws, job_name="j", job_arn="arn:j", region="us-east-1", hyperparameters=HPS,
        input_data_config={"training": {"TrainingInputMode": "File"}},
        resource=resource_config("ml.m5.large", 2, "algo-2"), num_cpus=2,
        user_env={"MINE": "1"},
        entry=UserEntry("s3://b/k.tar.gz", "train.py", "pkg.training:main"))
    assert env["SM_HP_FLAG"] == "true" and env["SM_HP_LAYERS"] == "[64,32]"
    assert env["SM_HP_MODEL-NAME"] == "resnet"
    assert "SM_HP_SAGEMAKER_PROGRAM" not in env
    assert json.loads(env["SM_HPS"])["opts"] == {"a": 1, "b": "x"}
    assert "sagemaker_program" not in json.loads(env["SM_HPS"])
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {
        "sagemaker_torch_distributed_enabled": True}
    assert env["SM_MODULE_NAME"] == "train" and env["SM_USER_ENTRY_POINT"] == "train.py"
    assert env["SM_MODULE_DIR"] == "s3://b/k.tar.gz"
    assert env["SM_FRAMEWORK_MODULE"] == "pkg.training:main"
    assert env["SM_HOSTS"] == '["algo-1","algo-2"]' and env["SM_CURRENT_HOST"] == "algo-2"
    assert env["SM_CHANNEL_TRAINING"] == str(tmp_path / "input" / "data" / "training")
    assert json.loads(env["SM_USER_ARGS"])[:2] == ["--epochs", "10"]
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["is_master"] is False and training_env["master_hostname"] == "algo-1"
    assert training_env["job_name"] == "j" and training_env["log_level"] == 20
    assert env["SM_LOG_LEVEL"] == "20" and env["MINE"] == "1"


def test_script_request_read_from_sdk_hyperparameters():
    request = script.read_request(HPS)
    assert (request.program, request.submit_directory, request.launcher) == (
        "train.py", "s3://b/k.tar.gz", "torchrun")
    with pytest.raises(ValidationException, match="missing: sagemaker_submit_directory"):
        script.read_request({"sagemaker_program": '"train.py"'})
    with pytest.raises(ValidationException, match="MPI"):
        script.read_request({**HPS, "sagemaker_mpi_enabled": "true"})
    with pytest.raises(ValidationException, match="relative"):
        script.read_request({**HPS, "sagemaker_program": '"../x.py"'})


def test_failure_reason_names_the_traceback_last_line():
    output = ["epoch 1", "Traceback (most recent call last):",
              '  File "train.py", line 3, in <module>', "    raise ValueError('bad')",
              "ValueError: bad input", "some trailing noise?"]
    reason = script.failure_reason(1, ["/env/bin/python", "train.py", "--a", "1 2"], output)
    assert reason == ('AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n'
                      'ErrorMessage "ValueError: bad input"\n'
                      "Command \"/env/bin/python train.py --a '1 2'\"")
    assert script.error_message(["just a line", "last line"]) == "last line"
