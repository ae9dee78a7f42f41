"""Jobs act as their execution role under ``--auth sigv4`` (boto3 with real keys, a real
server, real jobs): inputs are read and outputs written only as the role's identity policies
allow, with SageMaker's FailureReason otherwise, and the job's own code calls the server with
the role's temporary credentials."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from opensage.runner.environments import Environments, framework_for_image
from opensage.runner.environments.builder import MARKER
from opensage.testing import ROOT_KEYS, frameworks_dir_for_tests, server_process, sigv4_args
from tests.integration.script_jobs import SKLEARN_IMAGE, script_request, sourcedir
from tests.integration.test_training_jobs import XGB_IMAGE, regression_csv

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "jobrole"
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}
# reads a/ (and code/), may list c/ without reading it, writes out/; nothing else
READER = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}",
     "Condition": {"StringLike": {"s3:prefix": ["a/*", "c/*", "code/*"]}}},
    {"Effect": "Allow", "Action": "s3:GetObject",
     "Resource": [f"arn:aws:s3:::{BUCKET}/a/*", f"arn:aws:s3:::{BUCKET}/code/*"]},
    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/out/*"}]}
# everything on the bucket, but never a write under denied/
NO_WRITE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:*",
     "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]},
    {"Effect": "Deny", "Action": "s3:PutObject",
     "Resource": f"arn:aws:s3:::{BUCKET}/denied/*"}]}
# everything on the bucket, but never a write of a *.secret object
NO_SECRET = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:*",
     "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]},
    {"Effect": "Deny", "Action": "s3:PutObject",
     "Resource": f"arn:aws:s3:::{BUCKET}/*.secret"}]}
# as test_script_mode's boto3 job pins them: the overlay it built is reused, if there
BOTO3_REQUIREMENTS = "".join(f"{name}=={version(name)}\n" for name in (
    "boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"))


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


class Server:
    def __init__(self, url: str) -> None:
        self.url = url

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=ROOT_KEYS[0], aws_secret_access_key=ROOT_KEYS[1],
                            config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("jobrole-data")
    with server_process(data_dir, *sigv4_args(), "--account-id", ACCOUNT) as (url, _proc):
        server = Server(url)
        iam, s3 = server.client("iam"), server.client("s3")
        for name, policy in (("reader", READER), ("nowrite", NO_WRITE),
                             ("nosecret", NO_SECRET)):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
            iam.put_role_policy(RoleName=name, PolicyName="s3",
                                PolicyDocument=json.dumps(policy))
        s3.create_bucket(Bucket=BUCKET)
        csv, _, _ = regression_csv(100)
        for prefix in ("a", "b", "c"):
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}/train/data.csv", Body=csv)
        yield server


def xgb_job(name: str, data: str, role: str, output: str = "out") -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": role,
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv",
                             "DataSource": {"S3DataSource": {
                                 "S3DataType": "S3Prefix",
                                 "S3Uri": f"s3://{BUCKET}/{data}/train",
                                 "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/{output}/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": {"objective": "reg:squarederror", "num_round": "5"}}


def finished(describe: Any, status_key: str, timeout: float = 120, **name: str
             ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = describe(**name)
        if job[status_key] in ("Completed", "Failed", "Stopped"):
            return job
        assert time.monotonic() < deadline, f"{name} still {job[status_key]}"
        time.sleep(0.05)


def train(server: Server, request: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    sm = server.client("sagemaker")
    sm.create_training_job(**request)
    return finished(sm.describe_training_job, "TrainingJobStatus", timeout,
                    TrainingJobName=request["TrainingJobName"])


def keys(server: Server, prefix: str) -> list[str]:
    listed = server.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def denial(session: str, role: str, action: str, resource: str, explicit: bool = False) -> str:
    why = ("with an explicit deny in an identity-based policy" if explicit
           else f"because no identity-based policy allows the {action} action")
    return (f"AccessDenied (403): User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session} "
            f"is not authorized to perform: {action} on resource: {resource} {why}")


def test_a_job_reads_only_the_prefixes_its_role_may(server: Server) -> None:
    allowed = train(server, xgb_job("role-a", "a", role_arn("reader")))
    assert allowed["TrainingJobStatus"] == "Completed", allowed.get("FailureReason")
    assert keys(server, "out/role-a/") == ["out/role-a/output/model.tar.gz"]

    unlisted = train(server, xgb_job("role-b", "b", role_arn("reader")))
    assert unlisted["TrainingJobStatus"] == "Failed"
    assert unlisted["FailureReason"] == (
        f"ClientError: Data download failed:Could not list s3://{BUCKET}/b/train: "
        + denial("role-b", "reader", "s3:ListBucket", f"arn:aws:s3:::{BUCKET}"))
    assert [t["Status"] for t in unlisted["SecondaryStatusTransitions"]][-2:] == [
        "Downloading", "Failed"]

    unreadable = train(server, xgb_job("role-c", "c", role_arn("reader")))
    assert unreadable["TrainingJobStatus"] == "Failed"
    assert unreadable["FailureReason"] == "ClientError: Data download failed:" + denial(
        "role-c", "reader", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/c/train/data.csv")
    assert keys(server, "out/role-b/") == keys(server, "out/role-c/") == []


def test_output_is_written_only_where_the_role_may_write(server: Server) -> None:
    job = train(server, xgb_job("role-w", "b", role_arn("nowrite"), output="denied"))
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: Data upload failed:" + denial(
        "role-w", "nowrite", "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/denied/role-w/output/model.tar.gz", explicit=True)
    assert keys(server, "denied/role-w/") == []
    # the same role may write elsewhere
    job = train(server, xgb_job("role-w2", "b", role_arn("nowrite")))
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert keys(server, "out/role-w2/") == ["out/role-w2/output/model.tar.gz"]


def test_a_role_nobody_created_acts_as_the_server(server: Server) -> None:
    job = train(server, xgb_job("role-implicit", "b", role_arn("opensage"),
                                output="denied"))
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert keys(server, "denied/role-implicit/") == [
        "denied/role-implicit/output/model.tar.gz"]


def _built(requirements: str | None, scratch: Path) -> bool:
    """Whether the scikit-learn environment (with that overlay) is in the test cache."""
    framework = framework_for_image(SKLEARN_IMAGE, script_mode=True)
    assert framework is not None
    environments = Environments(frameworks_dir_for_tests())
    if requirements is None:
        return environments.is_built(framework)
    file = scratch / "requirements.txt"
    file.write_text(requirements)
    return (environments.location(framework, file) / MARKER).is_file()


def test_a_processing_job_reads_and_writes_as_its_role(server: Server, tmp_path: Path) -> None:
    if not _built(None, tmp_path):
        pytest.skip("the scikit-learn environment is not built in the test cache")
    s3, sm = server.client("s3"), server.client("sagemaker")
    s3.put_object(Bucket=BUCKET, Key="code/copy.py", Body=textwrap.dedent("""
        import shutil
        shutil.copytree("/opt/ml/processing/input/data", "/opt/ml/processing/result",
                        dirs_exist_ok=True)
    """).encode())

    def process(name: str, data: str, role: str, output: str) -> dict[str, Any]:
        def s3_input(input_name: str, uri: str, local: str) -> dict[str, Any]:
            return {"InputName": input_name, "S3Input": {
                "S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix",
                "S3InputMode": "File"}}

        sm.create_processing_job(
            ProcessingJobName=name, RoleArn=role_arn(role),
            ProcessingResources={"ClusterConfig": {"InstanceType": "ml.m5.large",
                                                   "InstanceCount": 1, "VolumeSizeInGB": 5}},
            AppSpecification={"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": [
                "python3", "/opt/ml/processing/input/code/copy.py"]},
            ProcessingInputs=[
                s3_input("code", f"s3://{BUCKET}/code/copy.py",
                         "/opt/ml/processing/input/code"),
                s3_input("data", f"s3://{BUCKET}/{data}/train", "/opt/ml/processing/input/data")],
            ProcessingOutputConfig={"Outputs": [{"OutputName": "result", "S3Output": {
                "S3Uri": f"s3://{BUCKET}/{output}/{name}",
                "LocalPath": "/opt/ml/processing/result", "S3UploadMode": "EndOfJob"}}]},
            StoppingCondition={"MaxRuntimeInSeconds": 300})
        return finished(sm.describe_processing_job, "ProcessingJobStatus",
                        ProcessingJobName=name)

    job = process("proc-a", "a", "reader", "out")
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert keys(server, "out/proc-a/") == ["out/proc-a/data.csv"]
    job = process("proc-b", "b", "reader", "out")
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f"ClientError: Data download failed:Could not list s3://{BUCKET}/b/train: "
        + denial("proc-b", "reader", "s3:ListBucket", f"arn:aws:s3:::{BUCKET}"))
    job = process("proc-w", "b", "nowrite", "denied")
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: Data upload failed:" + denial(
        "proc-w", "nowrite", "s3:PutObject", f"arn:aws:s3:::{BUCKET}/denied/proc-w/data.csv",
        explicit=True)
    assert keys(server, "denied/proc-w/") == []


# two files appear in the Continuous output at once (one rename), then the job waits to be
# ended: only a denied upload round ends it before its MaxRuntime
CONTINUOUS_SCRIPT = """
import os, time
os.makedirs("/opt/ml/processing/staging/batch")
for name in ("a.csv", "b.secret"):
    with open(os.path.join("/opt/ml/processing/staging/batch", name), "w") as f:
        f.write(name)
os.rename("/opt/ml/processing/staging/batch", "/opt/ml/processing/result/batch")
print("both written", flush=True)
time.sleep(3600)
"""


def test_a_continuous_output_round_is_written_whole_or_not_at_all(server: Server,
                                                                   tmp_path: Path) -> None:
    if not _built(None, tmp_path):
        pytest.skip("the scikit-learn environment is not built in the test cache")
    s3, sm = server.client("s3"), server.client("sagemaker")
    s3.put_object(Bucket=BUCKET, Key="code/continuous.py", Body=CONTINUOUS_SCRIPT.encode())
    sm.create_processing_job(
        ProcessingJobName="proc-cont", RoleArn=role_arn("nosecret"),
        ProcessingResources={"ClusterConfig": {"InstanceType": "ml.m5.large",
                                               "InstanceCount": 1, "VolumeSizeInGB": 5}},
        AppSpecification={"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": [
            "python3", "/opt/ml/processing/input/code/continuous.py"]},
        ProcessingInputs=[{"InputName": "code", "S3Input": {
            "S3Uri": f"s3://{BUCKET}/code/continuous.py",
            "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix",
            "S3InputMode": "File"}}],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "result", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/out/proc-cont", "LocalPath": "/opt/ml/processing/result",
            "S3UploadMode": "Continuous"}}]},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    job = finished(sm.describe_processing_job, "ProcessingJobStatus", timeout=300,
                   ProcessingJobName="proc-cont")
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: Data upload failed:" + denial(
        "proc-cont", "nosecret", "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/out/proc-cont/batch/b.secret", explicit=True)
    assert keys(server, "out/proc-cont/") == []  # not even a.csv, which the role may write


CALLER_SCRIPT = """
    import json, os
    import boto3
    from botocore.exceptions import ClientError

    seen = {"identity": boto3.client("sts").get_caller_identity()["Arn"],
            "session": os.environ.get("AWS_SESSION_TOKEN", "")[:4]}
    s3 = boto3.client("s3")
    seen["a"] = [o["Key"] for o in s3.list_objects_v2(Bucket="jobrole", Prefix="a/")["Contents"]]
    try:
        s3.list_objects_v2(Bucket="jobrole", Prefix="b/")
    except ClientError as err:
        seen["b"] = err.response["Error"]["Code"]
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)
"""


def test_the_jobs_code_calls_the_server_as_its_role(server: Server, tmp_path: Path) -> None:
    if not _built(BOTO3_REQUIREMENTS, tmp_path):
        pytest.skip("no scikit-learn environment with boto3 in the test cache")
    s3 = server.client("s3")
    s3.put_object(Bucket=BUCKET, Key="code/caller.tar.gz", Body=sourcedir(
        {"train.py": CALLER_SCRIPT, "requirements.txt": BOTO3_REQUIREMENTS}))
    request = script_request("role-code", f"s3://{BUCKET}/code/caller.tar.gz",
                             RoleArn=role_arn("reader"),
                             OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out/"})
    job = train(server, request, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    blob = s3.get_object(Bucket=BUCKET, Key="out/role-code/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        member = tar.extractfile("seen.json")
        assert member is not None
        seen = json.loads(member.read())
    assert seen == {"identity": f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/role-code",
                    "session": "IQoJ", "a": ["a/train/data.csv"], "b": "AccessDenied"}


def test_a_transform_job_reads_and_writes_as_its_models_role(server: Server) -> None:
    trained = train(server, xgb_job("role-model", "b", role_arn("nowrite")))
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    s3, sm = server.client("s3"), server.client("sagemaker")
    _, x, _ = regression_csv(20)
    rows = "\n".join(",".join(f"{v:.6f}" for v in row) for row in x).encode()
    for prefix in ("a", "b"):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/infer/x.csv", Body=rows)
    # the reader may read its model where it lies under a/, not under out/
    s3.copy_object(Bucket=BUCKET, Key="a/models/role-model.tar.gz",
                   CopySource={"Bucket": BUCKET, "Key": "out/role-model/output/model.tar.gz"})
    sm.create_model(ModelName="role-model", ExecutionRoleArn=role_arn("reader"),
                    PrimaryContainer={"Image": XGB_IMAGE, "ModelDataUrl":
                                      f"s3://{BUCKET}/a/models/role-model.tar.gz"})

    def transform(name: str, data: str, model: str = "role-model",
                  output: str = "out") -> dict[str, Any]:
        sm.create_transform_job(
            TransformJobName=name, ModelName=model,
            TransformInput={"DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{data}/infer/"}},
                "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": f"s3://{BUCKET}/{output}/{name}/",
                             "AssembleWith": "Line"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
        return finished(sm.describe_transform_job, "TransformJobStatus",
                        TransformJobName=name)

    job = transform("tx-a", "a")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert len(s3.get_object(Bucket=BUCKET, Key="out/tx-a/x.csv.out")["Body"].read()
               .splitlines()) == 20
    job = transform("tx-b", "b")
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f"Unable to list the input S3 location s3://{BUCKET}/b/infer/: Data download failed:"
        f"Could not list s3://{BUCKET}/b/infer/: "
        + denial("tx-b", "reader", "s3:ListBucket", f"arn:aws:s3:::{BUCKET}"))
    assert keys(server, "out/tx-b/") == []

    # the model's role may not write the output prefix: nothing is written, the job says why
    sm.create_model(ModelName="role-model-nowrite", ExecutionRoleArn=role_arn("nowrite"),
                    PrimaryContainer={"Image": XGB_IMAGE, "ModelDataUrl": trained[
                        "ModelArtifacts"]["S3ModelArtifacts"]})
    s3.put_object(Bucket=BUCKET, Key="b/infer/y.csv", Body=rows)  # two inputs, two outputs
    job = transform("tx-w", "b", model="role-model-nowrite", output="denied")
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f"Unable to write the output s3://{BUCKET}/denied/tx-w/x.csv.out: Data upload failed:"
        + denial("tx-w", "nowrite", "s3:PutObject",
                 f"arn:aws:s3:::{BUCKET}/denied/tx-w/x.csv.out", explicit=True))
    assert keys(server, "denied/tx-w/") == []
    job = transform("tx-w2", "b", model="role-model-nowrite")  # elsewhere it may write
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert keys(server, "out/tx-w2/") == ["out/tx-w2/x.csv.out", "out/tx-w2/y.csv.out"]

    # the model's role may not read the model's artifact: the job fails before reading
    sm.create_model(ModelName="role-model-hidden", ExecutionRoleArn=role_arn("reader"),
                    PrimaryContainer={"Image": XGB_IMAGE, "ModelDataUrl": trained[
                        "ModelArtifacts"]["S3ModelArtifacts"]})
    job = transform("tx-m", "a", model="role-model-hidden")
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"] == model_data_reason(
        "tx-m", "reader", trained["ModelArtifacts"]["S3ModelArtifacts"])
    assert keys(server, "out/tx-m/") == []


def model_data_reason(session: str, role: str, url: str) -> str:
    return (f"Could not access model data at {url}. Please ensure that the role "
            f'"{role_arn(role)}" exists and that its trust relationship policy allows the '
            'action "sts:AssumeRole" for the service principal "sagemaker.amazonaws.com". '
            'Also ensure that the role has "s3:GetObject" permissions and that the object is '
            f"located in {REGION}. "
            + denial(session, role, "s3:GetObject", "arn:aws:s3:::" + url[len("s3://"):]))


def test_an_endpoint_fetches_its_model_as_its_models_role(server: Server) -> None:
    trained = train(server, xgb_job("ep-model", "b", role_arn("nowrite")))
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    url = trained["ModelArtifacts"]["S3ModelArtifacts"]  # under out/: the reader may not read
    sm = server.client("sagemaker")

    def deploy(name: str, role: str, container: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        sm.create_model(ModelName=name, ExecutionRoleArn=role_arn(role),
                        PrimaryContainer=container or {"Image": XGB_IMAGE, "ModelDataUrl": url})
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "main", "ModelName": name, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        deadline = time.monotonic() + 120
        while True:
            endpoint: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
            if endpoint["EndpointStatus"] not in ("Creating", "Updating"):
                return endpoint
            assert time.monotonic() < deadline, f"{name} still {endpoint['EndpointStatus']}"
            time.sleep(0.05)

    denied = deploy("ep-denied", "reader")
    assert denied["EndpointStatus"] == "Failed"
    assert denied["FailureReason"] == model_data_reason("ep-denied", "reader", url)
    # the same artifact named by a ModelDataSource, or by a registered model package
    by_source = {"Image": XGB_IMAGE, "ModelDataSource": {"S3DataSource": {
        "S3Uri": url, "S3DataType": "S3Object", "CompressionType": "Gzip"}}}
    source = deploy("ep-source", "reader", by_source)
    assert source["EndpointStatus"] == "Failed"
    assert source["FailureReason"] == model_data_reason("ep-source", "reader", url)
    sm.create_model_package(ModelPackageName="ep-package", InferenceSpecification={
        "Containers": [{"Image": XGB_IMAGE, "ModelDataUrl": url}],
        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]})
    package = deploy("ep-package", "reader", {"ModelPackageName": "ep-package"})
    assert package["EndpointStatus"] == "Failed"
    assert package["FailureReason"] == model_data_reason("ep-package", "reader", url)

    allowed = deploy("ep-allowed", "nowrite", by_source)  # a role that may read it: served
    try:
        assert allowed["EndpointStatus"] == "InService", allowed.get("FailureReason")
        _, x, _ = regression_csv(3)
        body = "\n".join(",".join(f"{v:.6f}" for v in row) for row in x)
        answer = server.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="ep-allowed", ContentType="text/csv", Body=body)
        assert len(answer["Body"].read().decode().split(",")) == 3  # a prediction per row
    finally:
        sm.delete_endpoint(EndpointName="ep-allowed")


def test_assume_role_is_bounded_by_the_roles_max_session_duration(server: Server) -> None:
    iam, sts = server.client("iam"), server.client("sts")
    iam.create_role(RoleName="short", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert iam.get_role(RoleName="short")["Role"]["MaxSessionDuration"] == 3600
    arn = role_arn("short")
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=arn, RoleSessionName="sess", DurationSeconds=3601)
    assert refused.value.response["Error"] == {
        "Type": "Sender", "Code": "ValidationError",
        "Message": "The requested DurationSeconds exceeds the MaxSessionDuration set for "
                   "this role."}
    within = sts.assume_role(RoleArn=arn, RoleSessionName="sess", DurationSeconds=3600)
    lasts = within["Credentials"]["Expiration"].timestamp() - time.time()
    assert 3500 < lasts <= 3600

    iam.update_role(RoleName="short", MaxSessionDuration=7200)
    assert iam.get_role(RoleName="short")["Role"]["MaxSessionDuration"] == 7200
    longer = sts.assume_role(RoleArn=arn, RoleSessionName="sess", DurationSeconds=7200)
    assert 7100 < longer["Credentials"]["Expiration"].timestamp() - time.time() <= 7200
    with pytest.raises(ClientError, match="exceeds the MaxSessionDuration"):
        sts.assume_role(RoleArn=arn, RoleSessionName="sess", DurationSeconds=7201)
    with pytest.raises(ClientError, match="Member must have value less than or equal to "
                                          "43200"):
        iam.update_role(RoleName="short", MaxSessionDuration=43201)
    iam.create_role(RoleName="long", AssumeRolePolicyDocument=json.dumps(TRUST),
                    MaxSessionDuration=43200)
    assert iam.get_role(RoleName="long")["Role"]["MaxSessionDuration"] == 43200
    sts.assume_role(RoleArn=role_arn("long"), RoleSessionName="sess", DurationSeconds=43200)



def test_a_bucket_policy_grants_and_denies_a_jobs_role(server: Server) -> None:
    """The role ``reader`` has no identity permission on ``guarded``: its bucket policy lets
    the role read ``a/`` (a job completes) and denies it ``c/`` (a job fails with AWS's
    message naming the resource-based policy)."""
    s3 = server.client("s3")
    s3.create_bucket(Bucket="guarded")
    csv, _, _ = regression_csv(100)
    for prefix in ("a", "c"):
        s3.put_object(Bucket="guarded", Key=f"{prefix}/train/data.csv", Body=csv)
    reader = {"AWS": role_arn("reader")}
    s3.put_bucket_policy(Bucket="guarded", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": reader, "Action": ["s3:ListBucket"],
             "Resource": "arn:aws:s3:::guarded"},
            {"Effect": "Allow", "Principal": reader, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::guarded/*"},
            {"Effect": "Deny", "Principal": reader, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::guarded/c/*"}]}))

    def guarded_job(name: str, data: str) -> dict[str, Any]:
        request = xgb_job(name, data, role_arn("reader"))
        channel = request["InputDataConfig"][0]["DataSource"]["S3DataSource"]
        channel["S3Uri"] = f"s3://guarded/{data}/train"
        return train(server, request)

    allowed = guarded_job("bp-a", "a")
    assert allowed["TrainingJobStatus"] == "Completed", allowed.get("FailureReason")
    assert keys(server, "out/bp-a/") == ["out/bp-a/output/model.tar.gz"]
    refused = guarded_job("bp-c", "c")
    assert refused["TrainingJobStatus"] == "Failed"
    assert refused["FailureReason"] == (
        "ClientError: Data download failed:AccessDenied (403): User: "
        f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/bp-c is not authorized to perform: "
        "s3:GetObject on resource: arn:aws:s3:::guarded/c/train/data.csv with an explicit "
        "deny in a resource-based policy")
    assert keys(server, "out/bp-c/") == []
