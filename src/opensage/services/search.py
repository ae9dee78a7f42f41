"""``Search``: filter and sort SageMaker resources on any property — the leaderboard of runs.

Property names are AWS's: a dotted path into the Describe document (``ResourceConfig.
InstanceType``), ``HyperParameters.<name>``, ``Metrics.<name>`` (the final value of a metric)
and ``Tags.<key>``. Numbers compare as numbers, everything else as text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from opensage.errors import ValidationException
from opensage.services import kinds
from opensage.services.context import Context
from opensage.store.resources import ListQuery, Resource

# Resource -> (kind, the SearchRecord member, how a row becomes a record)
_RECORDS: dict[str, tuple[kinds.Kind, str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "TrainingJob": (kinds.TRAINING_JOB, "TrainingJob", lambda doc: doc),
    "Endpoint": (kinds.ENDPOINT, "Endpoint", lambda doc: doc),
    "HyperParameterTuningJob": (kinds.TUNING_JOB, "HyperParameterTuningJob", lambda doc: doc),
    "Model": (kinds.MODEL, "Model", lambda doc: {"Model": doc}),
}
_MISSING = object()


def search(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    resource = params["Resource"]
    if resource not in _RECORDS:
        raise ValidationException(f"Search over {resource} is not supported by opensage yet; "
                                  f"supported: {', '.join(_RECORDS)}")
    kind, member, to_record = _RECORDS[resource]
    expression = params.get("SearchExpression") or {}
    documents = [(row, _document(ctx, row)) for row in _all_rows(ctx, kind)]
    matching = [(row, doc) for row, doc in documents if _matches(expression, doc)]
    sort_by = params.get("SortBy") or "CreationTime"
    descending = (params.get("SortOrder") or "Descending") == "Descending"
    keyed = [(_sort_key(_resolve(doc, sort_by)), row.row_id, doc) for row, doc in matching]
    keyed = [k for k in keyed if k[0] is not None]  # AWS leaves out rows without the property
    keyed.sort(key=lambda k: (k[0], k[1]), reverse=descending)
    if params.get("NextToken"):
        after = _decode(params["NextToken"], sort_by)
        keyed = [k for k in keyed if ((k[0], k[1]) < after if descending else (k[0], k[1]) > after)]
    limit = params.get("MaxResults") or 10
    page = keyed[:limit]
    token = _encode(page[-1][:2], sort_by) if len(keyed) > limit else None
    return {"Results": [{member: to_record(doc)} for _, _, doc in page], "NextToken": token}


def _all_rows(ctx: Context, kind: kinds.Kind) -> list[Resource]:
    rows: list[Resource] = []
    token = None
    while True:
        page, token = ctx.resources.list(kind.name, ListQuery(
            sort_by="CreationTime", sort_order="Ascending", max_results=500, next_token=token))
        rows += page
        if token is None:
            return rows


def _document(ctx: Context, row: Resource) -> dict[str, Any]:
    tags, _ = ctx.resources.list_tags(row.arn, max_results=50)
    return {**row.body, "Tags": tags}


def _matches(expression: dict[str, Any], doc: dict[str, Any]) -> bool:
    checks = [_filter_matches(f, doc) for f in expression.get("Filters") or []]
    for nested in expression.get("NestedFilters") or []:
        items = _resolve(doc, nested["NestedPropertyName"])
        items = items if isinstance(items, list) else []
        checks.append(any(all(_filter_matches(_relative(f, nested), item)
                              for f in nested["Filters"]) for item in items))
    checks += [_matches(sub, doc) for sub in expression.get("SubExpressions") or []]
    if not checks:
        return True
    return any(checks) if expression.get("Operator") == "Or" else all(checks)


def _relative(f: dict[str, Any], nested: dict[str, Any]) -> dict[str, Any]:
    prefix = nested["NestedPropertyName"] + "."
    name = f["Name"].removeprefix(prefix)
    return {**f, "Name": name}


def _filter_matches(f: dict[str, Any], doc: dict[str, Any]) -> bool:
    actual = _resolve(doc, f["Name"])
    operator = f.get("Operator") or "Equals"
    if operator == "Exists":
        return actual is not _MISSING
    if operator == "NotExists":
        return actual is _MISSING
    if actual is _MISSING:
        return operator == "NotEquals"
    expected = f.get("Value")
    if expected is None:
        raise ValidationException(f"Filter on {f['Name']} with {operator} needs a Value")
    if operator == "In":
        return any(_equal(actual, v.strip()) for v in expected.split(","))
    if operator == "Contains":
        return expected.lower() in str(actual).lower()
    if operator == "Equals":
        return _equal(actual, expected)
    if operator == "NotEquals":
        return not _equal(actual, expected)
    a, b = _comparable(actual, expected)
    return {"GreaterThan": a > b, "GreaterThanOrEqualTo": a >= b, "LessThan": a < b,
            "LessThanOrEqualTo": a <= b}[operator]


def _equal(actual: Any, expected: str) -> bool:
    a, b = _comparable(actual, expected)
    return a == b


def _comparable(actual: Any, expected: str) -> tuple[Any, Any]:
    number_a, number_b = _number(actual), _number(expected)
    if number_a is not None and number_b is not None:
        return number_a, number_b
    if isinstance(actual, bool):
        return str(actual).lower(), expected.lower()
    return str(actual), expected


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _resolve(doc: dict[str, Any], name: str) -> Any:
    head, _, rest = name.partition(".")
    if head == "Metrics" and rest:
        for metric in doc.get("FinalMetricDataList") or []:
            if metric["MetricName"] == rest:
                return metric["Value"]
        return _MISSING
    if head == "Tags" and rest:
        return next((t["Value"] for t in doc.get("Tags") or [] if t["Key"] == rest), _MISSING)
    if head == "HyperParameters" and rest:
        return (doc.get("HyperParameters") or {}).get(rest, _MISSING)
    value: Any = doc
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _sort_key(value: Any) -> Any:
    if value is _MISSING or isinstance(value, dict | list):
        return None
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, str(value))


def _encode(position: tuple[Any, int], sort_by: str) -> str:
    raw = json.dumps([sort_by, position[0], position[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode(token: str, sort_by: str) -> tuple[Any, int]:
    try:
        stored_sort, key, row_id = json.loads(base64.urlsafe_b64decode(token))
    except (ValueError, TypeError):
        raise ValidationException("Invalid pagination token") from None
    if stored_sort != sort_by:
        raise ValidationException("Invalid pagination token: it belongs to another SortBy")
    return tuple(key), row_id
