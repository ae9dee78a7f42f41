"""The app factory: the only place the server is wired together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import botocore.session
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opensage.api import (
    autoscaling_handlers,
    cloudtrail_handlers,
    cloudwatch_handlers,
    endpoint_handlers,
    experiment_handlers,
    logs_handlers,
    model_registry_handlers,
    pipeline_handlers,
    processing_handlers,
    sagemaker_handlers,
    sts,
    training_handlers,
    transform_handlers,
    tuning_handlers,
)
from opensage.api.audit import audited, wants_audit
from opensage.api.auth import PRINCIPAL, AuthMiddleware, Gate, Verifier
from opensage.api.authz import json_denied, require
from opensage.api.error_encoding import plain_error_response
from opensage.api.metrics_api import MetricsApi
from opensage.api.registry import collect_handlers
from opensage.api.router import identify_service
from opensage.api.rpc import CborCodec, RpcService
from opensage.api.runtime import PREFIX, RuntimeApi
from opensage.api.s3 import S3Api
from opensage.console.app import mount as console_mount
from opensage.errors import AwsError, InternalFailure
from opensage.services.wiring import Services, build_services
from opensage.settings import Settings

log = logging.getLogger(__name__)


class OpensageApp(Starlette):
    """Starlette, with ``InvokeEndpoint`` taken before it: the runtime answers a bare ASGI
    call (no middleware, router or request objects: a third less server CPU per
    invocation). Everything else, and any request the rules of ``identify_service`` would
    not send to the runtime (an S3 multipart POST on a look-alike key, say), goes through
    Starlette. The runtime answers its own errors, unexpected ones included."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services | None = getattr(self.state, "services", None)
        if services is not None and services.audit.enabled and wants_audit(scope):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            await audited(services.audit, self._serve, scope, receive, send, headers)
            return
        await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST" and not scope["query_string"]
                and scope["path"].startswith(PREFIX)):
            headers = {k.decode("latin-1"): v.decode("latin-1")
                       for k, v in scope["headers"]}
            if identify_service("POST", scope["path"], headers, {}) == "sagemaker-runtime":
                runtime = getattr(self.state, "protocols", {}).get("sagemaker-runtime")
                if isinstance(runtime, RuntimeApi):
                    gate: Gate | None = getattr(self.state, "gate", None)
                    if gate is not None:  # --auth sigv4: this path skips the middleware
                        checked = await gate.check(scope, receive, send, headers)
                        if checked is None:
                            return
                        receive = checked
                    await runtime.asgi(scope, headers, receive, send)
                    return
        await super().__call__(scope, receive, send)


def build_protocols(services: Services) -> dict[str, Any]:
    """The handler of each served AWS service (protocol), by the name the router gives it."""
    settings = services.context.settings
    session = botocore.session.get_session()
    sagemaker = session.get_service_model("sagemaker")
    logs = session.get_service_model("logs")
    cloudwatch = session.get_service_model("cloudwatch")
    autoscaling = session.get_service_model("application-autoscaling")
    cloudtrail = session.get_service_model("cloudtrail")
    return {
        "sagemaker": RpcService(sagemaker, collect_handlers(sagemaker, sagemaker_handlers,
                                                            training_handlers, tuning_handlers,
                                                            endpoint_handlers, transform_handlers,
                                                            processing_handlers,
                                                            experiment_handlers,
                                                            model_registry_handlers,
                                                            pipeline_handlers),
                                services),
        "logs": RpcService(logs, collect_handlers(logs, logs_handlers), services),
        "cloudwatch": RpcService(cloudwatch, collect_handlers(cloudwatch, cloudwatch_handlers),
                                 services, CborCodec(cloudwatch)),
        "cloudwatch-json": RpcService(cloudwatch, collect_handlers(cloudwatch,
                                                                   cloudwatch_handlers), services),
        "sts": sts.StsApi(session.get_service_model("sts"), services.iam),
        "iam": sts.IamApi(session.get_service_model("iam"), services.iam),
        "s3": S3Api(services.context.objects, settings,
                    services.iam if settings.auth == "sigv4" else None,
                    services.iam.bucket_policies),
        "sagemaker-runtime": RuntimeApi(services.endpoints, settings),
        "sagemaker-metrics": MetricsApi(session.get_service_model("sagemaker-metrics"),
                                        services),
        "cloudtrail": RpcService(cloudtrail, collect_handlers(cloudtrail, cloudtrail_handlers),
                                 services),
        "application-autoscaling": RpcService(autoscaling, collect_handlers(
            autoscaling, autoscaling_handlers), services),
    }


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = build_services(settings)
        services.start()
        app.state.services = services
        app.state.protocols = build_protocols(services)
        if gate is not None:
            gate.verifier = Verifier(services.iam)
        try:
            yield
        finally:
            services.close()

    async def dispatch(request: Request) -> Response:
        path = request.url.path
        service = identify_service(request.method, path, request.headers, request.query_params)
        handler = request.app.state.protocols.get(service)
        if handler is None:
            return plain_error_response(AwsError(f"opensage does not serve {service} yet",
                                                 code="UnknownServiceException"))
        response: Response = await handler(request)
        return response

    async def reset(request: Request) -> Response:
        if not settings.enable_reset:
            return JSONResponse({"message": "Not Found"}, 404)
        try:  # under --auth sigv4, the caller's policies decide (root: always)
            require(request.app.state.services.iam, request.scope.get(PRINCIPAL),
                    "opensage:Reset", "*", {}, json_denied)
        except AwsError as err:
            return plain_error_response(err)
        request.app.state.services.reset()
        return JSONResponse({"reset": True})

    async def interrupt(request: Request) -> Response:
        """Test hook: reclaim a managed spot training job's capacity now."""
        if not settings.enable_reset:
            return JSONResponse({"message": "Not Found"}, 404)
        try:
            require(request.app.state.services.iam, request.scope.get(PRINCIPAL),
                    "opensage:InterruptTrainingJob", "*", {}, json_denied)
            request.app.state.services.training.interrupt(request.path_params["name"])
        except AwsError as err:
            return plain_error_response(err)
        return JSONResponse({"interrupted": request.path_params["name"]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "account": settings.account_id,
                             "region": settings.region})

    async def invoke(path: str, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
                     ) -> tuple[int, dict[str, str], bytes]:
        runtime: RuntimeApi = app.state.protocols["sagemaker-runtime"]
        return await runtime.invoke(path, headers, chunks)

    routes = [
        Route("/_opensage/reset", reset, methods=["POST"]),
        Route("/_opensage/health", health, methods=["GET"]),
        Route("/_opensage/training-jobs/{name}/interrupt", interrupt, methods=["POST"]),
        # The console: no bucket name holds "_", so "/_console/..." is no S3 path; like
        # these routes it is tried before the default (every AWS request).
        console_mount(lambda: app.state.services, settings, invoke),
    ]
    gate = Gate() if settings.auth == "sigv4" else None
    middleware = [Middleware(AnswerUnhandledErrors)]
    if gate is not None:  # every route, the console's included, sits behind the gate
        middleware.append(Middleware(AuthMiddleware, gate=gate))
    app = OpensageApp(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.gate = gate
    # Everything else is an AWS request. Not a "/{path:path}" route: its pattern stops at a
    # newline, and S3 keys may hold one.
    app.router.default = request_response(dispatch)
    return app


class AnswerUnhandledErrors:
    """The last guard: an exception that escapes a service is answered with a whole 500 and
    ``Connection: close`` (Starlette's own guard answers, re-raises, and uvicorn then drops
    the kept-alive connection unannounced: the client's next request is reset)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:  # part of an answer is out: only closing the connection can tell
                raise
            response = plain_error_response(InternalFailure(
                "opensage failed to answer this request"))
            response.headers["connection"] = "close"
            await response(scope, receive, send)
