"""Every operation of the SageMaker and Logs models gets a deliberate answer, never a 500."""

from __future__ import annotations

import botocore.session
import pytest

from tests.api.test_bad_input import call

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
# Operations the model marks nothing required for, though they need one of several members
# (AWS refuses an empty request with a ValidationException).
ONE_OF_REQUIRED = {"DeleteArtifact", "CreateModelPackage",  # the latter: "Missing ARN."
                   "ListPipelineExecutionSteps"}  # PipelineExecutionArn


def test_every_sagemaker_operation_answers_deliberately(endpoint):
    seen: dict[str, int] = {}
    for operation in SAGEMAKER.operation_names:
        status, answer = call(endpoint, operation, {})
        required = SAGEMAKER.operation_model(operation).input_shape
        needs_input = bool(required is not None and required.required_members)
        if status == 200:
            assert not needs_input, operation
        elif needs_input or operation in ONE_OF_REQUIRED:
            if operation in ONE_OF_REQUIRED:
                assert (status, answer["__type"]) == (400, "ValidationException"), operation
                continue
            assert (status, answer["__type"]) == (400, "ValidationException"), operation
            assert "Member must not be null" in answer["message"], operation
        else:
            assert (status, answer["__type"]) == (501, "NotImplementedException"), operation
            assert operation in answer["message"]
        seen[answer.get("__type", "ok")] = seen.get(answer.get("__type", "ok"), 0) + 1
    assert seen.get("InternalFailure") is None
    assert len(SAGEMAKER.operation_names) > 350


@pytest.mark.parametrize("target", ["SageMaker.", "SageMaker", "Sagemaker.ListModels"])
def test_malformed_targets(endpoint, target):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(endpoint + "/", data=b"{}", method="POST", headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/sagemaker/aws4_request"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request)
    assert exc.value.code == 400
    assert json.loads(exc.value.read())["__type"] == "UnknownOperationException"
