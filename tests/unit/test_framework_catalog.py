"""Image URIs the SageMaker SDK builds → the script-mode environment that runs them."""

from __future__ import annotations

import pytest

from opensage.errors import ValidationException
from opensage.runner.environments import UnsupportedFramework, framework_for_image, resolve

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
PYTORCH = "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.1-cpu-py310"
TENSORFLOW = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.13-cpu"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def test_sklearn_image_maps_to_its_locked_environment() -> None:
    fw = framework_for_image(SKLEARN, script_mode=True)
    assert fw is not None
    assert (fw.name, fw.version, fw.key) == ("sklearn", "1.2-1", "sklearn-1.2-1")
    assert "scikit-learn==1.2.2" in fw.packages
    assert all("==" in line for line in fw.packages)
    assert any(line.startswith("numpy==1.") for line in fw.packages)


def test_pytorch_training_and_inference_share_one_cpu_environment() -> None:
    training = framework_for_image(PYTORCH, script_mode=True)
    inference = framework_for_image(
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:"
        "2.1.0-gpu-py310-cu118-ubuntu20.04-sagemaker", script_mode=True)
    assert training is not None and inference is not None
    assert (training.name, training.version) == ("pytorch", "2.1")
    assert inference.version == "2.1.0"
    assert training.key == inference.key == "pytorch-cpu"
    assert training.from_wheelhouse == ("torch",)
    assert "torch" in training.packages  # pinned at build time to the wheelhouse's CPU file


def test_tensorflow_versions_map_to_the_nearest_installable() -> None:
    fw = framework_for_image(TENSORFLOW, script_mode=True)
    assert fw is not None
    assert (fw.name, fw.version, fw.key) == ("tensorflow", "2.13", "tensorflow-2.13")
    assert "tensorflow-cpu==2.13.1" in fw.packages
    assert resolve("tensorflow", "2.6.3").key == "tensorflow-2.13"
    assert resolve("tensorflow", "2.19.0").key == "tensorflow-2.18"
    with pytest.raises(UnsupportedFramework):
        resolve("tensorflow", "1.15.5")


def test_xgboost_is_a_framework_only_in_script_mode() -> None:
    assert framework_for_image(XGBOOST, script_mode=False) is None  # the built-in algorithm
    fw = framework_for_image(XGBOOST, script_mode=True)
    assert fw is not None
    assert (fw.name, fw.version, fw.key) == ("xgboost", "1.7-1", "xgboost-1.7-1")
    assert "xgboost==1.7.6" in fw.packages


def test_huggingface_adds_the_tags_transformers_to_the_pytorch_environment() -> None:
    fw = framework_for_image(
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:"
        "2.5.1-transformers4.49.0-gpu-py311-cu124-ubuntu22.04", script_mode=True)
    assert fw is not None
    assert fw.name == "huggingface" and "transformers==4.49.0" in fw.packages
    assert fw.from_wheelhouse == ("torch",)


@pytest.mark.parametrize("uri", [
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/mxnet-training:1.9.0-cpu-py38",
    "520713654638.dkr.ecr.us-east-1.amazonaws.com/sagemaker-chainer:5.0.0-cpu-py3",
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.23-1-cpu-py3",
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.0-1-cpu-py3",
])
def test_frameworks_without_wheels_are_refused_naming_what_is_supported(uri: str) -> None:
    with pytest.raises(UnsupportedFramework) as caught:
        framework_for_image(uri, script_mode=True)
    assert isinstance(caught.value, ValidationException)
    assert caught.value.code == "ValidationException"
    assert "sklearn 1.2-1" in caught.value.message and "pytorch" in caught.value.message


@pytest.mark.parametrize("uri", [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own-image:latest",
    "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
])
def test_other_images_are_no_framework(uri: str) -> None:
    assert framework_for_image(uri, script_mode=True) is None
