"""``EnableNetworkIsolation`` on models: the workers of an isolated model (a built-in's, a
framework's script-mode handlers) run in a network namespace of their own with loopback only,
serve the server's requests through the socket the server bound, and reach nothing: not the
server's port, not another port of this machine, not the server's files or other endpoints'
directories. A model without isolation keeps the network.
Endpoints and batch transform alike."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from opensage.runner.toolkit import isolation
from tests.integration.builtins import image, train
from tests.integration.frameworks import SKLEARN_IMAGE, env_python, tar_gz, train_sklearn
from tests.integration.test_endpoints import _services
from tests.integration.test_framework_serving import in_service
from tests.integration.test_training_jobs import BUCKET, ROLE
from tests.integration.test_transform import read, wait_for

pytestmark = pytest.mark.skipif(isolation.unavailable() is not None,
                                reason=str(isolation.unavailable()))

# The user's handlers: each tries a TCP connection to every port of PROBE_PORTS on
# 127.0.0.1, once when the model loads and again for each prediction, and answers what
# happened along with the model's predictions.
PROBING = """
import ctypes, json, os, socket
import joblib
import numpy as np

def probe():
    found = {}
    for port in os.environ["PROBE_PORTS"].split(","):
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
            found[port] = "connected"
        except OSError as e:
            found[port] = f"unreachable: {e}"
    return found

def escape():
    # try to go back into the network namespace of the parent: the server
    try:
        fd = os.open(f"/proc/{os.getppid()}/ns/net", os.O_RDONLY)
    except OSError as e:
        return f"refused: {e.strerror}"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, 0x40000000) != 0:
            return f"refused: {os.strerror(ctypes.get_errno())}"
        return "entered"
    finally:
        os.close(fd)

def peek():
    # the server's files and the endpoints' directories: what can be read or listed
    seen = {}
    for path in os.environ["PROBE_PATHS"].split(","):
        try:
            seen[path] = (sorted(os.listdir(path)) if os.path.isdir(path)
                          else len(open(path, "rb").read()))
        except OSError as e:
            seen[path] = f"refused: {type(e).__name__}"
    return seen

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib")), probe()

def input_fn(body, content_type):
    return np.array(json.loads(body), dtype=np.float32)

def predict_fn(data, model):
    estimator, at_load = model
    answer = {"predictions": estimator.predict(data).tolist(), "at_load": at_load,
              "at_predict": probe(), "peek": peek()}
    if os.environ.get("TRY_ESCAPE"):
        answer["escape"] = escape()
        answer["after_escape"] = probe()
    return answer

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""


@pytest.fixture
def listener() -> Iterator[int]:
    """Another service of this machine: a port on 127.0.0.1 that accepts connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def interfaces(pid: int) -> set[str]:
    """The network interfaces the process ``pid`` sees (those of its namespace)."""
    with open(f"/proc/{pid}/net/dev") as dev:
        return {line.split(":", 1)[0].strip() for line in dev.readlines()[2:]}


def endpoint_config(sm, name: str, model: str) -> None:
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])


def test_isolated_builtin_endpoint_and_transform_serve_from_a_namespace_of_their_own(
        sm, s3, client, server):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = x @ np.array([2.0, -1.0, 0.5], dtype=np.float32) + 1.0
    data = "\n".join(",".join(map(repr, [float(t), *map(float, r)])) for t, r in zip(y, x))
    job = train(sm, s3, "linear-learner", {"predictor_type": "regressor", "feature_dim": 3,
                                           "epochs": 5},
                {"train": (data.encode(), "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    for name, isolated in (("ll-open", False), ("ll-isolated", True)):
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, EnableNetworkIsolation=isolated,
                        PrimaryContainer={"Image": image("linear-learner"),
                                          "ModelDataUrl": artifact})
        assert sm.describe_model(ModelName=name)["EnableNetworkIsolation"] is isolated
        endpoint_config(sm, name, name)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    for name in ("ll-open", "ll-isolated"):
        in_service(sm, name)
    runtime = client("sagemaker-runtime")
    rows = "\n".join(",".join(map(repr, map(float, r))) for r in x[:4])
    answers = {name: json.loads(runtime.invoke_endpoint(
        EndpointName=name, ContentType="text/csv", Accept="application/json",
        Body=rows)["Body"].read()) for name in ("ll-open", "ll-isolated")}
    assert answers["ll-isolated"] == answers["ll-open"]
    assert len(answers["ll-isolated"]["predictions"]) == 4

    live = _services(server).endpoints._live
    [isolated] = live["ll-isolated"].workers
    [shared] = live["ll-open"].workers
    assert namespace(shared.proc.pid) == namespace(os.getpid())
    assert namespace(isolated.proc.pid) != namespace(os.getpid())
    assert interfaces(isolated.proc.pid) == {"lo"}  # nothing but its own loopback

    # Batch transform of the isolated model: the same workers, the same predictions.
    s3.put_object(Bucket=BUCKET, Key="iso-in/rows.csv", Body=rows.encode())
    sm.create_transform_job(
        TransformJobName="ll-isolated-tx", ModelName="ll-isolated",
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/iso-in"}},
            "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/iso-out", "Accept": "application/json"},
        TransformResources={"InstanceCount": 1, "InstanceType": "ml.m5.large"},
        BatchStrategy="MultiRecord")
    done = wait_for(sm, "ll-isolated-tx")
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    assert json.loads(read(s3, "iso-out/rows.csv.out")) == answers["ll-open"]


@pytest.fixture(scope="module")
def sklearn_model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return train_sklearn(env_python(SKLEARN_IMAGE), tmp_path_factory.mktemp("iso"))[0]


def test_isolated_script_mode_handlers_reach_neither_the_server_nor_the_machine(
        sm, s3, client, endpoint, server, listener, sklearn_model):
    server_port = int(endpoint.rsplit(":", 1)[1])
    ports = f"{server_port},{listener}"
    data_dir = server.settings.data_dir
    secret, database, endpoints = (str(data_dir / "secret.key"), str(data_dir / "opensage.db"),
                                   str(data_dir / "endpoints"))
    s3.put_object(Bucket=BUCKET, Key="models/probing/model.tar.gz", Body=tar_gz({
        "model.joblib": sklearn_model, "code/inference.py": PROBING}))
    environment = {"SAGEMAKER_PROGRAM": "inference.py",
                   "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code", "PROBE_PORTS": ports,
                   "PROBE_PATHS": f"{secret},{database},{endpoints}"}
    for name, isolated in (("sk-open", False), ("sk-isolated", True)):
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, EnableNetworkIsolation=isolated,
                        PrimaryContainer={
                            "Image": SKLEARN_IMAGE,
                            "Environment": {**environment, "TRY_ESCAPE": "1"} if isolated
                            else environment,
                            "ModelDataUrl": f"s3://{BUCKET}/models/probing/model.tar.gz"})
        endpoint_config(sm, name, name)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    runtime = client("sagemaker-runtime")
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    answers = {}
    for name in ("sk-open", "sk-isolated"):
        in_service(sm, name)
        answers[name] = json.loads(runtime.invoke_endpoint(
            EndpointName=name, ContentType="application/json",
            Body=json.dumps(rows))["Body"].read())
    assert answers["sk-isolated"]["predictions"] == answers["sk-open"]["predictions"]
    assert answers["sk-open"]["predictions"] == [0, 2]
    for when in ("at_load", "at_predict"):
        assert answers["sk-open"][when] == {str(server_port): "connected",
                                            str(listener): "connected"}
        probes = answers["sk-isolated"][when]
        assert set(probes) == {str(server_port), str(listener)}
        assert all(p.startswith("unreachable: ") for p in probes.values()), probes
    # Even run as root (as here), the worker may not setns back into the server's namespace.
    assert answers["sk-isolated"]["escape"] == "refused: Operation not permitted"
    assert all(p.startswith("unreachable: ")
               for p in answers["sk-isolated"]["after_escape"].values())
    # Nor does it see the server's files or the other endpoint's directory; the open one does.
    peeked, open_peek = answers["sk-isolated"]["peek"], answers["sk-open"]["peek"]
    assert peeked == {secret: "refused: FileNotFoundError",
                      database: "refused: FileNotFoundError", endpoints: ["sk-isolated"]}
    assert open_peek[secret] == os.path.getsize(secret) and open_peek[database] > 0
    assert {"sk-open", "sk-isolated"} <= set(open_peek[endpoints])

    # Batch transform of the isolated model: its handlers are cut off there too.
    s3.put_object(Bucket=BUCKET, Key="sk-in/rows.json", Body=json.dumps(rows).encode())
    sm.create_transform_job(
        TransformJobName="sk-isolated-tx", ModelName="sk-isolated",
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/sk-in"}},
            "ContentType": "application/json"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/sk-out"},
        TransformResources={"InstanceCount": 1, "InstanceType": "ml.m5.large"})
    done = wait_for(sm, "sk-isolated-tx", timeout=120)
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    output = json.loads(read(s3, "sk-out/rows.json.out"))
    assert output["predictions"] == [0, 2]
    assert all(p.startswith("unreachable: ") for p in output["at_predict"].values()), output
    assert output["peek"] == {path: "refused: FileNotFoundError"
                              for path in (secret, database, endpoints)}


def test_a_machine_without_namespaces_fails_the_endpoint_and_transform_saying_why(
        sm, s3, monkeypatch):
    """What a machine that refuses unshare answers (the kernel's refusal stood in for: this
    one allows it): the endpoint and the transform job fail with isolation's reason."""
    reason = ("EnableNetworkIsolation needs a network namespace of its own for the job (or "
              "each model worker), which this machine refuses (unshare(CLONE_NEWNET) failed: "
              "Operation not permitted); run opensage as root or with CAP_SYS_ADMIN, or turn "
              "network isolation off.")
    monkeypatch.setattr(isolation, "unavailable", lambda: reason)
    job = train(sm, s3, "linear-learner", {"predictor_type": "regressor", "feature_dim": 1,
                                           "epochs": 1},
                {"train": (b"1,1\n2,2\n3,3\n4,4\n", "text/csv")})
    sm.create_model(ModelName="refused", ExecutionRoleArn=ROLE, EnableNetworkIsolation=True,
                    PrimaryContainer={"Image": image("linear-learner"),
                                      "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    endpoint_config(sm, "refused", "refused")
    sm.create_endpoint(EndpointName="refused", EndpointConfigName="refused")
    deadline = time.monotonic() + 60
    while (described := sm.describe_endpoint(EndpointName="refused"))[
            "EndpointStatus"] == "Creating" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == f"Production variant AllTraffic: {reason}"
    s3.put_object(Bucket=BUCKET, Key="refused-in/rows.csv", Body=b"1\n")
    sm.create_transform_job(
        TransformJobName="refused-tx", ModelName="refused",
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/refused-in"}},
            "ContentType": "text/csv"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/refused-out"},
        TransformResources={"InstanceCount": 1, "InstanceType": "ml.m5.large"})
    done = wait_for(sm, "refused-tx")
    assert done["TransformJobStatus"] == "Failed"
    assert done["FailureReason"] == reason
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key="refused-out/rows.csv.out")


def test_an_isolated_endpoint_stays_isolated_across_a_restart(tmp_path):
    import boto3
    from botocore.config import Config

    from opensage.server import start_in_thread
    from opensage.settings import Settings
    from tests.integration.test_endpoints import make_model
    from tests.integration.test_training_jobs import XGB_IMAGE

    def clients(url: str) -> tuple[Any, Any, Any]:
        kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "k",
                  "aws_secret_access_key": "s", "config": Config(retries={"max_attempts": 1})}
        return (boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs),
                boto3.client("sagemaker-runtime", **kwargs))

    settings = Settings(data_dir=tmp_path, port=0)
    artifact, _booster, rows = make_model(seed=1)
    body = "\n".join(",".join(map(repr, map(float, r))) for r in rows)
    first = start_in_thread(settings)
    try:
        sm, s3, runtime = clients(first.url)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="kept/model.tar.gz", Body=artifact)
        sm.create_model(ModelName="kept", ExecutionRoleArn=ROLE, EnableNetworkIsolation=True,
                        PrimaryContainer={"Image": XGB_IMAGE,
                                          "ModelDataUrl": f"s3://{BUCKET}/kept/model.tar.gz"})
        endpoint_config(sm, "kept", "kept")
        sm.create_endpoint(EndpointName="kept", EndpointConfigName="kept")
        in_service(sm, "kept")
        before = runtime.invoke_endpoint(EndpointName="kept", ContentType="text/csv",
                                         Body=body)["Body"].read()
    finally:
        first.stop()
    second = start_in_thread(settings)
    try:
        sm, _, runtime = clients(second.url)
        assert sm.describe_endpoint(EndpointName="kept")["EndpointStatus"] == "InService"
        after = runtime.invoke_endpoint(EndpointName="kept", ContentType="text/csv",
                                        Body=body)["Body"].read()
        assert after == before
        [worker] = _services(second).endpoints._live["kept"].workers
        assert namespace(worker.proc.pid) != namespace(os.getpid())
        assert interfaces(worker.proc.pid) == {"lo"}
    finally:
        second.stop()
