"""What a Ray host or model instance asks the cluster for, and how a framework model's
program moves to a node (its code found there, its environment's paths swapped)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opensage.runner.environments import framework_for_image
from opensage.runner.workspace import ray_resources
from opensage.serving.artifacts import ArtifactError, code_directory
from opensage.serving.process import WorkerProgram

GIB = 1024**3
PHYSICAL = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


@pytest.mark.parametrize(("instance_type", "cpus", "gib", "gpus"), [
    ("ml.m5.large", 2, 8, 0),
    ("ml.c5.xlarge", 4, 8, 0),
    ("ml.r5.2xlarge", 8, 64, 0),
    ("ml.p3.8xlarge", 32, 256, 4),
    ("ml.g5.xlarge", 4, 16, 1),
])
def test_an_instance_type_asks_for_its_cpus_memory_and_gpus(
        instance_type: str, cpus: int, gib: int, gpus: int) -> None:
    wanted = ray_resources(instance_type)
    assert wanted["CPU"] == cpus
    assert wanted["memory"] == min(gib * GIB, PHYSICAL)  # capped at the machine's memory
    assert wanted.get("GPU", 0) == gpus
    assert ("GPU" in wanted) == bool(gpus)  # CPU families ask for no GPU at all


def test_a_node_refuses_code_in_a_directory_of_the_servers(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    env = {"SAGEMAKER_SUBMIT_DIRECTORY": f"file://{code}"}
    limits = None  # nothing is unpacked for a file:// directory
    assert code_directory(None, tmp_path, tmp_path, env, limits) == code
    with pytest.raises(ArtifactError, match="which a Ray node does not see"):
        code_directory(None, tmp_path, tmp_path, env, limits,
                       local_code=False)


def test_code_under_opt_ml_model_is_found_in_the_nodes_copy_of_the_model(
        tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "code").mkdir(parents=True)
    env = {"SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    found = code_directory(None, model, tmp_path, env, None,
                           local_code=False)
    assert found == (model / "code").resolve()
    escaping = {"SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/../../etc"}
    assert code_directory(None, model, tmp_path, escaping, None,
                          local_code=False) is None


def test_a_framework_program_on_a_node_keeps_its_command_with_the_nodes_paths() -> None:
    framework = framework_for_image(SKLEARN, script_mode=True)
    here = WorkerProgram.framework("sklearn", "/srv/frameworks/sklearn-1.2-1/bin/python",
                                   "/srv/data/code", {"AWS_ENDPOINT_URL": "http://127.0.0.1:1",
                                                      "AWS_REGION": "us-east-1"},
                                   spec=framework)
    assert here.in_environment and here.environment == framework
    there = here.on_node("/node/frameworks/sklearn-1.2-1/bin/python",
                         code_dir="/tmp/i-1/model/code",
                         env={**dict(here.env), "AWS_ENDPOINT_URL": "http://10.0.0.1:8484"})
    assert there.command()[1:] == [*here.command()[1:3], "sklearn", "--code-dir",
                                   "/tmp/i-1/model/code"]
    assert there.command()[0] == "/node/frameworks/sklearn-1.2-1/bin/python"
    assert dict(there.env) == {"AWS_ENDPOINT_URL": "http://10.0.0.1:8484",
                               "AWS_REGION": "us-east-1"}
    assert there.environment == framework and there.module == "sklearn"
    assert not WorkerProgram.builtin("opensage.algorithms.xgboost").in_environment
    assert not WorkerProgram.own_image("mine:1").in_environment
