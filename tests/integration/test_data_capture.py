"""Endpoint data capture through boto3: sampled requests and responses land as JSON lines under
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/`` with AWS's record format."""

from __future__ import annotations

import base64
import json
import re
import time

from opensage.serving.capture import flush_all
from tests.integration.test_endpoints import FAST, csv_rows, make_model
from tests.integration.test_training_jobs import BUCKET, ROLE, XGB_IMAGE


def _endpoint(sm, s3, name: str, artifact: bytes, capture: dict) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=artifact)
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/{name}/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1}],
        DataCaptureConfig=capture)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def _records(s3, bucket: str, prefix: str) -> tuple[list[str], list[dict]]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
            .get("Contents", [])]
    lines = []
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        lines += [json.loads(line) for line in body.splitlines() if line]
    return keys, lines


def test_capture_writes_inputs_and_outputs_in_aws_layout(sm, s3, client):
    s3.create_bucket(Bucket="capture-bucket")
    artifact, _, rows = make_model()
    _endpoint(sm, s3, "cap-ep", artifact, {
        "EnableCapture": True, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://capture-bucket/dc/",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"],
                                     "JsonContentTypes": ["application/json"]}})
    _endpoint(sm, s3, "cap-nobucket", artifact, {
        "EnableCapture": True, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://no-such-capture-bucket/x",
        "CaptureOptions": [{"CaptureMode": "Input"}]})
    for name in ("cap-ep", "cap-nobucket"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
    assert sm.describe_endpoint(EndpointName="cap-ep")["DataCaptureConfig"][
        "CaptureStatus"] == "Started"

    runtime = client("sagemaker-runtime")
    payload = csv_rows(rows[:2])
    first = runtime.invoke_endpoint(EndpointName="cap-ep", ContentType="text/csv",
                                    Accept="text/csv", Body=payload, InferenceId="req-1")
    csv_out = first["Body"].read().decode()
    second = runtime.invoke_endpoint(EndpointName="cap-ep", ContentType="text/csv",
                                     Accept="application/json", Body=payload)
    json_out = second["Body"].read().decode()
    libsvm = "0:0.5 1:0.1 2:0.2 3:0.3"
    third = runtime.invoke_endpoint(EndpointName="cap-ep", ContentType="text/libsvm",
                                    Accept="text/csv", Body=libsvm)
    third["Body"].read()
    runtime.invoke_endpoint(EndpointName="cap-nobucket", ContentType="text/csv",
                            Body=payload)["Body"].read()

    started = time.gmtime()
    flush_all()
    keys, records = _records(s3, "capture-bucket", "dc/")
    assert keys and all(re.fullmatch(
        r"dc/cap-ep/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}\.jsonl",
        k) for k in keys), keys
    assert keys[0].split("/")[3:5] == [time.strftime("%Y", started),
                                       time.strftime("%m", started)]
    assert len(records) == 3
    by_id = {r["eventMetadata"].get("inferenceId"): r for r in records}
    assert set(by_id) == {"req-1", None}

    one = by_id["req-1"]
    assert one["eventVersion"] == "0"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z",
                        one["eventMetadata"]["inferenceTime"])
    assert len(one["eventMetadata"]["eventId"]) == 36
    assert one["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv", "mode": "INPUT", "data": payload,
        "encoding": "CSV"}
    assert one["captureData"]["endpointOutput"] == {
        "observedContentType": "text/csv", "mode": "OUTPUT", "data": csv_out,
        "encoding": "CSV"}

    others = [r for r in records if "inferenceId" not in r["eventMetadata"]]
    outputs = {r["captureData"]["endpointOutput"]["encoding"]: r for r in others}
    as_json = outputs["JSON"]["captureData"]["endpointOutput"]
    assert as_json["observedContentType"] == "application/json"
    assert as_json["data"] == json_out
    encoded = outputs["CSV"]["captureData"]["endpointInput"]
    assert encoded["encoding"] == "BASE64"
    assert encoded["observedContentType"] == "text/libsvm"
    assert base64.b64decode(encoded["data"]).decode() == libsvm

    # The missing bucket is not created; those records are dropped.
    assert "no-such-capture-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    # Delete writes what is still buffered.
    runtime.invoke_endpoint(EndpointName="cap-ep", ContentType="text/csv",
                            Body=payload, InferenceId="last")["Body"].read()
    sm.delete_endpoint(EndpointName="cap-ep")
    _, records = _records(s3, "capture-bucket", "dc/")
    assert [r["eventMetadata"].get("inferenceId") for r in records].count("last") == 1
    sm.delete_endpoint(EndpointName="cap-nobucket")


def test_capture_respects_sampling_and_disable(sm, s3, client):
    s3.create_bucket(Bucket="capture-off")
    artifact, _, rows = make_model()
    _endpoint(sm, s3, "cap-off", artifact, {
        "EnableCapture": False, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://capture-off/a", "CaptureOptions": [{"CaptureMode": "Input"}]})
    sm.get_waiter("endpoint_in_service").wait(EndpointName="cap-off", WaiterConfig=FAST)
    runtime = client("sagemaker-runtime")
    for _ in range(3):
        runtime.invoke_endpoint(EndpointName="cap-off", ContentType="text/csv",
                                Body=csv_rows(rows[:1]))["Body"].read()
    flush_all()
    assert s3.list_objects_v2(Bucket="capture-off").get("KeyCount", 0) == 0
    sm.delete_endpoint(EndpointName="cap-off")
