"""Fixtures for unchanged SageMaker SDK code: its environment, and a guard that fails the
test on any network use beyond 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from opensage.sdk import write_sdk_config
from tests.conftest import ACCOUNT, REGION
from tests.integration.test_training_jobs import BUCKET, regression_csv

ALLOWED_HOSTS = {"127.0.0.1"}
ROLE = f"arn:aws:iam::{ACCOUNT}:role/opensage"


class NetworkGuardError(OSError):
    """Raised instead of reaching a non-local address (an OSError, as offline code expects)."""


@dataclass
class NetworkGuard:
    """Records and refuses every DNS lookup and connect to anything but ``ALLOWED_HOSTS``."""

    violations: list[str] = field(default_factory=list)

    def check(self, what: str, host: Any) -> None:
        if isinstance(host, bytes):
            host = host.decode()
        if host is None or host in ALLOWED_HOSTS:
            return
        self.violations.append(f"{what} {host}")
        raise NetworkGuardError(f"network guard: {what} to {host!r} is not allowed in tests")

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo

        def host_of(sock: socket.socket, address: Any) -> Any:
            if sock.family == getattr(socket, "AF_UNIX", None):
                return None  # local IPC, not the network
            return address[0] if isinstance(address, tuple) else address

        def connect(sock: socket.socket, address: Any) -> None:
            self.check("connect", host_of(sock, address))
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            self.check("connect_ex", host_of(sock, address))
            return real_connect_ex(sock, address)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            self.check("getaddrinfo", host)
            return real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    guard.install(monkeypatch)
    yield guard
    assert guard.violations == [], f"code tried to reach the network: {guard.violations}"


@pytest.fixture
def sdk_env(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            network_guard: NetworkGuard) -> NetworkGuard:
    """The environment a user gets from ``eval "$(opensage sdk-config)"``, in tmp paths."""
    config = write_sdk_config(endpoint, ACCOUNT, REGION, path=tmp_path / "sdk" / "config.yaml")
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION,
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1", "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    return network_guard


# -- training data -------------------------------------------------------------------------
@pytest.fixture
def s3(client):
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture
def data(s3) -> dict[str, Any]:
    train, _, _ = regression_csv(400, seed=1)
    validation, x_val, y_val = regression_csv(100, seed=2)
    s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=train)
    s3.put_object(Bucket=BUCKET, Key="data/validation/part-0.csv", Body=validation)
    return {"x_val": x_val, "y_val": y_val}
