"""A hostile model.tar.gz through boto3: the endpoint and the transform job that use it fail
with a readable FailureReason, and nothing is written outside their model directories."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import WaiterError

from tests.hostile_archives import cve_2025_4517_chain
from tests.integration.test_endpoints import FAST, deploy, make_model, tar_gz
from tests.integration.test_training_jobs import BUCKET, ROLE, XGB_IMAGE
from tests.integration.test_transform import job, wait_for

BOMB = tar_gz({"xgboost-model": bytes(64 << 20)})  # 64 MiB of zeros in ~64 KiB


def chain_with_model() -> bytes:
    """A servable model plus the escape: before the fix, its endpoint went InService."""
    _, booster, _ = make_model()
    return gzip.compress(cve_2025_4517_chain({"xgboost-model": bytes(booster.save_raw("ubj"))}))


def escaped(server: Any) -> list[Path]:
    return list(Path(server.settings.data_dir).rglob("pwned"))


def test_a_link_chain_archive_fails_the_endpoint_and_writes_nothing_outside(
        sm, s3, server) -> None:
    deploy(sm, s3, "chain", chain_with_model())
    sm.create_endpoint(EndpointName="chain", EndpointConfigName="chain")
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="chain", WaiterConfig=FAST)
    assert escaped(server) == []
    described = sm.describe_endpoint(EndpointName="chain")
    assert described["EndpointStatus"] == "Failed"
    reason = described["FailureReason"]
    assert "Failed to download or extract the model data for production variant" in reason
    assert "is beneath the symbolic link 'a'" in reason, reason


@pytest.mark.parametrize("archive, why", [
    ("chain", "is beneath the symbolic link 'a'"),
    ("bomb", "'xgboost-model': the archive unpacks to more than 200 times its compressed size"),
])
def test_a_hostile_archive_fails_the_transform_job(sm, s3, server, archive: str,
                                                   why: str) -> None:
    artifact = chain_with_model() if archive == "chain" else BOMB
    s3.put_object(Bucket=BUCKET, Key="models/tx-model/model.tar.gz", Body=artifact)
    sm.create_model(ModelName="tx-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/tx-model/model.tar.gz"})
    s3.put_object(Bucket=BUCKET, Key="in/rows.csv", Body="1,2,3,4\n")
    sm.create_transform_job(**job("tx-hostile"))
    described = wait_for(sm, "tx-hostile")
    assert escaped(server) == []
    assert described["TransformJobStatus"] == "Failed"
    assert "Failed to download or extract the model data" in described["FailureReason"]
    assert why in described["FailureReason"], described["FailureReason"]
    unpacked = Path(server.settings.data_dir).rglob("xgboost-model")
    assert [p for p in unpacked if p.stat().st_size > 8 << 20] == []  # stopped early
