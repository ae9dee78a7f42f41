"""Each protocol family's error serialiser, read back by botocore's own parser for it."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser

from opensage.api.error_encoding import ServiceErrors
from opensage.errors import AwsError, InternalFailure, ResourceNotFound, ValidationException

SESSION = botocore.session.get_session()
# Every service opensage serves, with the protocol its front speaks (None: the model's own).
SERVED = [("sagemaker", None), ("logs", None), ("application-autoscaling", None),
          ("cloudwatch", None), ("cloudwatch", "json"), ("sts", None), ("iam", None),
          ("s3", None), ("sagemaker-runtime", None)]


def _parsed(service: str, protocol: str | None, err: AwsError) -> tuple[int, dict[str, str]]:
    model = SESSION.get_service_model(service)
    answer = ServiceErrors(model, protocol)(err, "req-1", "/bucket/key")
    operation = model.operation_model(model.operation_names[0])
    parsed = create_parser(protocol or model.metadata["protocol"]).parse(
        {"status_code": answer.status, "headers": HeadersDict(answer.headers),
         "body": answer.body}, operation.output_shape)
    return answer.status, parsed["Error"]


@pytest.mark.parametrize(("service", "protocol"), SERVED)
def test_botocore_reads_the_code_and_message_back(service: str, protocol: str | None) -> None:
    status, error = _parsed(service, protocol, ResourceNotFound("no such thing"))
    assert (status, error["Code"], error["Message"]) == (400, "ResourceNotFound",
                                                         "no such thing")
    status, error = _parsed(service, protocol, InternalFailure("broken"))
    assert (status, error["Code"]) == (500, "InternalFailure")


@pytest.mark.parametrize("service", ["sts", "iam"])
def test_query_services_call_a_failed_check_validation_error(service: str) -> None:
    _, error = _parsed(service, None, ValidationException("bad"))
    assert (error["Code"], error["Type"]) == ("ValidationError", "Sender")


@pytest.mark.parametrize("protocol", [None, "json"])
def test_query_compatible_services_say_the_query_code(protocol: str | None) -> None:
    _, error = _parsed("cloudwatch", protocol, InternalFailure("broken"))
    assert (error["QueryErrorCode"], error["Type"]) == ("InternalFailure", "Receiver")


def test_rest_xml_carries_fields_and_resource_and_drops_the_body_for_head() -> None:
    _, error = _parsed("s3", None, AwsError("gone", code="NoSuchBucket", BucketName="b"))
    assert (error["BucketName"], error["Resource"]) == ("b", "/bucket/key")
    answer = ServiceErrors(SESSION.get_service_model("s3"))(AwsError("gone"), "req-1")
    headless = answer.without_body()
    assert (headless.status, headless.body, "content-type" in headless.headers) == (
        answer.status, b"", False)


def test_model_error_keeps_its_integer_status_and_capitalised_message() -> None:
    model = SESSION.get_service_model("sagemaker-runtime")
    err = AwsError("model said no", code="ModelError", status=424)
    err.fields.update(OriginalStatusCode=400, OriginalMessage="no")
    _, error = _parsed("sagemaker-runtime", None, err)
    assert error["Code"] == "ModelError"
    answer = ServiceErrors(model)(err, "req-1")
    assert b'"OriginalStatusCode": 400' in answer.body and b'"Message": "model said no"' in (
        answer.body)
