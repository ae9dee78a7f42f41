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
    aws_environment,
    container_env,
    resource_config,
    to_cmd_args,
    user_hyperparameters,
    without_aws,
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


def test_aws_defaults_reach_the_job_under_its_own_environment(tmp_path: Path):
    aws = aws_environment("http://127.0.0.1:9999", "eu-west-1")
    env = {**without_aws({"AWS_PROFILE": "prod", "AWS_ENDPOINT_URL_S3": "http://elsewhere",
                          "HOME": "/home/u"}),
           **container_env(Workspace(tmp_path), job_name="j", job_arn="arn:j",
                           region="eu-west-1", hyperparameters={},
                           input_data_config={}, resource=resource_config("ml.m5.large", 1),
                           num_cpus=1, user_env={"AWS_DEFAULT_REGION": "us-west-2"}, aws=aws)}
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9999"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_DEFAULT_REGION"] == "us-west-2"  # the job's Environment wins
    # the server's own AWS configuration does not reach the job; the rest does
    assert "AWS_PROFILE" not in env and "AWS_ENDPOINT_URL_S3" not in env
    assert env["HOME"] == "/home/u"


def test_local_url_answers_a_wildcard_bind_on_loopback():
    from opensage.settings import Settings

    assert Settings(host="0.0.0.0", port=8484).local_url == "http://127.0.0.1:8484"
    assert Settings(host="::", port=1).local_url == "http://[::1]:1"
    assert Settings(host="10.1.2.3", port=2).local_url == "http://10.1.2.3:2"


def _script_mode(image: str) -> script.ScriptMode:
    from opensage.runner.environments import framework_for_image

    framework = framework_for_image(image, script_mode=True)
    assert framework is not None
    return script.ScriptMode(framework, script.ScriptRequest("train.py", "s3://b/k", None))


TF = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.16.1-cpu-py310"
SK = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def test_tensorflow_toolkit_gives_a_tuning_child_its_own_model_dir():
    tf = _script_mode(TF)
    plain = {"model_dir": '"s3://b/out/job/model"', "epochs": "2"}
    assert tf.toolkit_hyperparameters(plain, "job") == plain  # passed to the script as is
    tuned = {**plain, "_tuning_objective_metric": '"loss"'}
    assert user_hyperparameters(tf.toolkit_hyperparameters(tuned, "child-001"))[
        "model_dir"] == "s3://b/out/job/model/child-001/model"
    local = {**tuned, "model_dir": '"/opt/ml/model"'}
    assert tf.toolkit_hyperparameters(local, "child-001") == local
    assert _script_mode(SK).toolkit_hyperparameters(tuned, "child-001") == tuned
    assert tf.toolkit_environment("eu-west-1") == {"S3_REGION": "eu-west-1",
                                                   "TF_CPP_MIN_LOG_LEVEL": "1"}
    assert _script_mode(SK).toolkit_environment("eu-west-1") == {}
