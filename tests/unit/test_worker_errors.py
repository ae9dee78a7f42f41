"""The model worker answers a model's error as text, whatever the exception carries."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opensage.serving.worker import make_app


class _Refused(Exception):
    def __init__(self, message: Any) -> None:
        super().__init__("refused: bad payload")
        self.status = 415
        self.message = message


class _Model:
    def __init__(self, message: Any) -> None:
        self.error = _Refused(message)

    def invoke(self, body: bytes, content_type: str | None,
               accept: str | None) -> tuple[bytes, str]:
        raise self.error


def _invoke(model: _Model) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"1,2", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/invocations", "method": "POST",
             "headers": [(b"content-type", b"text/csv")]}
    # A thread of its own: the browser tests' session-wide Playwright leaves an event loop
    # marked running on the main thread, where asyncio.run refuses to start.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, make_app(model)(scope, receive, send)).result()
    return sent


def test_a_message_that_is_not_text_is_answered_with_the_exception_text() -> None:
    # main called .encode() on whatever `message` was: bytes or a dict raised AttributeError
    # inside the error handler, and the client got no answer.
    for message in (b"raw bytes", {"code": "Unsupported"}, None, ""):
        start, body = _invoke(_Model(message))
        assert start["status"] == 415
        assert body["body"] == b"refused: bad payload"


def test_a_text_message_is_answered_as_is() -> None:
    start, body = _invoke(_Model("Unsupported content type"))
    assert (start["status"], body["body"]) == (415, b"Unsupported content type")
