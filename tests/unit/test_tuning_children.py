"""A tuning child's request carries whether its tuner watches its intermediate metrics (early
stopping Auto, Hyperband): the runner then reports its metric lines as soon as they are read
instead of batching them, so a rung or the median rule acts rounds earlier."""

from __future__ import annotations

import pytest

from opensage.services.training.definition import (
    Prepared,
    describe_body,
    internal_state,
    training_spec,
)
from opensage.services.tuning.validation import child_request

DEFINITION = {
    "StaticHyperParameters": {"num_round": "10"},
    "AlgorithmSpecification": {"TrainingImage": "sagemaker-xgboost:1.7-1",
                               "TrainingInputMode": "File"},
    "RoleArn": "arn:aws:iam::000000000000:role/r",
    "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                       "VolumeSizeInGB": 5},
    "StoppingCondition": {"MaxRuntimeInSeconds": 60},
}


@pytest.mark.parametrize("watched", [True, False])
def test_a_watched_childs_spec_asks_for_prompt_metrics(watched):
    request = child_request({"TrainingJobDefinition": DEFINITION}, "tune-001-abc", {"eta": "0.1"},
                            "validation:rmse", tuning_arn="arn:tuning", watched=watched)
    prepared = Prepared("opensage.algorithms.xgboost", None, [])
    body = describe_body(request, "arn:job", prepared, 0.0)
    spec = training_spec(body, internal_state(request, prepared), region="us-east-1")
    assert "OpensageRunner" not in body  # the runner's state is no part of the document
    assert spec.prompt_metrics is watched
    assert spec.hyperparameters["_tuning_objective_metric"] == "validation:rmse"
