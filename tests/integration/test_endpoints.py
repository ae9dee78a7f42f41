"""Real-time endpoints through boto3 (and the unchanged SageMaker SDK): a built-in XGBoost model
served by a real worker process, InvokeEndpoint's answers and errors, update, delete."""

from __future__ import annotations

import io
import socket
import tarfile
import time
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.integration.test_training_jobs import BUCKET, ROLE, XGB_IMAGE

FAST = {"Delay": 0.1, "MaxAttempts": 300}


def make_model(seed: int = 0, rounds: int = 5) -> tuple[bytes, Any, np.ndarray]:
    """A model.tar.gz holding ``xgboost-model``, the booster, and rows to predict."""
    import xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = 3 * x[:, 0] - 2 * x[:, 1] + seed
    booster = xgboost.train({"max_depth": 3, "nthread": 1}, xgboost.DMatrix(x, label=y), rounds)
    raw = bytes(booster.save_raw("ubj"))
    return tar_gz({"xgboost-model": raw}), booster, x[:5]


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def csv_rows(rows: np.ndarray) -> str:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows)


def deploy(sm, s3, name: str, artifact: bytes, *, variants: int = 1) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=artifact)
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/{name}/model.tar.gz",
        "Environment": {}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": f"v{i}" if variants > 1 else "AllTraffic", "ModelName": name,
         "InitialInstanceCount": 1, "InstanceType": "ml.m5.large", "InitialVariantWeight": 1}
        for i in range(variants)])


def port_refuses(port: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.05)
    return False


def test_endpoint_serves_predictions_answers_errors_and_stops_on_delete(
        sm, s3, client, server):
    artifact, booster, rows = make_model()
    deploy(sm, s3, "xgb-ep", artifact)
    arn = sm.create_endpoint(EndpointName="xgb-ep", EndpointConfigName="xgb-ep",
                             Tags=[])["EndpointArn"]
    assert arn.endswith(":endpoint/xgb-ep")
    assert sm.describe_endpoint(EndpointName="xgb-ep")["EndpointStatus"] in (
        "Creating", "InService")
    started = time.monotonic()
    sm.get_waiter("endpoint_in_service").wait(EndpointName="xgb-ep", WaiterConfig=FAST)
    assert time.monotonic() - started < 30
    described = sm.describe_endpoint(EndpointName="xgb-ep")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "xgb-ep"
    assert described["LastModifiedTime"] >= described["CreationTime"]
    [variant] = described["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert (variant["CurrentWeight"], variant["DesiredWeight"]) == (1.0, 1.0)
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (1, 1)
    assert variant["DeployedImages"][0]["SpecifiedImage"] == XGB_IMAGE
    listed = sm.list_endpoints(StatusEquals="InService", NameContains="xgb")["Endpoints"]
    assert [e["EndpointName"] for e in listed] == ["xgb-ep"]
    assert sm.list_endpoints(StatusEquals="Failed")["Endpoints"] == []

    runtime = client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName="xgb-ep", ContentType="text/csv",
                                     Accept="text/csv", Body=csv_rows(rows),
                                     CustomAttributes="c=1")
    assert answer["ContentType"] == "text/csv"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["CustomAttributes"] == "c=1"
    import xgboost

    expected = booster.predict(xgboost.DMatrix(rows))
    got = np.array([float(v) for v in answer["Body"].read().decode().split(",")])
    np.testing.assert_array_equal(got.astype(np.float32), expected)

    as_json = runtime.invoke_endpoint(EndpointName="xgb-ep", ContentType="text/csv",
                                      Accept="application/json", Body=csv_rows(rows[:1]),
                                      TargetVariant="AllTraffic")
    assert as_json["ContentType"] == "application/json"
    assert b'"predictions"' in as_json["Body"].read()

    with pytest.raises(ClientError) as bad:
        runtime.invoke_endpoint(EndpointName="xgb-ep", ContentType="text/csv",
                                Body="1.0,abc,3.0,4.0")
    error = bad.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert "abc" in error["OriginalMessage"]
    assert "Received client error (400) from primary" in error["Error"]["Message"]

    with pytest.raises(ClientError) as bad:
        runtime.invoke_endpoint(EndpointName="xgb-ep", ContentType="application/x-foo",
                                Body="1")
    assert bad.value.response["OriginalStatusCode"] == 415
    with pytest.raises(ClientError) as bad:
        runtime.invoke_endpoint(EndpointName="xgb-ep", ContentType="text/csv", Body="1,2")
    assert bad.value.response["OriginalStatusCode"] == 400
    for kwargs in ({"EndpointName": "nope"}, {"EndpointName": "xgb-ep", "TargetVariant": "B"}):
        with pytest.raises(ClientError) as bad:
            runtime.invoke_endpoint(ContentType="text/csv", Body="1,2,3,4", **kwargs)
        assert bad.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as bad:
        runtime.invoke_endpoint(EndpointName="xgb-ep", ContentType="text/csv",
                                Body=b"0" * (6 * 1024 * 1024 + 1))
    assert bad.value.response["Error"]["Code"] == "ValidationError"

    # Invocation metrics reach CloudWatch (batched, about once a second).
    cloudwatch = client("cloudwatch")
    dims = [{"Name": "EndpointName", "Value": "xgb-ep"},
            {"Name": "VariantName", "Value": "AllTraffic"}]
    deadline = time.monotonic() + 10
    total = 0.0
    while time.monotonic() < deadline and total < 5:
        stats = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=dims,
            StartTime=time.time() - 600, EndTime=time.time() + 60, Period=60,
            Statistics=["Sum"])
        total = sum(p["Sum"] for p in stats["Datapoints"])
        time.sleep(0.2)
    assert total == 5  # 2 answered + 3 refused by the model; ValidationErrors never routed

    live = _services(server).endpoints._live["xgb-ep"]
    [worker] = live.workers
    sm.delete_endpoint(EndpointName="xgb-ep")
    assert port_refuses(worker.port)
    with pytest.raises(ClientError) as gone:
        sm.describe_endpoint(EndpointName="xgb-ep")
    assert gone.value.response["Error"]["Message"].startswith("Could not find endpoint")
    with pytest.raises(ClientError) as gone:
        runtime.invoke_endpoint(EndpointName="xgb-ep", ContentType="text/csv", Body="1,2,3,4")
    assert gone.value.response["Error"]["Code"] == "ValidationError"


def _services(server) -> Any:
    app = server.server.config.loaded_app
    while not hasattr(app, "state"):  # uvicorn wraps the Starlette app in middleware
        app = app.app
    return app.state.services


def test_a_model_that_fails_to_load_fails_the_endpoint_and_an_update_rolls_back(sm, s3,
                                                                                  client):
    deploy(sm, s3, "broken", tar_gz({"xgboost-model": b"not a model"}))
    sm.create_endpoint(EndpointName="broken", EndpointConfigName="broken")
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="broken", WaiterConfig=FAST)
    described = sm.describe_endpoint(EndpointName="broken")
    assert described["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check" in described["FailureReason"]
    assert "Unable to load the model" in described["FailureReason"]

    # Blue/green: a good update switches traffic; a broken one rolls back, still serving.
    artifact, _, rows = make_model(seed=0)
    deploy(sm, s3, "good", artifact)
    artifact2, booster2, _ = make_model(seed=5)
    deploy(sm, s3, "good2", artifact2)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="good")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=FAST)
    runtime = client("sagemaker-runtime")

    def predict() -> np.ndarray:
        body = runtime.invoke_endpoint(EndpointName="ep", ContentType="text/csv",
                                       Body=csv_rows(rows))["Body"].read()
        return np.array([float(v) for v in body.decode().split(",")], dtype=np.float32)

    before = predict()
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="good2")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] in ("Updating",
                                                                         "InService")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=FAST)
    import xgboost

    np.testing.assert_array_equal(predict(), booster2.predict(xgboost.DMatrix(rows)))
    assert not np.array_equal(before, predict())
    assert sm.describe_endpoint(EndpointName="ep")["EndpointConfigName"] == "good2"

    sm.update_endpoint(EndpointName="ep", EndpointConfigName="broken")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=FAST)
    described = sm.describe_endpoint(EndpointName="ep")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "good2"
    assert "did not pass the ping health check" in described["FailureReason"]
    np.testing.assert_array_equal(predict(), booster2.predict(xgboost.DMatrix(rows)))
    sm.delete_endpoint(EndpointName="ep")


def test_unchanged_sdk_deploys_predicts_and_deletes(sdk_env, s3):
    import sagemaker
    import xgboost
    from sagemaker.deserializers import CSVDeserializer
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    from opensage.sdk import fast_polling

    artifact, booster, rows = make_model(seed=2)
    s3.put_object(Bucket=BUCKET, Key="sdk/model.tar.gz", Body=artifact)
    session = sagemaker.Session()
    model = Model(image_uri=sagemaker.image_uris.retrieve("xgboost", session.boto_region_name,
                                                           "1.7-1"),
                  model_data=f"s3://{BUCKET}/sdk/model.tar.gz", role=ROLE,
                  sagemaker_session=session, predictor_cls=Predictor)
    with fast_polling(factor=100):
        predictor = model.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                                 serializer=CSVSerializer(), deserializer=CSVDeserializer())
    got = np.array(predictor.predict(rows), dtype=np.float32).ravel()
    np.testing.assert_array_equal(got, booster.predict(xgboost.DMatrix(rows)))
    predictor.delete_endpoint()
    with pytest.raises(ClientError):
        session.sagemaker_client.describe_endpoint(EndpointName=predictor.endpoint_name)


def _as_revision_0004_left_it(settings: Any) -> list[str]:
    """Every row as the internal-state migration (0004) leaves an older data directory: the
    ``_*`` keys of the API document moved into ``Resource.internal``. Returns the keys it
    had to move (none: this server keeps internal state out of the document)."""
    from opensage.store.db import Database
    from opensage.store.resources import ResourceStore

    db = Database(settings.database_url)
    found: list[str] = []
    try:
        store = ResourceStore(db)
        for row in store.scan("endpoint"):
            moved = {k: v for k, v in row.body.items() if k.startswith("_")}
            store.update("endpoint", row.name, {k: v for k, v in row.body.items()
                                                if k not in moved},
                         now=row.last_modified_time, internal={**row.internal, **moved})
            found += moved
    finally:
        db.dispose()
    return found


def test_restart_brings_in_service_endpoints_back(tmp_path):
    import boto3
    from botocore.config import Config

    from opensage.server import start_in_thread
    from opensage.settings import Settings

    def clients(url: str) -> tuple[Any, Any, Any]:
        kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "k",
                  "aws_secret_access_key": "s", "config": Config(retries={"max_attempts": 1})}
        return (boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs),
                boto3.client("sagemaker-runtime", **kwargs))

    settings = Settings(data_dir=tmp_path, port=0)
    first = start_in_thread(settings)
    try:
        sm, s3, _ = clients(first.url)
        s3.create_bucket(Bucket=BUCKET)
        artifact, booster, rows = make_model(seed=3)
        deploy(sm, s3, "keep", artifact)
        sm.create_endpoint(EndpointName="keep", EndpointConfigName="keep")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="keep", WaiterConfig=FAST)
        [worker] = _services(first).endpoints._live["keep"].workers
    finally:
        first.stop()
    assert port_refuses(worker.port, timeout=5)  # a clean shutdown stops the workers
    moved = _as_revision_0004_left_it(settings)


    second = start_in_thread(settings)
    try:
        sm, _, runtime = clients(second.url)
        assert sm.describe_endpoint(EndpointName="keep")["EndpointStatus"] == "InService"
        body = runtime.invoke_endpoint(EndpointName="keep", ContentType="text/csv",
                                       Body=csv_rows(rows))["Body"].read()
        import xgboost

        np.testing.assert_array_equal(
            np.array(body.decode().split(","), dtype=np.float32),
            booster.predict(xgboost.DMatrix(rows)))
        sm.delete_endpoint(EndpointName="keep")
    finally:
        second.stop()
    assert moved == [], f"internal state in the API document: {moved}"
