"""Browser tests: Debian's Chromium driven by Playwright, against a real server holding real
jobs made through boto3. Playwright's own browser download is never used (unreachable here):
the system Chromium is launched by path (``OPENSAGE_TEST_CHROMIUM``, default
``/usr/bin/chromium``); without it these tests skip, saying so."""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from opensage.server import RunningServer
from tests.conftest import REGION

CHROMIUM = Path(os.environ.get("OPENSAGE_TEST_CHROMIUM") or shutil.which("chromium")
                or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright's launch arguments: the system Chromium, headless."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package "
                    "(`apt-get install chromium`) or set OPENSAGE_TEST_CHROMIUM")
    return {"executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def fresh_server(server: RunningServer) -> str:
    """The session's server, wiped once for this module (its tests share what they make)."""
    request = urllib.request.Request(server.url + "/_opensage/reset", method="POST")
    urllib.request.urlopen(request).read()
    return server.url


@pytest.fixture(scope="module")
def aws(fresh_server: str) -> Any:
    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=fresh_server, region_name=REGION,
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=Config(retries={"max_attempts": 1}))
    return make


@pytest.fixture
def errors(page: Any) -> Iterator[list[str]]:
    """Every console error and uncaught exception of the page; the test ends with none."""
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: seen.append(f"pageerror: {exc}"))
    yield seen
    assert seen == [], seen
