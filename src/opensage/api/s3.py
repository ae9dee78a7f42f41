"""PLACEHOLDER — being implemented (S3 REST-XML facade)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response


class S3Api:
    def __init__(self, backend: Any) -> None:
        self.backend = backend

    async def __call__(self, request: Request) -> Response:
        return Response("<Error><Code>NotImplemented</Code></Error>", 501,
                        media_type="application/xml")
