"""PLACEHOLDER — being implemented (STS query protocol)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response


class StsApi:
    def __init__(self, model: Any, backend: Any) -> None:
        self.model, self.backend = model, backend

    async def __call__(self, request: Request) -> Response:
        return Response("", 501)
