"""A real server on a free 127.0.0.1 port, and boto3 clients pointed at it."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from opensage.server import RunningServer, start_in_thread
from opensage.settings import Settings
from opensage.testing import frameworks_dir_for_tests, wheelhouse_for_tests

ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("opensage-data")
    settings = Settings(data_dir=data_dir, port=0, account_id=ACCOUNT, region=REGION,
                        enable_reset=True, frameworks_dir=frameworks_dir_for_tests(),
                        wheelhouse=wheelhouse_for_tests(),
                        # no container engine, wherever the tests run (own images' tests
                        # start a server with their own engine: test_own_images.py)
                        container_engine="none")
    running = start_in_thread(settings)
    yield running
    running.stop()


@pytest.fixture
def endpoint(server: RunningServer) -> str:
    """The server's URL, with all state wiped before the test."""
    request = urllib.request.Request(server.url + "/_opensage/reset", method="POST")
    urllib.request.urlopen(request).read()
    return server.url


@pytest.fixture
def client(endpoint: str) -> Callable[..., Any]:
    def make(service: str, **kwargs: Any) -> Any:
        return boto3.client(
            service, endpoint_url=endpoint, region_name=REGION,
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}), **kwargs)
    return make


@pytest.fixture
def sm(client: Callable[..., Any]) -> Any:
    return client("sagemaker")
