"""Script-mode serving: framework models (scikit-learn, PyTorch) served through the inference
toolkits' handler contract by ``framework_worker.py`` in the framework's own environment,
for endpoints (boto3 and the unchanged SDK) and batch transform."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.integration.frameworks import (
    MODEL_FN,
    PYTORCH_IMAGE,
    SKLEARN_IMAGE,
    csv_rows,
    env_python,
    run_in,
    tar_gz,
    train_sklearn,
)
from tests.integration.test_data_capture import _records, flush_all
from tests.integration.test_training_jobs import BUCKET, ROLE
from tests.integration.test_transform import read, wait_for

FAST = {"Delay": 0.1, "MaxAttempts": 1200}
REPACKED = {"SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def sklearn_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, Any]]:
    """A LogisticRegression trained and saved with joblib in the sklearn 1.2-1 environment,
    with rows and that same model's own predictions for them."""
    return train_sklearn(env_python(SKLEARN_IMAGE), tmp_path_factory.mktemp("sk"))


def create(sm, s3, name: str, artifact: bytes, *, image: str = SKLEARN_IMAGE,
           environment: dict[str, str] | None = None, capture: dict | None = None,
           endpoint: bool = True) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"models/{name}/model.tar.gz", Body=artifact)
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": image, "ModelDataUrl": f"s3://{BUCKET}/models/{name}/model.tar.gz",
        "Environment": REPACKED if environment is None else environment})
    if not endpoint:
        return
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1}],
        **({"DataCaptureConfig": capture} if capture else {}))
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def in_service(sm, name: str) -> dict[str, Any]:
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
    except WaiterError:
        raise AssertionError(sm.describe_endpoint(EndpointName=name).get(
            "FailureReason")) from None
    return sm.describe_endpoint(EndpointName=name)


def log_lines(client, group: str, pattern: str, timeout: float = 30) -> list[str]:
    """Events of ``group`` containing ``pattern``, once there are some (the worker's output
    reaches the log store on its own thread)."""
    logs = client("logs")
    deadline = time.monotonic() + timeout
    while True:
        events = logs.filter_log_events(logGroupName=group,
                                        filterPattern=f'"{pattern}"')["events"]
        if events or time.monotonic() > deadline:
            return [e["logStreamName"] + " " + e["message"] for e in events]
        time.sleep(0.1)


def test_sklearn_endpoint_serves_csv_json_and_npy_with_default_handlers(
        sm, s3, client, sklearn_model):
    joblib_bytes, facts = sklearn_model
    s3.create_bucket(Bucket="capture-bucket")
    create(sm, s3, "sk-ep", tar_gz({"model.joblib": joblib_bytes,
                                    "code/inference.py": MODEL_FN}),
           capture={"EnableCapture": True, "InitialSamplingPercentage": 100,
                    "DestinationS3Uri": "s3://capture-bucket/dc/",
                    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    described = in_service(sm, "sk-ep")
    assert described["ProductionVariants"][0]["DeployedImages"][0][
        "SpecifiedImage"] == SKLEARN_IMAGE
    runtime = client("sagemaker-runtime")
    rows, expected = facts["rows"], facts["expected"]

    # Only model_fn is given: input_fn, predict_fn and output_fn are the container's defaults.
    answer = runtime.invoke_endpoint(EndpointName="sk-ep", ContentType="text/csv",
                                     Accept="text/csv", Body=csv_rows(rows),
                                     CustomAttributes="trace=7")
    assert answer["ContentType"] == "text/csv"
    assert answer["CustomAttributes"] == "trace=7"
    got = [int(line) for line in answer["Body"].read().decode().split()]
    assert got == expected

    answer = runtime.invoke_endpoint(EndpointName="sk-ep", ContentType="application/json",
                                     Body=json.dumps(rows))
    assert answer["ContentType"] == "application/json"  # the default Accept
    assert json.loads(answer["Body"].read()) == expected

    buffer = io.BytesIO()
    np.save(buffer, np.array(rows, dtype=np.float32))
    answer = runtime.invoke_endpoint(EndpointName="sk-ep", ContentType="application/x-npy",
                                     Accept="application/x-npy", Body=buffer.getvalue())
    assert answer["ContentType"] == "application/x-npy"
    assert np.load(io.BytesIO(answer["Body"].read())).tolist() == expected

    with pytest.raises(ClientError) as bad:  # the default encoders know no such type
        runtime.invoke_endpoint(EndpointName="sk-ep", ContentType="text/csv",
                                Accept="application/x-foo", Body=csv_rows(rows))
    assert bad.value.response["Error"]["Code"] == "ModelError"
    assert bad.value.response["OriginalStatusCode"] == 406

    # Data capture works for these models as for built-ins.
    flush_all()
    _, records = _records(s3, "capture-bucket", "dc/sk-ep/")
    inputs = [r["captureData"]["endpointInput"] for r in records]
    assert any(base64.b64decode(i["data"]).decode() == csv_rows(rows) for i in inputs
               if i["encoding"] == "BASE64"), inputs


def test_a_raising_handler_is_a_model_error_with_the_traceback_in_the_log(
        sm, s3, client, sklearn_model):
    joblib_bytes, facts = sklearn_model
    code = MODEL_FN + (
        "\n\ndef predict_fn(data, model):\n"
        "    if data.shape[0] > 1:\n"
        "        raise ValueError('only one row at a time, please')\n"
        "    return model.predict(data)\n")
    create(sm, s3, "sk-err", tar_gz({"model.joblib": joblib_bytes, "code/inference.py": code}))
    in_service(sm, "sk-err")
    runtime = client("sagemaker-runtime")
    started = time.monotonic()
    with pytest.raises(ClientError) as bad:
        runtime.invoke_endpoint(EndpointName="sk-err", ContentType="text/csv",
                                Body=csv_rows(facts["rows"]))
    assert time.monotonic() - started < 30  # answered, never hung
    error = bad.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert "only one row at a time" in error["OriginalMessage"]
    assert "/aws/sagemaker/Endpoints/sk-err" in error["Error"]["Message"]
    lines = log_lines(client, "/aws/sagemaker/Endpoints/sk-err", "only one row at a time")
    assert any(line.startswith("AllTraffic/") and "ValueError" in line for line in lines)
    assert log_lines(client, "/aws/sagemaker/Endpoints/sk-err", "in predict_fn")
    # The worker is still up: a good request is answered.
    answer = runtime.invoke_endpoint(EndpointName="sk-err", ContentType="text/csv",
                                     Body=csv_rows(facts["rows"][:1]))
    assert json.loads(answer["Body"].read()) == facts["expected"][:1]


S3_READING_HANDLER = MODEL_FN + """
import os, urllib.request

def predict_fn(data, model):
    # No endpoint given: the platform's AWS_ENDPOINT_URL is this server's S3 facade.
    url = os.environ["AWS_ENDPOINT_URL"] + "/BUCKET/extra/scale.txt"
    scale = float(urllib.request.urlopen(url).read())
    return {"region": os.environ["AWS_DEFAULT_REGION"],
            "predictions": (model.predict(data) * scale).tolist()}
""".replace("BUCKET", BUCKET)


def test_model_handlers_reach_this_server_through_aws_endpoint_url(
        sm, s3, client, endpoint, sklearn_model):
    joblib_bytes, facts = sklearn_model
    s3.put_object(Bucket=BUCKET, Key="extra/scale.txt", Body=b"10")
    create(sm, s3, "sk-aws", tar_gz({"model.joblib": joblib_bytes,
                                     "code/inference.py": S3_READING_HANDLER}))
    in_service(sm, "sk-aws")
    answer = client("sagemaker-runtime").invoke_endpoint(
        EndpointName="sk-aws", ContentType="application/json", Body=json.dumps(facts["rows"]))
    got = json.loads(answer["Body"].read())
    assert got == {"region": "us-east-1", "predictions": [10 * v for v in facts["expected"]]}


def test_sklearn_without_model_fn_fails_the_endpoint_with_a_clear_reason(
        sm, s3, sklearn_model):
    joblib_bytes, _ = sklearn_model
    create(sm, s3, "sk-nofn", tar_gz({"model.joblib": joblib_bytes,
                                      "code/inference.py": "X = 1\n"}))
    deadline = time.monotonic() + 120
    while (described := sm.describe_endpoint(EndpointName="sk-nofn"))[
            "EndpointStatus"] == "Creating" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert described["EndpointStatus"] == "Failed"
    assert "model_fn" in described["FailureReason"]


def test_an_unsupported_framework_image_is_refused_at_create_model(sm, s3):
    s3.put_object(Bucket=BUCKET, Key="models/mx/model.tar.gz", Body=tar_gz({"x": b"1"}))
    with pytest.raises(ClientError) as bad:
        sm.create_model(ModelName="mx", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
                     "mxnet-inference:1.9.0-cpu-py38",
            "ModelDataUrl": f"s3://{BUCKET}/models/mx/model.tar.gz",
            "Environment": REPACKED})
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    assert "mxnet" in bad.value.response["Error"]["Message"].lower()


def test_blue_green_update_between_script_mode_models(sm, s3, client, sklearn_model):
    joblib_bytes, facts = sklearn_model
    create(sm, s3, "sk-bg", tar_gz({"model.joblib": joblib_bytes,
                                    "code/inference.py": MODEL_FN}))
    in_service(sm, "sk-bg")
    # The second model's output_fn answers probabilities, with its own content type.
    proba = MODEL_FN + (
        "\n\nimport json\n\n"
        "def predict_fn(data, model, context):\n"  # the optional context argument
        "    assert context.system_properties['model_dir']\n"
        "    return model.predict_proba(data)\n\n"
        "def output_fn(prediction, accept):\n"
        "    return json.dumps({'proba': prediction.tolist()}), 'application/vnd+proba'\n")
    create(sm, s3, "sk-bg2", tar_gz({"model.joblib": joblib_bytes,
                                     "code/inference.py": proba}), endpoint=False)
    sm.create_endpoint_config(EndpointConfigName="sk-bg2", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "sk-bg2", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    runtime = client("sagemaker-runtime")
    sm.update_endpoint(EndpointName="sk-bg", EndpointConfigName="sk-bg2")
    answers: list[Any] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # every request is answered while it switches over
        answer = runtime.invoke_endpoint(EndpointName="sk-bg", ContentType="text/csv",
                                         Body=csv_rows(facts["rows"]))
        answers.append((answer["ContentType"], json.loads(answer["Body"].read())))
        if sm.describe_endpoint(EndpointName="sk-bg")["EndpointStatus"] == "InService" \
                and answers[-1][0] == "application/vnd+proba":
            break
    assert answers[0] == ("application/json", facts["expected"])
    kind, body = answers[-1]
    assert kind == "application/vnd+proba"
    np.testing.assert_allclose(body["proba"], facts["proba"], rtol=1e-6)
    assert sm.describe_endpoint(EndpointName="sk-bg")["EndpointConfigName"] == "sk-bg2"


def test_batch_transform_of_csv_with_a_script_mode_model(sm, s3, sklearn_model):
    joblib_bytes, facts = sklearn_model
    create(sm, s3, "sk-tx", tar_gz({"model.joblib": joblib_bytes,
                                    "code/inference.py": MODEL_FN}), endpoint=False)
    rows = facts["rows"]
    s3.put_object(Bucket=BUCKET, Key="skin/a.csv", Body=csv_rows(rows[:5]) + "\n")
    s3.put_object(Bucket=BUCKET, Key="skin/b.csv", Body=csv_rows(rows[5:]) + "\n")
    sm.create_transform_job(
        TransformJobName="sk-tx", ModelName="sk-tx",
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/skin/"}},
            "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/skout", "Accept": "text/csv",
                         "AssembleWith": "Line"},
        TransformResources={"InstanceCount": 1, "InstanceType": "ml.m5.large"},
        BatchStrategy="MultiRecord", MaxPayloadInMB=1)
    described = wait_for(sm, "sk-tx", timeout=300)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    got = [int(v) for v in (read(s3, "skout/a.csv.out") + read(s3, "skout/b.csv.out")).split()]
    assert got == facts["expected"]


TORCH_NET = """
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
    def forward(self, x):
        return torch.softmax(self.linear(x), dim=1)
"""
TRAIN_TORCH = """
import json, torch
torch.manual_seed(0)
""" + TORCH_NET + """
net = Net()
torch.save(net.state_dict(), "model.pth")
torch.jit.trace(net, torch.rand(1, 4)).save("model.pt")
rows = torch.rand(5, 4)
with torch.no_grad():
    print(json.dumps({"rows": rows.tolist(), "expected": net(rows).tolist()}))
"""

TORCH_MODEL_FN = """
import os
import torch
""" + TORCH_NET + """
def model_fn(model_dir):
    net = Net()
    net.load_state_dict(torch.load(os.path.join(model_dir, "model.pth")))
    return net
"""


def test_pytorch_state_dict_with_model_fn_and_torchscript_by_default(
        sm, s3, client, tmp_path: Path):
    facts = run_in(env_python(PYTORCH_IMAGE), TRAIN_TORCH, tmp_path)
    create(sm, s3, "pt-fn", tar_gz({"model.pth": (tmp_path / "model.pth").read_bytes(),
                                    "code/inference.py": TORCH_MODEL_FN}),
           image=PYTORCH_IMAGE)
    # No inference script: the PyTorch toolkit's default model_fn loads model.pt (TorchScript).
    create(sm, s3, "pt-default", tar_gz({"model.pt": (tmp_path / "model.pt").read_bytes()}),
           image=PYTORCH_IMAGE, environment={})
    runtime = client("sagemaker-runtime")
    for name in ("pt-fn", "pt-default"):
        in_service(sm, name)
        answer = runtime.invoke_endpoint(EndpointName=name, ContentType="application/json",
                                         Accept="application/json",
                                         Body=json.dumps(facts["rows"]))
        np.testing.assert_allclose(json.loads(answer["Body"].read()), facts["expected"],
                                   rtol=1e-5)


SDK_INFERENCE = MODEL_FN + """

def input_fn(data, content_type):
    import io
    import numpy as np
    if content_type == "application/x-npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    raise ValueError(f"unexpected {content_type}")
"""


def test_unchanged_sdk_sklearn_model_deploys_predicts_and_transforms(
        sdk_env, sm, s3, sklearn_model, tmp_path: Path):
    """``SKLearnModel(entry_point=...)``: the SDK uploads ``sourcedir.tar.gz`` and points
    ``SAGEMAKER_SUBMIT_DIRECTORY`` at it (no repack without network isolation)."""
    import sagemaker
    from sagemaker.sklearn import SKLearnModel

    from opensage.sdk import fast_polling

    joblib_bytes, facts = sklearn_model
    s3.put_object(Bucket=BUCKET, Key="sdk-sk/model.tar.gz",
                  Body=tar_gz({"model.joblib": joblib_bytes}))
    source = tmp_path / "src"
    source.mkdir()
    (source / "inference.py").write_text(SDK_INFERENCE)
    session = sagemaker.Session()
    model = SKLearnModel(model_data=f"s3://{BUCKET}/sdk-sk/model.tar.gz", role=ROLE,
                         entry_point="inference.py", source_dir=str(source),
                         framework_version="1.2-1", sagemaker_session=session)
    with fast_polling(factor=100):
        predictor = model.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    created = sm.describe_model(ModelName=model.name)["PrimaryContainer"]
    assert created["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"].startswith("s3://")
    got = predictor.predict(np.array(facts["rows"], dtype=np.float32))  # npy both ways
    assert np.asarray(got).tolist() == facts["expected"]

    s3.put_object(Bucket=BUCKET, Key="sdk-sk/in/rows.csv", Body=csv_rows(facts["rows"]))
    transformer = model.transformer(instance_count=1, instance_type="ml.m5.large",
                                    strategy="MultiRecord", assemble_with="Line",
                                    accept="text/csv", output_path=f"s3://{BUCKET}/sdk-sk/out")
    # The CSV input goes through a transform_fn-free model whose input_fn knows only npy:
    # a transform of CSV fails with the handler's error, and the SDK says so.
    with fast_polling(factor=100), pytest.raises(Exception, match="unexpected text/csv"):
        transformer.transform(f"s3://{BUCKET}/sdk-sk/in", content_type="text/csv",
                              split_type="Line", wait=True, logs=False)
    predictor.delete_endpoint()


def test_unchanged_sdk_sklearn_model_transformer_with_default_input(
        sdk_env, sm, s3, sklearn_model, tmp_path: Path):
    import sagemaker
    from sagemaker.sklearn import SKLearnModel

    from opensage.sdk import fast_polling

    joblib_bytes, facts = sklearn_model
    s3.put_object(Bucket=BUCKET, Key="sdk-tx/model.tar.gz",
                  Body=tar_gz({"model.joblib": joblib_bytes}))
    source = tmp_path / "src"
    source.mkdir()
    (source / "inference.py").write_text(MODEL_FN)
    model = SKLearnModel(model_data=f"s3://{BUCKET}/sdk-tx/model.tar.gz", role=ROLE,
                         entry_point="inference.py", source_dir=str(source),
                         framework_version="1.2-1", sagemaker_session=sagemaker.Session())
    s3.put_object(Bucket=BUCKET, Key="sdk-tx/in/rows.csv", Body=csv_rows(facts["rows"]))
    transformer = model.transformer(instance_count=1, instance_type="ml.m5.large",
                                    strategy="MultiRecord", assemble_with="Line",
                                    accept="text/csv", output_path=f"s3://{BUCKET}/sdk-tx/out")
    with fast_polling(factor=100):
        transformer.transform(f"s3://{BUCKET}/sdk-tx/in", content_type="text/csv",
                              split_type="Line", wait=True, logs=False)
    got = [int(v) for v in read(s3, "sdk-tx/out/rows.csv.out").split()]
    assert got == facts["expected"]


TRAIN_SCRIPT = """
import argparse, os
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--reg", type=float, default=1.0)
    args = parser.parse_args()
    data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"),
                      delimiter=",")
    model = LogisticRegression(C=args.reg, max_iter=1000).fit(data[:, 1:], data[:, 0])
    joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""


def test_unchanged_sdk_sklearn_fit_deploy_predict_and_transform(
        sdk_env, sm, s3, sklearn_model, tmp_path: Path):
    import sagemaker
    from sagemaker.deserializers import CSVDeserializer
    from sagemaker.serializers import CSVSerializer
    from sagemaker.sklearn import SKLearn

    from opensage.sdk import fast_polling

    _, facts = sklearn_model
    rows = np.array(facts["rows"])
    labels = np.array(facts["expected"], dtype=float)
    train = np.column_stack([np.tile(labels, 20), np.tile(rows, (20, 1))])
    s3.put_object(Bucket=BUCKET, Key="fit/train/train.csv",
                  Body="\n".join(",".join(repr(float(v)) for v in r) for r in train))
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(TRAIN_SCRIPT)
    estimator = SKLearn(entry_point="train.py", source_dir=str(source),
                        framework_version="1.2-1", instance_type="ml.m5.large",
                        instance_count=1, role=ROLE, hyperparameters={"reg": 10.0},
                        sagemaker_session=sagemaker.Session())
    with fast_polling(factor=100):
        estimator.fit({"train": f"s3://{BUCKET}/fit/train"}, logs=False)
        predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                                     serializer=CSVSerializer(), deserializer=CSVDeserializer())
    got = [int(float(v[0])) for v in predictor.predict(rows)]
    assert got == facts["expected"]
    s3.put_object(Bucket=BUCKET, Key="fit/in/rows.csv", Body=csv_rows(facts["rows"]))
    transformer = estimator.transformer(instance_count=1, instance_type="ml.m5.large",
                                        assemble_with="Line", accept="text/csv",
                                        output_path=f"s3://{BUCKET}/fit/out")
    with fast_polling(factor=100):
        transformer.transform(f"s3://{BUCKET}/fit/in", content_type="text/csv",
                              split_type="Line", wait=True, logs=False)
    assert [int(float(v)) for v in read(s3, "fit/out/rows.csv.out").split()] == \
        facts["expected"]
    predictor.delete_endpoint()


TENSORFLOW_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.16-cpu"
SAVED_MODEL = """
import json, tensorflow as tf
class Affine(tf.Module):
    def __init__(self):
        self.w = tf.Variable([[1.0, -1.0], [0.5, 2.0], [0.0, 1.0]])
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serve(self, x):
        return {"scores": tf.matmul(x, self.w)}
module = Affine()
tf.saved_model.save(module, "export/Servo/1", signatures={"serving_default": module.serve})
rows = [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]]
print(json.dumps({"rows": rows, "expected": module.serve(tf.constant(rows))["scores"].numpy().tolist()}))
"""


def test_tensorflow_saved_model_without_inference_script_answers_tf_serving_rest(
        sm, s3, client, tmp_path: Path):
    facts = run_in(env_python(TENSORFLOW_IMAGE), SAVED_MODEL, tmp_path)
    files = {str(p.relative_to(tmp_path)): p.read_bytes()
             for p in (tmp_path / "export").rglob("*") if p.is_file()}
    create(sm, s3, "tf-ep", tar_gz(files), image=TENSORFLOW_IMAGE,
           environment={"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"})  # what TensorFlowModel sends
    in_service(sm, "tf-ep")
    runtime = client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName="tf-ep", ContentType="application/json",
                                     Body=json.dumps({"instances": facts["rows"]}))
    assert answer["ContentType"] == "application/json"
    np.testing.assert_allclose(json.loads(answer["Body"].read())["predictions"],
                               facts["expected"], rtol=1e-6)
    with pytest.raises(ClientError) as bad:
        runtime.invoke_endpoint(EndpointName="tf-ep", ContentType="application/json",
                                Body=json.dumps({"rows": facts["rows"]}))
    assert bad.value.response["OriginalStatusCode"] == 400
