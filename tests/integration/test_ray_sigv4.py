"""``opensage server --executor ray --auth sigv4``: a job's hosts on the Ray cluster reach the
objects through the S3 facade with credentials the server issued for the job (its role's
session; a short-lived session of the server's own where it has no created role), so the
facade checks each of their calls as the role, and a denial fails the job with the same
FailureReason as on the server's machine.

The cluster and its private network namespace are ``test_ray_executor``'s fixtures (a
cluster of this module's own: they are module-scoped).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from opensage.testing import ROOT_KEYS, server_process, sigv4_args
from tests.integration import test_ray_executor as ray_tests
from tests.integration.test_endpoints import FAST
from tests.integration.test_job_role import NO_WRITE, READER, TRUST, denial, xgb_job
from tests.integration.test_ray_executor import INSTANCE, SERVING, Cluster
from tests.integration.test_training_jobs import regression_csv, wait_for

pytest.importorskip("ray", reason="the ray extra is not installed")
netns = ray_tests.netns  # the fixtures, by name: a cluster of this module's own
cluster = ray_tests.cluster
ACCOUNT = "123456789012"
BUCKET = "jobrole"  # test_job_role's READER policy names it


@pytest.fixture(scope="module")
def client(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """boto3 clients (root keys) of a sigv4 server on the cluster, with the ``reader`` role
    (reads a/, may list but not read c/, writes out/), the ``nowrite`` role (anything but a
    write under denied/) and data under a/, b/ and c/."""
    data_dir: Path = tmp_path_factory.mktemp("ray-sigv4")
    output: list[str] = []

    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                            aws_access_key_id=ROOT_KEYS[0], aws_secret_access_key=ROOT_KEYS[1],
                            config=Config(retries={"max_attempts": 1}))

    try:
        with server_process(data_dir, *sigv4_args(), "--account-id", ACCOUNT, "--executor",
                            "ray", "--ray-address", cluster.address,
                            output=output) as (url, _proc):
            iam, s3 = make("iam"), make("s3")
            for role, policy in (("reader", READER), ("nowrite", NO_WRITE)):
                iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))
                iam.put_role_policy(RoleName=role, PolicyName="s3",
                                    PolicyDocument=json.dumps(policy))
            s3.create_bucket(Bucket=BUCKET)
            csv, _, _ = regression_csv(100)
            for prefix in ("a", "b", "c"):
                s3.put_object(Bucket=BUCKET, Key=f"{prefix}/train/data.csv", Body=csv)
            yield make
    finally:  # what the server said, to read when a test failed
        (data_dir / "server.log").write_text("\n".join(output))


def _train(client: Any, name: str, data: str, role: str, output: str = "out"
           ) -> dict[str, Any]:
    sm = client("sagemaker")
    request = xgb_job(name, data, f"arn:aws:iam::{ACCOUNT}:role/{role}", output)
    request["ResourceConfig"]["InstanceType"] = INSTANCE
    sm.create_training_job(**request)
    job: dict[str, Any] = wait_for(sm, name, timeout=180)
    return job


def _keys(client: Any, prefix: str) -> list[str]:
    listed = client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_jobs_on_the_cluster_read_and_write_as_their_role_or_the_server(client: Any) -> None:
    # the role may read a/ and write out/: its hosts did both on the cluster, as the role
    job = _train(client, "ray-role-a", "a", "reader")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert _keys(client, "out/ray-role-a/") == ["out/ray-role-a/output/model.tar.gz"]
    # a role nobody created: the hosts sign with a session of the server's own
    job = _train(client, "ray-implicit", "b", "opensage")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert _keys(client, "out/ray-implicit/") == ["out/ray-implicit/output/model.tar.gz"]
    # a model instance on the cluster fetches that model with a session of its own
    sm = client("sagemaker")
    sm.create_model(ModelName="ray-sigv4", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x",
                    PrimaryContainer={"Image": job["AlgorithmSpecification"]["TrainingImage"],
                                      "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName="ray-sigv4", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "ray-sigv4", "InitialInstanceCount": 1,
        "InstanceType": SERVING, "InitialVariantWeight": 1}])
    sm.create_endpoint(EndpointName="ray-sigv4", EndpointConfigName="ray-sigv4")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ray-sigv4", WaiterConfig=FAST)
    answer = client("sagemaker-runtime").invoke_endpoint(
        EndpointName="ray-sigv4", ContentType="text/csv", Accept="text/csv",
        Body=b"1,0,0,0\n-1,0,0,0\n")["Body"].read().decode()
    high, low = (float(v) for v in answer.replace("\n", ",").strip(",").split(","))
    assert high > low  # the model trained on the cluster answers (y = 3 x0 - 2 x1 + ...)
    sm.delete_endpoint(EndpointName="ray-sigv4")


def test_a_host_the_role_may_not_let_read_fails_the_job_with_aws_message(
        client: Any) -> None:
    # the facade refused the host's GET as the role's session: the same FailureReason as a
    # job on the server's machine (test_job_role), naming the role's session
    job = _train(client, "ray-role-c", "c", "reader")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: Data download failed:" + denial(
        "ray-role-c", "reader", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/c/train/data.csv")
    assert _keys(client, "out/ray-role-c/") == []
    # the facade refused algo-1's upload of the model: the job fails as a local one does
    job = _train(client, "ray-role-w", "b", "nowrite", output="denied")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: Data upload failed:" + denial(
        "ray-role-w", "nowrite", "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/denied/ray-role-w/output/model.tar.gz", explicit=True)
    assert _keys(client, "denied/ray-role-w/") == []
