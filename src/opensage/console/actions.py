"""The console's JSON endpoints: log tails, and the actions a user takes (stop, clone), each
the service operation the API's handler calls."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import botocore.session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from opensage.console.access import Caller
from opensage.console.kinds import BY_SLUG
from opensage.console.views import LOG_GROUPS
from opensage.errors import ValidationException
from opensage.services.wiring import Services

HEADER = "x-opensage-console"  # sent by the console's script: a cross-site form cannot
LOG_BATCH = 1000


def guarded(endpoint: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Actions need the console's own header: a page of another site can neither set it
    without a CORS preflight (which nothing here answers) nor post a form with it."""
    def checked(request: Request) -> Response:
        if request.headers.get(HEADER) != "1":
            return JSONResponse({"error": "Forbidden",
                                 "message": f"console actions need the {HEADER} header"}, 403)
        return endpoint(request)
    return checked


def logs(request: Request, services: Services) -> Any:
    """The job's log streams, or the events of one after a position (a GetLogEvents token):
    the page calls this every 2 s while the job runs."""
    slug, name = request.path_params["slug"], request.path_params["name"]
    group = LOG_GROUPS.get(slug)
    if group is None:
        raise ValidationException(f"{slug} have no logs in the console.")
    page = BY_SLUG[slug]
    caller = Caller.of(request, services)
    doc = page.document(caller, name)  # a missing job answers as the API does
    status = doc.get(page.status_field or "")
    stream = request.query_params.get("stream")
    if not stream:
        caller.require("logs:DescribeLogStreams")
        streams, _ = services.context.logs.describe_streams(group, prefix=f"{name}/",
                                                            limit=50)
        return {"status": status, "streams": [s["logStreamName"] for s in streams]}
    if not stream.startswith(f"{name}/"):
        raise ValidationException(f"{stream} is not a log stream of {name}.")
    caller.require("logs:GetLogEvents")
    answer = services.context.logs.get_events(
        group, stream, start_from_head=True, limit=LOG_BATCH,
        token=request.query_params.get("token") or None)
    return {"status": status, "events": [[e["timestamp"], e["message"]]
                                         for e in answer["events"]],
            "token": answer["nextForwardToken"]}


def stop(request: Request, services: Services) -> Any:
    slug, name = request.path_params["slug"], request.path_params["name"]
    page = BY_SLUG.get(slug)
    if page is None or page.stop is None:
        raise ValidationException(f"{slug} cannot be stopped from the console.")
    page.halt(Caller.of(request, services), name)
    return {"stopping": name}


@functools.cache
def _create_members() -> frozenset[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.operation_model("CreateTrainingJob").input_shape.members)


async def _json_body(request: Request) -> Any:
    return json.loads(await request.body() or b"{}")


def clone(request: Request, services: Services) -> Any:
    """Clone-as-new: CreateTrainingJob with the described job's request members, a new name
    and (optionally) changed hyperparameters."""
    name = request.path_params["name"]
    given = request.state.body if hasattr(request.state, "body") else {}
    new_name = str(given.get("TrainingJobName") or "").strip()
    if not new_name:
        raise ValidationException("The clone needs a TrainingJobName.")
    caller = Caller.of(request, services)
    doc = BY_SLUG["training-jobs"].document(caller, name)
    params = {k: v for k, v in doc.items() if k in _create_members()}
    params["TrainingJobName"] = new_name
    hps = given.get("HyperParameters")
    if hps is not None:
        if not isinstance(hps, dict) or not all(isinstance(v, str) for v in hps.values()):
            raise ValidationException("HyperParameters are a JSON object of strings.")
        params["HyperParameters"] = hps
    tags = services.context.resources.tags_of([doc["TrainingJobArn"]])[doc["TrainingJobArn"]]
    if tags:
        params["Tags"] = tags
    caller.require("sagemaker:CreateTrainingJob",  # and iam:PassRole, as the API checks
                   caller.sagemaker_arn("training-job", new_name), params)
    return {"TrainingJobArn": services.training.create(params), "TrainingJobName": new_name}


def with_body(endpoint: Callable[[Request], Response]
              ) -> Callable[[Request], Awaitable[Response]]:
    """Reads the JSON body on the event loop, then runs ``endpoint`` in the thread pool."""
    async def read(request: Request) -> Response:
        try:
            request.state.body = await _json_body(request)
        except ValueError:
            return JSONResponse({"error": "ValidationException",
                                 "message": "The body is not JSON."}, 400)
        if not isinstance(request.state.body, dict):
            return JSONResponse({"error": "ValidationException",
                                 "message": "The body is a JSON object."}, 400)
        response: Response = await run_in_threadpool(endpoint, request)
        return response
    return read
