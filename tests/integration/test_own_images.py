"""The user's own images through a real container engine (dockerd started by the tests, the
image built here from a static busybox: see ``own_images.py``): training, a failing image,
stop and MaxRuntime, network isolation, entry point overrides, a missing image, an endpoint
and a transform job, and the SDK's generic ``Estimator``. Without an engine these tests skip
with the reason; the refusal without one is tested in ``test_training_jobs.py``."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from opensage.server import RunningServer, start_in_thread
from opensage.settings import Settings
from tests.conftest import ACCOUNT, REGION
from tests.integration.own_images import IMAGE, containers, engine_url  # noqa: F401
from tests.integration.test_training_jobs import BUCKET, ROLE

TIMEOUT = 120.0


@pytest.fixture(scope="module")
def server(engine_url: str,  # noqa: F811 - the fixture
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """This module's server: the shared one's settings, with the tests' container engine."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("opensage-own"), port=0,
                        account_id=ACCOUNT, region=REGION, enable_reset=True,
                        container_engine=engine_url, stop_grace_seconds=10)
    running = start_in_thread(settings)
    yield running
    running.stop()


@pytest.fixture
def s3(client: Any) -> Any:
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="own/train/a.csv", Body=b"1,x\n2,y\n")
    s3.put_object(Bucket=BUCKET, Key="own/train/sub/b.csv", Body=b"3,z\n")
    return s3


def request(name: str, mode: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": {"mode": mode},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/own/train"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    body.update(overrides)
    return body


def wait_for(sm: Any, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        assert time.monotonic() < deadline, f"{name} still {job['TrainingJobStatus']}"
        time.sleep(0.1)


def model_files(s3: Any, job: dict[str, Any]) -> dict[str, str]:
    url = urlparse(job["ModelArtifacts"]["S3ModelArtifacts"])
    body = s3.get_object(Bucket=url.netloc, Key=url.path.lstrip("/"))["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name.removeprefix("./"): tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile()}


def log_lines(logs: Any, group: str, prefix: str) -> list[str]:
    streams = logs.describe_log_streams(logGroupName=group,
                                        logStreamNamePrefix=prefix)["logStreams"]
    return [e["message"] for s in streams for e in logs.get_log_events(
        logGroupName=group, logStreamName=s["logStreamName"], startFromHead=True)["events"]]


def wait_for_log(logs: Any, group: str, prefix: str, text: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not any(text in line for line in _lines_or_none(logs, group, prefix)):
        assert time.monotonic() < deadline, f"no {text!r} in {group} {prefix}"
        time.sleep(0.1)


def _lines_or_none(logs: Any, group: str, prefix: str) -> list[str]:
    try:
        return log_lines(logs, group, prefix)
    except logs.exceptions.ResourceNotFoundException:
        return []


def test_own_image_trains_as_sagemaker_runs_it(sm: Any, s3: Any, client: Any,
                                               engine_url: str) -> None:  # noqa: F811
    """``<image> train`` with the job's directory at /opt/ml: the channel read, the
    hyperparameters and Environment seen, the model uploaded, metrics parsed, logs kept, the
    container removed."""
    sm.create_training_job(**request(
        "own-fit", "fit", HyperParameters={"mode": "fit", "scale": "2"},
        Environment={"MY_SETTING": "hello"},
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File",
                                "MetricDefinitions": [{"Name": "train:loss",
                                                       "Regex": "train_loss=([0-9.]+)"}]}))
    job = wait_for(sm, "own-fit")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = model_files(s3, job)
    assert files == {"weight.txt": "12\n", "setting.txt": "hello\n"}  # (1+2+3) x 2
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [
        ("train:loss", 0.125)]
    lines = log_lines(client("logs"), "/aws/sagemaker/TrainingJobs", "own-fit/algo-1-")
    assert "train: mode=fit job=own-fit" in lines[0] and lines[0].endswith("cmd=train args=")
    assert "epoch 2 train_loss=0.125" in lines
    assert containers(engine_url, "training") == []


def test_failing_image_fails_with_its_failure_file(sm: Any, s3: Any, client: Any) -> None:
    sm.create_training_job(**request("own-fail", "fail"))
    job = wait_for(sm, "own-fail")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "bad input: column 3 is not numeric"
    lines = log_lines(client("logs"), "/aws/sagemaker/TrainingJobs", "own-fail/")
    assert "about to fail" in lines  # stderr too


def test_stop_and_max_runtime(sm: Any, s3: Any, client: Any, engine_url: str) -> None:  # noqa: F811
    """StopTrainingJob: SIGTERM to the container, whose model saved meanwhile is uploaded;
    MaxRuntime ends one the same way."""
    sm.create_training_job(**request("own-stop", "wait"))
    wait_for_log(client("logs"), "/aws/sagemaker/TrainingJobs", "own-stop/",
                 "train: waiting for a stop")
    sm.stop_training_job(TrainingJobName="own-stop")
    job = wait_for(sm, "own-stop")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert model_files(s3, job) == {"partial.txt": "partial\n"}
    assert "train: SIGTERM" in log_lines(client("logs"), "/aws/sagemaker/TrainingJobs",
                                         "own-stop/")

    sm.create_training_job(**request("own-long", "wait",
                                     StoppingCondition={"MaxRuntimeInSeconds": 1}))
    job = wait_for(sm, "own-long")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped",
                                                                 "MaxRuntimeExceeded")
    assert containers(engine_url, "training") == []


def test_network_isolation_takes_the_network_away(sm: Any, s3: Any,
                                                  server: RunningServer) -> None:
    """Not isolated, a container reaches the server as a process of this machine would;
    with EnableNetworkIsolation it reaches nothing."""
    port = str(urlparse(server.url).port)
    sm.create_training_job(**request("own-open", "net", Environment={"SERVER_PORT": port}))
    sm.create_training_job(**request("own-closed", "net", Environment={"SERVER_PORT": port},
                                     EnableNetworkIsolation=True))
    opened, closed = wait_for(sm, "own-open"), wait_for(sm, "own-closed")
    assert opened["TrainingJobStatus"] == closed["TrainingJobStatus"] == "Completed"
    assert model_files(s3, opened) == {"net.txt": "reachable\n"}
    assert model_files(s3, closed) == {"net.txt": "unreachable\n"}
    assert closed["EnableNetworkIsolation"] is True


def test_container_entrypoint_and_a_missing_image(sm: Any, s3: Any, client: Any) -> None:
    sm.create_training_job(**request(
        "own-entry", "fit", AlgorithmSpecification={
            "TrainingImage": IMAGE, "TrainingInputMode": "File",
            "ContainerEntrypoint": ["/bin/sh", "-c"],
            "ContainerArguments": ["echo from $TRAINING_JOB_NAME > /opt/ml/model/entry.txt"]}))
    job = wait_for(sm, "own-entry")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert model_files(s3, job) == {"entry.txt": "from own-entry\n"}

    missing = "123456789012.dkr.ecr.us-east-1.amazonaws.com/not-built-here:7"
    sm.create_training_job(**request("own-missing", "fit", AlgorithmSpecification={
        "TrainingImage": missing, "TrainingInputMode": "File"}))
    job = wait_for(sm, "own-missing")
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert missing in reason and "never pulls" in reason
    assert "docker build -t not-built-here:7" in reason and "docker load" in reason


def test_own_image_endpoint_and_transform(sm: Any, s3: Any, client: Any,
                                          engine_url: str) -> None:  # noqa: F811
    """``<image> serve`` behind an endpoint and a transform job: the model unpacked at
    /opt/ml/model, /ping and /invocations on 8080, logs in the endpoint's group, the
    containers removed when done."""
    sm.create_training_job(**request("own-serve-fit", "fit",
                                     HyperParameters={"mode": "fit", "scale": "2"}))
    job = wait_for(sm, "own-serve-fit")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    sm.create_model(ModelName="own-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": IMAGE, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName="own-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "own-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="own-endpoint", EndpointConfigName="own-config")
    deadline = time.monotonic() + TIMEOUT
    while (status := sm.describe_endpoint(EndpointName="own-endpoint")["EndpointStatus"]) in (
            "Creating",):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    described = sm.describe_endpoint(EndpointName="own-endpoint")
    assert status == "InService", described.get("FailureReason")
    runtime = client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName="own-endpoint", ContentType="text/csv",
                                     Body=b"1,a\n2.5,b\n")
    assert answer["Body"].read() == b"12\n30\n"
    assert answer["ContentType"] == "text/csv"
    lines = log_lines(client("logs"), "/aws/sagemaker/Endpoints/own-endpoint", "AllTraffic/")
    assert "serve: weight 12 on port 8080" in lines
    assert len(containers(engine_url, "serving")) == 1

    s3.put_object(Bucket=BUCKET, Key="tx/in/a.csv", Body=b"1\n2\n3\n")
    sm.create_transform_job(
        TransformJobName="own-tx", ModelName="own-model",
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/tx/in/"}},
            "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/tx/out/", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    deadline = time.monotonic() + TIMEOUT
    while (tx := sm.describe_transform_job(TransformJobName="own-tx"))[
            "TransformJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert tx["TransformJobStatus"] == "Completed", tx.get("FailureReason")
    out = s3.get_object(Bucket=BUCKET, Key="tx/out/a.csv.out")["Body"].read()
    assert [float(v) for v in out.split()] == [12.0, 24.0, 36.0]

    sm.delete_endpoint(EndpointName="own-endpoint")
    deadline = time.monotonic() + TIMEOUT
    while containers(engine_url, "serving"):  # the endpoint's and the job's, removed
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_sdk_estimator_with_own_image(sdk_env: Any, s3: Any) -> None:
    """The SDK's generic Estimator, unchanged: fit with an own image, logs streamed."""
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput

    estimator = Estimator(image_uri=IMAGE, role=ROLE, instance_count=1,
                          instance_type="ml.m5.large", output_path=f"s3://{BUCKET}/sdk/",
                          hyperparameters={"mode": "fit", "scale": 3},
                          environment={"MY_SETTING": "sdk"},
                          sagemaker_session=sagemaker.Session())
    estimator.fit({"train": TrainingInput(f"s3://{BUCKET}/own/train")}, logs="All",
                  job_name="own-sdk")
    job = estimator.latest_training_job.describe()
    assert job["TrainingJobStatus"] == "Completed"
    assert estimator.model_data == f"s3://{BUCKET}/sdk/own-sdk/output/model.tar.gz"
    assert model_files(s3, job) == {"weight.txt": "18\n", "setting.txt": "sdk\n"}


def test_own_image_processing_job(sm: Any, s3: Any, client: Any,
                                  engine_url: str) -> None:  # noqa: F811
    """``docker run --entrypoint [ContainerEntrypoint] image [ContainerArguments]`` with the
    inputs at their LocalPath, the outputs uploaded, ExitMessage and logs kept."""
    script = ("find /opt/ml/processing/input -type f | xargs cat | "
              "awk -F, '{s += $1} END {print s}' > /opt/ml/processing/result/sum.txt; "
              "echo \"processed $1\"; echo all done > /opt/ml/output/message")
    sm.create_processing_job(
        ProcessingJobName="own-proc", RoleArn=ROLE,
        ProcessingResources={"ClusterConfig": {"InstanceType": "ml.m5.large",
                                               "InstanceCount": 1, "VolumeSizeInGB": 1}},
        AppSpecification={"ImageUri": IMAGE, "ContainerEntrypoint": ["/bin/sh", "-c"],
                          "ContainerArguments": [script, "sh", "rows"]},
        ProcessingInputs=[{"InputName": "data", "S3Input": {
            "S3Uri": f"s3://{BUCKET}/own/train", "LocalPath": "/opt/ml/processing/input",
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "result", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/proc/result", "LocalPath": "/opt/ml/processing/result",
            "S3UploadMode": "EndOfJob"}}]})
    deadline = time.monotonic() + TIMEOUT
    while (job := sm.describe_processing_job(ProcessingJobName="own-proc"))[
            "ProcessingJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ExitMessage"] == "all done\n"
    assert s3.get_object(Bucket=BUCKET, Key="proc/result/sum.txt")["Body"].read() == b"6\n"
    assert "processed rows" in log_lines(client("logs"), "/aws/sagemaker/ProcessingJobs",
                                         "own-proc/")
    assert containers(engine_url, "processing") == []


def _inspect(url: str, container_id: str) -> dict[str, Any]:
    import docker

    client = docker.DockerClient(base_url=url)
    try:
        return dict(client.api.inspect_container(container_id))
    finally:
        client.close()


def _the_running_container(url: str, purpose: str) -> dict[str, Any]:
    """The one running container opensage started for ``purpose``, inspected. An earlier
    test's container may still be on its way out (listed, then gone, or still stopping):
    those are passed over until one running container is left."""
    import docker

    deadline = time.monotonic() + TIMEOUT
    while True:
        running = []
        for container_id in containers(url, purpose):
            try:
                inspected = _inspect(url, container_id)
            except docker.errors.NotFound:
                continue
            if inspected["State"]["Running"]:
                running.append(inspected)
        if len(running) == 1:
            return running[0]
        assert time.monotonic() < deadline, [c["Id"][:12] for c in running]
        time.sleep(0.2)


def _interfaces(pid: int) -> set[str]:
    """The network interfaces the process ``pid`` sees (those of its namespace)."""
    with open(f"/proc/{pid}/net/dev") as dev:
        return {line.split(":", 1)[0].strip() for line in dev.readlines()[2:]}


def test_isolated_own_image_serves_without_a_network(sm: Any, s3: Any, client: Any,
                                                     engine_url: str) -> None:  # noqa: F811
    """With EnableNetworkIsolation the model's container has no network (NetworkMode none:
    its own loopback only, no published port), yet the endpoint and a transform job reach
    its model server (through the relay that connects from inside its namespace)."""
    sm.create_training_job(**request("own-iso-fit", "fit",
                                     HyperParameters={"mode": "fit", "scale": "1"}))
    job = wait_for(sm, "own-iso-fit")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    sm.create_model(ModelName="own-iso", ExecutionRoleArn=ROLE, EnableNetworkIsolation=True,
                    PrimaryContainer={"Image": IMAGE,
                                      "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName="own-iso", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "own-iso", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="own-iso", EndpointConfigName="own-iso")
    deadline = time.monotonic() + TIMEOUT
    while (described := sm.describe_endpoint(EndpointName="own-iso"))[
            "EndpointStatus"] == "Creating":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    runtime = client("sagemaker-runtime")
    for _ in range(3):  # one connection each: the container's server closes every one
        answer = runtime.invoke_endpoint(EndpointName="own-iso", ContentType="text/csv",
                                         Body=b"1,a\n2.5,b\n")
        assert answer["Body"].read() == b"6\n15\n"
    inspected = _the_running_container(engine_url, "serving")
    assert inspected["HostConfig"]["NetworkMode"] == "none"
    assert not inspected["NetworkSettings"]["Ports"]  # nothing published
    assert _interfaces(int(inspected["State"]["Pid"])) == {"lo"}

    s3.put_object(Bucket=BUCKET, Key="iso-tx/in/a.csv", Body=b"1\n2\n")
    sm.create_transform_job(
        TransformJobName="own-iso-tx", ModelName="own-iso",
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/iso-tx/in/"}},
            "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/iso-tx/out/", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    deadline = time.monotonic() + TIMEOUT
    while (tx := sm.describe_transform_job(TransformJobName="own-iso-tx"))[
            "TransformJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert tx["TransformJobStatus"] == "Completed", tx.get("FailureReason")
    out = s3.get_object(Bucket=BUCKET, Key="iso-tx/out/a.csv.out")["Body"].read()
    assert [float(v) for v in out.split()] == [6.0, 12.0]

    sm.delete_endpoint(EndpointName="own-iso")
    deadline = time.monotonic() + TIMEOUT
    while containers(engine_url, "serving"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
