"""CloudTrail handlers (the service is ``services.audit``)."""

from __future__ import annotations

from typing import Any

from opensage.services.wiring import Services

Params = dict[str, Any]


def lookup_events(services: Services, params: Params) -> Params:
    return services.audit.lookup_events(params)


def create_trail(services: Services, params: Params) -> Params:
    return services.audit.create_trail(params)


def describe_trails(services: Services, params: Params) -> Params:
    return services.audit.describe_trails(params)


def delete_trail(services: Services, params: Params) -> None:
    services.audit.delete_trail(params)


def put_event_selectors(services: Services, params: Params) -> Params:
    return services.audit.put_event_selectors(params)


def get_event_selectors(services: Services, params: Params) -> Params:
    return services.audit.get_event_selectors(params)
