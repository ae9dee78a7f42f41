"""Batch transform through boto3 (and the unchanged SageMaker SDK): an XGBoost model.tar.gz
written straight into S3, real worker processes, ``.out`` objects compared with the booster."""

from __future__ import annotations

import contextlib
import gzip
import io
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from opensage.data.recordio import iter_frames
from opensage.services.transform.formats import split_response as _split_response
from opensage.services.transform.job import relative_key as _relative
from opensage.services.transform.jsonpath import apply_path, parse_path
from tests.integration.test_endpoints import csv_rows, make_model
from tests.integration.test_training_jobs import BUCKET, ROLE, XGB_IMAGE


def setup_model(sm, s3, name: str = "tx-model") -> Any:
    artifact, booster, _ = make_model(seed=3)
    s3.put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=artifact)
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/{name}/model.tar.gz"})
    return booster


def rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def predict(booster, x: np.ndarray) -> np.ndarray:
    import xgboost

    return booster.predict(xgboost.DMatrix(x))


def job(name: str, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TransformJobName": name, "ModelName": "tx-model",
        "TransformInput": {"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in"}},
            "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/out/{name}",
                            "AssembleWith": "Line"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"},
        "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 1, "MaxConcurrentTransforms": 2}
    request.update(overrides)
    return request


def wait_for(sm, name: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sm.describe_transform_job(TransformJobName=name)
        if described["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            return described
        time.sleep(0.05)
    raise AssertionError(f"{name} did not finish: {described['TransformJobStatus']}")


def read(s3, key: str) -> str:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def test_transform_outputs_equal_direct_prediction_in_order(sm, s3, client):
    booster = setup_model(sm, s3)
    a, b = rows(300, 1), rows(200, 2)
    s3.put_object(Bucket=BUCKET, Key="in/a.csv", Body=csv_rows(a) + "\n")
    s3.put_object(Bucket=BUCKET, Key="in/sub/b.csv", Body=csv_rows(b))  # no final newline
    arn = sm.create_transform_job(**job("tx-multi", Tags=[{"Key": "team", "Value": "ml"}]))[
        "TransformJobArn"]
    assert arn.endswith(":transform-job/tx-multi")
    described = wait_for(sm, "tx-multi")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert described["TransformEndTime"] >= described["TransformStartTime"]
    assert described["TransformInput"]["SplitType"] == "Line"
    assert described["MaxConcurrentTransforms"] == 2
    for key, x in (("out/tx-multi/a.csv.out", a), ("out/tx-multi/sub/b.csv.out", b)):
        lines = read(s3, key).splitlines()
        got = np.array([float(v) for v in lines], dtype=np.float32)
        np.testing.assert_array_equal(got, predict(booster, x))

    # SingleRecord, gzip input, InputFilter/JoinSource/OutputFilter: id column kept
    ids = np.arange(40)
    table = "\n".join(f"{i}," + ",".join(repr(float(v)) for v in r) for i, r in
                      zip(ids, a[:40], strict=True))
    s3.put_object(Bucket=BUCKET, Key="gz/part.csv.gz", Body=gzip.compress(table.encode()))
    sm.create_transform_job(**job(
        "tx-join", BatchStrategy="SingleRecord", MaxConcurrentTransforms=3,
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/gz/"}},
            "ContentType": "text/csv", "SplitType": "Line", "CompressionType": "Gzip"},
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input",
                        "OutputFilter": "$[0,-1]"}))
    described = wait_for(sm, "tx-join")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    pairs = [line.split(",") for line in read(s3, "out/tx-join/part.csv.gz.out").splitlines()]
    assert [int(p[0]) for p in pairs] == list(ids)
    np.testing.assert_array_equal(np.array([float(p[1]) for p in pairs], dtype=np.float32),
                                  predict(booster, a[:40]))

    listed = sm.list_transform_jobs(StatusEquals="Completed", SortBy="Name",
                                    SortOrder="Ascending")["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in listed] == ["tx-join", "tx-multi"]
    page = sm.list_transform_jobs(MaxResults=1, NameContains="tx-")
    assert len(page["TransformJobSummaries"]) == 1 and page["NextToken"]
    assert sm.list_transform_jobs(StatusEquals="Failed")["TransformJobSummaries"] == []
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    streams = client("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix="tx-multi/")
    assert streams["logStreams"]
    with pytest.raises(ClientError) as stopped:
        sm.stop_transform_job(TransformJobName="tx-multi")
    assert stopped.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as duplicate:
        sm.create_transform_job(**job("tx-multi"))
    assert duplicate.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as missing:
        sm.describe_transform_job(TransformJobName="nope")
    assert "nope" in missing.value.response["Error"]["Message"]


def test_rejected_record_fails_the_job_naming_object_and_line(sm, s3):
    setup_model(sm, s3)
    good = rows(20, 4)
    s3.put_object(Bucket=BUCKET, Key="in/a-good.csv", Body=csv_rows(good))
    bad = csv_rows(rows(10, 5)).splitlines()
    bad[6] = "1.0,abc,3.0,4.0"
    s3.put_object(Bucket=BUCKET, Key="in/b-bad.csv", Body="\n".join(bad))
    sm.create_transform_job(**job("tx-bad"))
    described = wait_for(sm, "tx-bad")
    assert described["TransformJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert f"s3://{BUCKET}/in/b-bad.csv" in reason and "line 7" in reason, reason
    assert "abc" in reason
    assert len(read(s3, "out/tx-bad/a-good.csv.out").splitlines()) == 20
    with pytest.raises(ClientError):  # a partially transformed object is not uploaded
        s3.head_object(Bucket=BUCKET, Key="out/tx-bad/b-bad.csv.out")


def test_stop_transform_job(sm, s3):
    setup_model(sm, s3)
    s3.put_object(Bucket=BUCKET, Key="in/a.csv", Body=csv_rows(rows(5, 6)))
    sm.create_transform_job(**job("tx-stop"))
    sm.stop_transform_job(TransformJobName="tx-stop")
    # stopped while its worker is still starting (that takes a second)
    assert sm.describe_transform_job(TransformJobName="tx-stop")["TransformJobStatus"] in (
        "Stopping", "Stopped")
    assert wait_for(sm, "tx-stop")["TransformJobStatus"] == "Stopped"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key="out/tx-stop/a.csv.out")


def test_sdk_transformer_transform_and_wait(sdk_env, sm, s3):
    import sagemaker
    from sagemaker.transformer import Transformer

    from opensage.sdk import fast_polling

    booster = setup_model(sm, s3)
    x = rows(50, 7)
    s3.put_object(Bucket=BUCKET, Key="sdk/in/part.csv", Body=csv_rows(x))
    transformer = Transformer(model_name="tx-model", instance_count=1,
                              instance_type="ml.m5.large", strategy="MultiRecord",
                              assemble_with="Line", output_path=f"s3://{BUCKET}/sdk/out",
                              sagemaker_session=sagemaker.Session())
    with fast_polling(factor=100), contextlib.redirect_stdout(io.StringIO()):
        transformer.transform(f"s3://{BUCKET}/sdk/in", content_type="text/csv",
                              split_type="Line", wait=False, logs=False)
        transformer.wait(logs=True)
    described = sm.describe_transform_job(
        TransformJobName=transformer.latest_transform_job.name)
    assert described["TransformJobStatus"] == "Completed"
    got = np.array(read(s3, "sdk/out/part.csv.out").split(), dtype=np.float32)
    np.testing.assert_array_equal(got, predict(booster, x))


def test_restart_never_leaves_a_job_in_progress(tmp_path: Path):
    from opensage.services.wiring import build_services
    from opensage.settings import Settings

    services = build_services(Settings(data_dir=tmp_path, port=0))
    ctx = services.context
    try:
        kinds = "transform-job"
        body = {"TransformJobName": "left", "ModelName": "m", "TransformJobStatus": "InProgress",
                "TransformInput": {"DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}}},
                "TransformOutput": {"S3OutputPath": "s3://b/out"}}
        # The model's container is internal state (as revision 0004 moves it), not the body.
        internal = {"_Container": {"Image": "example.com/not-a-builtin:1"}}
        ctx.resources.create(kinds, "left", ctx.arn("transform-job/left"), body,
                             now=0, status="InProgress", internal=internal)
        ctx.resources.create(kinds, "stopping", ctx.arn("transform-job/stopping"),
                             dict(body, TransformJobName="stopping"), now=0,
                             status="Stopping", internal=internal)
        services.transform.start()
        deadline = time.monotonic() + 10
        while ctx.resources.get(kinds, "left").status == "InProgress":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        left = ctx.resources.get(kinds, "left").body
        assert left["TransformJobStatus"] == "Failed"
        assert "not-a-builtin" in left["FailureReason"]
        assert ctx.resources.get(kinds, "stopping").status == "Stopped"
        # each end is one recorded compare-and-set move
        assert [t[:2] for t in ctx.resources.transitions(kinds, "left")] == [
            ("InProgress", "Failed")]
        assert [t[:2] for t in ctx.resources.transitions(kinds, "stopping")] == [
            ("Stopping", "Stopped")]

        # a shutdown mid-job leaves it InProgress; the next start runs it to completion
        artifact, booster, x = make_model(seed=3)
        ctx.objects.create_bucket("bkt")
        ctx.objects.put_object("bkt", "model.tar.gz", artifact)
        ctx.objects.put_object("bkt", "in/x.csv", csv_rows(x).encode())
        ctx.resources.create(kinds, "resumed", ctx.arn("transform-job/resumed"), dict(
            body, TransformJobName="resumed", TransformInput={
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                "S3Uri": "s3://bkt/in"}},
                "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": "s3://bkt/out", "AssembleWith": "Line"}),
            now=0, status="InProgress", internal={"_Container": {
                "Image": XGB_IMAGE, "ModelDataUrl": "s3://bkt/model.tar.gz"}})
        services.transform.start()
        services.transform.close()
        assert ctx.resources.get(kinds, "resumed").status == "InProgress"
    finally:
        services.transform.close()
        ctx.db.dispose()
    services = build_services(Settings(data_dir=tmp_path, port=0))
    ctx = services.context
    try:
        services.transform.start()
        deadline = time.monotonic() + 30
        while ctx.resources.get(kinds, "resumed").status == "InProgress":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert ctx.resources.get(kinds, "resumed").status == "Completed"
        got = np.array(ctx.objects.read_object("bkt", "out/x.csv.out").split(),
                       dtype=np.float32)
        np.testing.assert_array_equal(got, predict(booster, x))
    finally:
        services.transform.close()
        ctx.db.dispose()


def test_jsonpath_recordio_naming_and_response_splitting():
    row = ["id", "1", "2", "3"]
    assert apply_path(parse_path("$[1:]"), row) == ["1", "2", "3"]
    assert apply_path(parse_path("$[0,-1]"), row) == ["id", "3"]
    assert apply_path(parse_path("$[0]"), row) == "id"
    assert apply_path(parse_path("$[-1]"), row) == "3"
    assert apply_path(parse_path("$[0,2:]"), row) == ["id", "2", "3"]
    doc = {"id": 1, "features": [1, 2], "SageMakerOutput": {"score": 0.5}}
    assert apply_path(parse_path("$.features"), doc) == [1, 2]
    assert apply_path(parse_path("$['id','SageMakerOutput']"), doc) == {
        "id": 1, "SageMakerOutput": {"score": 0.5}}
    with pytest.raises(IndexError):
        apply_path(parse_path("$[7]"), row)
    with pytest.raises(ValueError):
        parse_path("features")

    def frame(data: bytes) -> bytes:
        return struct.pack("<II", 0xCED7230A, len(data)) + data + b"\0" * (-len(data) % 4)

    stream = frame(b"abcde") + frame(b"xyzw")
    assert list(iter_frames(io.BytesIO(stream), keep_padding=True)) == [
        frame(b"abcde"), frame(b"xyzw")]
    assert list(iter_frames(io.BytesIO(stream), keep_padding=False)) == [
        frame(b"abcde")[:13], frame(b"xyzw")]

    assert _relative("in", "in/sub/b.csv") == "sub/b.csv"
    assert _relative("in/", "in/a.csv") == "a.csv"
    assert _relative("in/a.csv", "in/a.csv") == "a.csv"
    assert _relative("in/part", "in/part-0.csv") == "part-0.csv"

    assert _split_response(b"1.5,2.5,3.5", 3) == [b"1.5", b"2.5", b"3.5"]
    assert _split_response(b"1,2\n3,4\n", 2) == [b"1,2", b"3,4"]
    assert _split_response(b'{"predictions": [{"score": 1}, {"score": 2}]}', 2) == [
        b'{"score":1}', b'{"score":2}']
    assert _split_response(b"1.5,2.5", 3) is None


def test_a_cut_recordio_input_fails_the_job_naming_the_object_and_record():
    from opensage.services.transform.formats import RecordFormat
    from opensage.services.transform.outcomes import JobFailed
    from opensage.services.transform.records import Batcher

    job = Batcher(split="RecordIO", multi=False, max_payload=1 << 20, per_record=False,
                  record_format=RecordFormat("application/x-recordio-protobuf", {}))
    good = struct.pack("<II", 0xCED7230A, 4) + b"abcd"
    records = job.records(io.BytesIO(good + good[:6]), "s3://b/in.rec")
    assert next(records) == good
    with pytest.raises(JobFailed, match=r"Unable to read s3://b/in.rec: truncated RecordIO "
                                        r"header at byte 12 \(record 2\)"):
        next(records)


def test_multirecord_blocks_match_the_per_line_path():
    from opensage.services.transform.formats import RecordFormat
    from opensage.services.transform.outcomes import JobFailed
    from opensage.services.transform.records import Batcher

    def batches(data: bytes, payload: int, fast: bool) -> list[Any]:
        job = Batcher(split="Line", multi=True, max_payload=payload, per_record=not fast,
                      record_format=RecordFormat("text/csv", {}))
        return list(job.batches(io.BytesIO(data), "s3://b/k"))

    cases = [b"1,2\n3,4\n5,6\n", b"1,2\n3,4\n5,6", b"1,2\r\n3,4\r\n", b"\n1,2\n\n  \n3,4\n",
             b"1,2\n" * 1000, b"10,20,30\n" * 333 + b"7,8,9", b"", b"\n\n"]
    for data in cases:
        for payload in (16, 64, 1000, 1 << 20):
            fast, slow = batches(data, payload, True), batches(data, payload, False)
            assert b"".join(b.body for b in fast) == b"".join(b.body for b in slow), data
            assert [n for b in fast for n in b.numbers] == [n for b in slow for n in b.numbers]
            assert all(len(b.body) <= payload for b in fast)
            assert [line for b in fast for line in b.lines()] == [
                line for b in slow for line in b.lines()]
    with pytest.raises(JobFailed, match="line 2: the record is larger"):
        batches(b"1,2\n" + b"9" * 100 + b"\n", 32, True)
