"""``Search``: filter and sort SageMaker resources on any property — the leaderboard of runs.

Property names are AWS's: a dotted path into the Describe document (``ResourceConfig.
InstanceType``), ``HyperParameters.<name>``, ``Metrics.<name>`` (the final value of a metric)
and ``Tags.<key>``. Numbers compare as numbers, everything else as text.

A ranking on a final metric (sorted on ``Metrics.<name>``, every filter a numeric bound on a
metric) is answered whole by the store's search index, page by page in SQL; any other search
is checked in Python on the properties the database extracts for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opensage.errors import ValidationException
from opensage.services import kinds
from opensage.services.context import Context
from opensage.services.experiments import records as experiment_records
from opensage.store import pagination
from opensage.store.resources import BodyPath, ListItem, Property, Resource, TagValue

# Resource -> (kind, the SearchRecord member, how a row becomes a record)
_RECORDS: dict[str, tuple[kinds.Kind, str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "TrainingJob": (kinds.TRAINING_JOB, "TrainingJob", lambda doc: doc),
    "Endpoint": (kinds.ENDPOINT, "Endpoint", lambda doc: doc),
    "HyperParameterTuningJob": (kinds.TUNING_JOB, "HyperParameterTuningJob", lambda doc: doc),
    "Model": (kinds.MODEL, "Model", lambda doc: {"Model": doc}),
    "Experiment": (kinds.EXPERIMENT, "Experiment", lambda doc: doc),
    "ExperimentTrial": (kinds.TRIAL, "Trial", lambda doc: doc),
    "ExperimentTrialComponent": (kinds.TRIAL_COMPONENT, "TrialComponent", lambda doc: doc),
    "ModelPackage": (kinds.MODEL_PACKAGE, "ModelPackage", lambda doc: doc),
    "ModelPackageGroup": (kinds.MODEL_PACKAGE_GROUP, "ModelPackageGroup", lambda doc: doc),
}
# Resource -> what a record adds to the stored document, by row name (read for the rows a
# search considers; such a search reads whole documents)
_EXTRAS: dict[str, Callable[[Context, list[Resource]], dict[str, dict[str, Any]]]] = {
    "ExperimentTrialComponent": experiment_records.component_extras,
    "ExperimentTrial": experiment_records.trial_extras,
}
_MISSING = object()


def search(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    resource = params["Resource"]
    if resource not in _RECORDS:
        raise ValidationException(f"Search over {resource} is not supported by opensage yet; "
                                  f"supported: {', '.join(_RECORDS)}")
    kind, member, to_record = _RECORDS[resource]
    expression = params.get("SearchExpression") or {}
    sort_by = params.get("SortBy") or "CreationTime"
    descending = (params.get("SortOrder") or "Descending") == "Descending"
    query = ("Search", resource, expression, sort_by, descending)
    limit = params.get("MaxResults") or 10
    ranking = _metric_ranking(expression, sort_by)
    if ranking is not None:
        page, token = _ranked_page(ctx, kind, ranking, query=query, descending=descending,
                                   token=params.get("NextToken"), limit=limit)
    else:
        page, token = _filtered_page(ctx, kind, expression, sort_by, query=query,
                                     descending=descending, token=params.get("NextToken"),
                                     limit=limit, extras=_EXTRAS.get(resource))
    # The page's documents and tags: one query each.
    rows = ctx.resources.get_many(kind.name, [name for _, name in page])
    found = [rows[name] for _, name in page if name in rows]  # gone meanwhile: left out
    tags = ctx.resources.tags_of([row.arn for row in found])
    extra = _EXTRAS[resource](ctx, found) if resource in _EXTRAS else {}
    return {"Results": [{member: to_record({**row.body, **extra.get(row.name, {}),
                                            "Tags": tags[row.arn]})}
                        for row in found], "NextToken": token}


Keyed = tuple[tuple[Any, int], str]  # ((sort key, row id), name)


Extras = Callable[[Context, list[Resource]], dict[str, dict[str, Any]]]


def _filtered_page(ctx: Context, kind: kinds.Kind, expression: dict[str, Any], sort_by: str, *,
                   query: tuple[Any, ...], descending: bool, token: str | None,
                   limit: int, extras: Extras | None = None) -> tuple[list[Keyed], str | None]:
    """The page of a search checked in Python on the candidates' extracted properties."""
    keyed: list[Keyed] = []
    for name, row_id, resolve in _candidates(ctx, kind, expression, sort_by, extras):
        if not _matches(expression, resolve):
            continue
        key = _sort_key(resolve(sort_by))
        if key is not None:  # AWS leaves out rows without the property
            keyed.append(((key, row_id), name))
    keyed.sort(key=lambda k: k[0], reverse=descending)
    return pagination.page(keyed, lambda k: k[0], query=query, token=token, limit=limit,
                           descending=descending)


@dataclass(frozen=True)
class Ranking:
    """A search the search index answers whole: ordered by a final metric, filtered on
    metric bounds (metric, SQL operator, number) and tag values (key, value), all to hold."""

    metric: str
    bounds: list[tuple[str, str, float]]
    tag_equals: list[tuple[str, str]]


def _metric_ranking(expression: dict[str, Any], sort_by: str) -> Ranking | None:
    """The ranking a search is, when sorted on ``Metrics.<name>`` and every filter is a
    numeric bound on a metric or a tag equal to a text that is not a number (a number would
    compare as one); None otherwise."""
    head, _, metric = sort_by.partition(".")
    if head != "Metrics" or not metric or expression.get("NestedFilters") \
            or expression.get("SubExpressions"):
        return None
    filters = expression.get("Filters") or []
    if expression.get("Operator") == "Or" and len(filters) > 1:
        return None
    ranking = Ranking(metric, [], [])
    for f in filters:
        f_head, _, f_rest = str(f.get("Name")).partition(".")
        value, number = f.get("Value"), _number(f.get("Value"))
        if f_head == "Metrics" and f_rest and f.get("Operator") in _SQL_BOUNDS \
                and number is not None and math.isfinite(number):
            ranking.bounds.append((f_rest, _SQL_BOUNDS[f["Operator"]], number))
        elif f_head == "Tags" and f_rest and (f.get("Operator") or "Equals") == "Equals" \
                and isinstance(value, str) and number is None:
            ranking.tag_equals.append((f_rest, value))
        else:
            return None
    return ranking


def _ranked_page(ctx: Context, kind: kinds.Kind, ranking: Ranking, *, query: tuple[Any, ...],
                 descending: bool, token: str | None, limit: int) -> tuple[list[Keyed], str | None]:
    """The page of a metric ranking, read from the search index: keys and tokens are those
    of ``_filtered_page`` (a metric's sort key is ``(0, value, "")``)."""
    after = None
    if token:
        (number_key, row_id) = pagination.decode(token, query, 2)
        if not (isinstance(number_key, tuple) and len(number_key) == 3
                and number_key[0] == 0 and _number(number_key[1]) is not None
                and isinstance(row_id, int)):
            raise ValidationException("Invalid pagination token")
        after = (float(number_key[1]), row_id)
    rows = ctx.resources.rank(kind.name, ranking.metric, bounds=ranking.bounds,
                              tag_equals=ranking.tag_equals, descending=descending,
                              after=after, limit=limit + 1)
    page = [(((0, float(r.values[0]), ""), r.row_id), r.name) for r in rows[:limit]]
    more = len(rows) > limit
    return page, pagination.encode(query, page[-1][0]) if more else None


Resolver = Callable[[str], Any]


def _candidates(ctx: Context, kind: kinds.Kind, expression: dict[str, Any],
                sort_by: str, extras: Extras | None = None) -> list[tuple[str, int, Resolver]]:
    """(name, row id, property resolver) of every row. The properties the search reads are
    extracted by the database (one query, no whole body decoded) unless a nested filter needs
    whole documents, or the records carry more than the documents (``extras``): then every
    row, every tag and the extras are read."""
    names = _property_names(expression, [sort_by])
    if names is not None and extras is None:
        properties = [_property(n) for n in names]
        bounds = [(names.index(f["Name"]), _SQL_BOUNDS[f["Operator"]], float(f["Value"]))
                  for f in _conjuncts(expression)
                  if isinstance(properties[names.index(f["Name"])], ListItem)
                  and f.get("Operator") in _SQL_BOUNDS and _number(f.get("Value")) is not None
                  and math.isfinite(float(f["Value"]))]
        projected = ctx.resources.project(kind.name, properties, present=[0],
                                              bounds=bounds)
        return [(p.name, p.row_id, dict(zip(names, p.values)).get) for p in projected]
    rows = list(ctx.resources.scan(kind.name))
    tags = ctx.resources.tags_of([r.arn for r in rows])
    more = extras(ctx, rows) if extras is not None else {}
    return [(row.name, row.row_id, _document_resolver({**row.body, **more.get(row.name, {}),
                                                       "Tags": tags[row.arn]}))
            for row in rows]


def _property_names(expression: dict[str, Any], found: list[str]) -> list[str] | None:
    """Every property an expression (and the sort) reads; None when it has nested filters
    or a name no JSON path can quote (read from whole documents instead)."""
    found += [f["Name"] for f in expression.get("Filters") or []]
    if expression.get("NestedFilters") or any('"' in n or "\\" in n for n in found):
        return None
    for sub in expression.get("SubExpressions") or []:
        if _property_names(sub, found) is None:
            return None
    return list(dict.fromkeys(found))


def _property(name: str) -> Property:
    head, _, rest = name.partition(".")
    if head == "Metrics" and rest:
        return ListItem("FinalMetricDataList", "MetricName", rest, "Value")
    if head == "Tags" and rest:
        return TagValue(rest)
    if head == "HyperParameters" and rest:
        return BodyPath(("HyperParameters", rest))
    return BodyPath(tuple(name.split(".")))


# Numeric filters the database applies first (a necessary condition: Python checks again).
_SQL_BOUNDS = {"GreaterThan": ">", "GreaterThanOrEqualTo": ">=", "LessThan": "<",
               "LessThanOrEqualTo": "<=", "Equals": "="}


def _conjuncts(expression: dict[str, Any]) -> list[dict[str, Any]]:
    """The filters every match must pass (the top level's, unless it is an Or)."""
    if expression.get("Operator") == "Or" and len(
            (expression.get("Filters") or []) + (expression.get("SubExpressions") or [])) > 1:
        return []
    return list(expression.get("Filters") or [])


def _document_resolver(doc: dict[str, Any]) -> Resolver:
    return lambda name: _resolve(doc, name)


def _matches(expression: dict[str, Any], resolve: Resolver) -> bool:
    checks = [_filter_matches(f, resolve) for f in expression.get("Filters") or []]
    for nested in expression.get("NestedFilters") or []:
        items = resolve(nested["NestedPropertyName"])
        items = items if isinstance(items, list) else []
        checks.append(any(all(_filter_matches(_relative(f, nested), _document_resolver(item))
                              for f in nested["Filters"])
                          for item in items))
    checks += [_matches(sub, resolve) for sub in expression.get("SubExpressions") or []]
    if not checks:
        return True
    return any(checks) if expression.get("Operator") == "Or" else all(checks)


def _relative(f: dict[str, Any], nested: dict[str, Any]) -> dict[str, Any]:
    prefix = nested["NestedPropertyName"] + "."
    name = f["Name"].removeprefix(prefix)
    return {**f, "Name": name}


class _AnyOf(list[Any]):
    """The values a path reached through a list of objects (``Parents.ExperimentName``): a
    filter holds when it holds for one of them."""


def _constant(value: Any) -> Resolver:
    return lambda _name: value


def _filter_matches(f: dict[str, Any], resolve: Resolver) -> bool:
    actual = resolve(f["Name"])
    if isinstance(actual, _AnyOf):
        if not actual:
            return _filter_matches(f, _constant(_MISSING))
        return any(_filter_matches(f, _constant(v)) for v in actual)
    if actual is None:  # a JSON null is no value
        actual = _MISSING
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
    return bool({"GreaterThan": a > b, "GreaterThanOrEqualTo": a >= b, "LessThan": a < b,
                 "LessThanOrEqualTo": a <= b}[operator])


def _equal(actual: Any, expected: str) -> bool:
    a, b = _comparable(actual, expected)
    return bool(a == b)


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
        return _summary_stat(doc, rest)
    if head == "Tags" and rest:
        return next((t["Value"] for t in doc.get("Tags") or [] if t["Key"] == rest), _MISSING)
    if head == "HyperParameters" and rest:
        return (doc.get("HyperParameters") or {}).get(rest, _MISSING)
    if head == "Parameters" and rest and isinstance(doc.get("Parameters"), dict):
        value = doc["Parameters"].get(rest, _MISSING)  # a trial component's: its value
        if isinstance(value, dict):
            return value.get("NumberValue", value.get("StringValue", _MISSING))
        return value
    return _walk(doc, name.split("."))


def _walk(value: Any, parts: list[str]) -> Any:
    for i, part in enumerate(parts):
        if isinstance(value, list):  # through a list of objects: every item's value
            found = [_walk(item, parts[i:]) for item in value]
            return _AnyOf(v for v in found if v is not _MISSING)
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


_STATS = ("Min", "Max", "Avg", "StdDev", "Last", "Count")


def _summary_stat(doc: dict[str, Any], rest: str) -> Any:
    """``Metrics.<name>.<Stat>`` (or ``Metrics.<name>``: its Last) of a trial component's
    metric summaries."""
    name, _, stat = rest.rpartition(".")
    if stat not in _STATS:
        name, stat = rest, "Last"
    summaries = doc.get("Metrics")
    for summary in summaries if isinstance(summaries, list) else []:
        if isinstance(summary, dict) and summary.get("MetricName") == name:
            return summary.get(stat, _MISSING)
    return _MISSING


def _sort_key(value: Any) -> Any:
    if value is None or value is _MISSING or isinstance(value, dict | list):
        return None
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, str(value))
