"""The console's path cannot collide with S3 or any AWS request, and answers loopback only."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from opensage.console.app import LoopbackOnly, create_console


def test_no_bucket_can_be_named_like_the_console(client: Any, endpoint: str) -> None:
    s3 = client("s3")
    for name in ("_console", "_opensage"):
        with pytest.raises(ClientError) as err:
            s3.create_bucket(Bucket=name)
        assert err.value.response["Error"]["Code"] == "InvalidBucketName"
    # path-style S3 and the SageMaker API still route as before, beside the console
    s3.create_bucket(Bucket="console")
    s3.put_object(Bucket="console", Key="_console/index.html", Body=b"mine")
    assert s3.get_object(Bucket="console", Key="_console/index.html")["Body"].read() == b"mine"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["console"]
    assert client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    page = urllib.request.urlopen(endpoint + "/_console/").read().decode()
    assert "<title>Home · opensage console</title>" in page
    # the console's link to the S3 facade: an unsigned path-style GET
    assert urllib.request.urlopen(endpoint + "/console/_console/index.html").read() == b"mine"


def test_console_actions_need_the_consoles_header(endpoint: str) -> None:
    request = urllib.request.Request(endpoint + "/_console/api/training-jobs/x/stop",
                                     method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 403


def _get(app: Any, path: str, client: tuple[str, int]) -> tuple[int, bytes]:
    """One GET through the ASGI app, from ``client``."""
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if requested:  # the client stays connected: the answer is awaited whole
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "headers": [], "client": client,
             "server": ("127.0.0.1", 80), "scheme": "http", "http_version": "1.1"}
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def test_console_answers_loopback_clients_only() -> None:
    app = LoopbackOnly(create_console(lambda: None))  # type: ignore[arg-type,return-value]
    status, body = _get(app, "/static/console.css", ("192.0.2.7", 50000))
    assert status == 403 and b"this machine only" in body
    status, body = _get(app, "/static/console.css", ("127.0.0.1", 50000))
    assert status == 200 and b"opensage console" in body
    assert _get(app, "/static/console.css", ("::1", 50000))[0] == 200


def test_without_authentication_the_login_page_leads_home(endpoint: str, client: Any) -> None:
    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(Stay)
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(endpoint + "/_console/login")
    assert err.value.code == 303 and err.value.headers["location"] == "/_console/"
    # an object keyed like the login page is S3's, under its own bucket
    s3 = client("s3")
    s3.create_bucket(Bucket="pages")
    s3.put_object(Bucket="pages", Key="_console/login", Body=b"an object")
    assert s3.get_object(Bucket="pages", Key="_console/login")["Body"].read() == b"an object"
