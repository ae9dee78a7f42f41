"""CloudWatch Logs (``Logs_20140328.*``): one small function per operation.

Params arrive validated against botocore's input shape; the logic lives in LogService.
"""

from __future__ import annotations

from typing import Any

from opensage.errors import InvalidParameterException
from opensage.services.logs import MAX_EVENTS, LogService
from opensage.services.wiring import Services


def _logs(services: Services) -> LogService:
    return services.context.logs


def _group(params: dict[str, Any]) -> str:
    """``logGroupName`` or ``logGroupIdentifier`` (a name or an ARN), exactly one of them."""
    name: str | None = params.get("logGroupName")
    identifier: str | None = params.get("logGroupIdentifier")
    if name is not None and identifier is None:
        return name
    if name is not None or identifier is None:
        raise InvalidParameterException(
            "Exactly one of logGroupName and logGroupIdentifier must be specified.")
    if identifier.startswith("arn:"):  # arn:aws:logs:<region>:<account>:log-group:<name>[:*]
        _, _, rest = identifier.partition(":log-group:")
        return rest.removesuffix(":*")
    return identifier


def create_log_group(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    _logs(services).create_group(params["logGroupName"], tags=params.get("tags"),
                                 kms_key_id=params.get("kmsKeyId"),
                                 log_group_class=params.get("logGroupClass"))
    return {}


def delete_log_group(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    _logs(services).delete_group(params["logGroupName"])
    return {}


def describe_log_groups(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    groups, token = _logs(services).describe_groups(
        prefix=params.get("logGroupNamePrefix"), pattern=params.get("logGroupNamePattern"),
        limit=params.get("limit", 50), token=params.get("nextToken"))
    return {"logGroups": groups, "nextToken": token}


def put_retention_policy(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    _logs(services).set_retention(params["logGroupName"], params["retentionInDays"])
    return {}


def delete_retention_policy(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    _logs(services).set_retention(params["logGroupName"], None)
    return {}


def create_log_stream(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    _logs(services).create_stream(params["logGroupName"], params["logStreamName"])
    return {}


def delete_log_stream(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    _logs(services).delete_stream(params["logGroupName"], params["logStreamName"])
    return {}


def describe_log_streams(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    streams, token = _logs(services).describe_streams(
        _group(params), prefix=params.get("logStreamNamePrefix"),
        order_by=params.get("orderBy", "LogStreamName"),
        descending=params.get("descending", False), limit=params.get("limit", 50),
        token=params.get("nextToken"))
    return {"logStreams": streams, "nextToken": token}  # no token on the last page


def put_log_events(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    logs = _logs(services)
    rejected = logs.put_events(params["logGroupName"], params["logStreamName"],
                               params["logEvents"])
    # The sequence token is ignored by AWS nowadays but still returned.
    return {"nextSequenceToken": f"{logs.now_ms():056d}",
            "rejectedLogEventsInfo": rejected or None}


def get_log_events(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return _logs(services).get_events(
        _group(params), params["logStreamName"], start_time=params.get("startTime"),
        end_time=params.get("endTime"), limit=params.get("limit", MAX_EVENTS),
        start_from_head=params.get("startFromHead", False), token=params.get("nextToken"))


def filter_log_events(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    events, token = _logs(services).filter_events(
        _group(params), stream_names=params.get("logStreamNames"),
        stream_prefix=params.get("logStreamNamePrefix"), start_time=params.get("startTime"),
        end_time=params.get("endTime"), pattern=params.get("filterPattern"),
        limit=params.get("limit", MAX_EVENTS), token=params.get("nextToken"))
    return {"events": events, "nextToken": token}
