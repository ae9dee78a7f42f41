"""CloudWatch metrics: what jobs and endpoints publish, read back as the SDK reads it."""

from __future__ import annotations

from typing import Any

from opensage.errors import InvalidParameterCombination, InvalidParameterValue
from opensage.services.metrics import aggregate
from opensage.services.wiring import Services

Params = dict[str, Any]


def put_metric_data(services: Services, params: Params) -> None:
    now = services.context.now()
    points = []
    for datum in params["MetricData"]:
        when = datum["Timestamp"].timestamp() if datum.get("Timestamp") else now
        dims = {d["Name"]: d["Value"] for d in datum.get("Dimensions") or []}
        unit = datum.get("Unit", "None")
        if "Value" in datum:
            points.append((datum["MetricName"], dims, when, datum["Value"], unit))
        for value, count in zip(datum.get("Values") or [], datum.get("Counts") or
                                [1.0] * len(datum.get("Values") or []), strict=False):
            points += [(datum["MetricName"], dims, when, value, unit)] * int(count)
    services.context.metrics.put(params["Namespace"], points)


def get_metric_statistics(services: Services, params: Params) -> Params:
    statistics = params.get("Statistics") or []
    extended = params.get("ExtendedStatistics") or []
    if not statistics and not extended:
        raise InvalidParameterCombination(
            "Must specify either Statistics or ExtendedStatistics, but not both.")
    start, end = params["StartTime"].timestamp(), params["EndTime"].timestamp()
    if end <= start:
        raise InvalidParameterValue("The parameter StartTime must be less than EndTime.")
    points = services.context.metrics.series(params["Namespace"], params["MetricName"],
                                             params.get("Dimensions") or [], start, end)
    try:
        datapoints = aggregate(points, start, params["Period"], statistics, extended)
    except ValueError as err:
        raise InvalidParameterValue(str(err)) from None
    return {"Label": params["MetricName"], "Datapoints": datapoints}


def get_metric_data(services: Services, params: Params) -> Params:
    start, end = params["StartTime"].timestamp(), params["EndTime"].timestamp()
    ascending = params.get("ScanBy") == "TimestampAscending"
    results = []
    for query in params["MetricDataQueries"]:
        stat = query.get("MetricStat")
        if stat is None:
            raise InvalidParameterValue(
                f"MetricDataQueries {query['Id']!r}: metric math expressions are not supported")
        metric = stat["Metric"]
        points = services.context.metrics.series(metric["Namespace"], metric["MetricName"],
                                                 metric.get("Dimensions") or [], start, end)
        name = stat["Stat"]
        basic = name if name in ("SampleCount", "Average", "Sum", "Minimum", "Maximum") else None
        try:
            rows = aggregate(points, start, stat["Period"], [basic] if basic else [],
                             [] if basic else [name])
        except ValueError as err:
            raise InvalidParameterValue(str(err)) from None
        if not ascending:
            rows.reverse()
        if query.get("ReturnData", True):
            results.append({
                "Id": query["Id"], "Label": query.get("Label") or metric["MetricName"],
                "Timestamps": [r["Timestamp"] for r in rows],
                "Values": [r[basic] if basic else r["ExtendedStatistics"][name] for r in rows],
                "StatusCode": "Complete"})
    return {"MetricDataResults": results, "Messages": []}


def list_metrics(services: Services, params: Params) -> Params:
    return {"Metrics": services.context.metrics.list_series(params.get("Namespace"),
                                                            params.get("MetricName"),
                                                            params.get("Dimensions") or [])}
