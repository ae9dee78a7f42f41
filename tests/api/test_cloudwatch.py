"""CloudWatch metrics over the protocol current botocore speaks (Smithy RPC v2 CBOR)."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError


def test_put_then_read_statistics_and_data(client):
    cw = client("cloudwatch")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(minutes=10)
    dims = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "v1"}]
    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[
        {"MetricName": "ModelLatency", "Dimensions": dims, "Value": v, "Unit": "Microseconds",
         "Timestamp": start + dt.timedelta(seconds=30 + i * 60)}
        for i, v in enumerate([10.0, 20.0, 30.0, 40.0])])
    stats = cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelLatency", Dimensions=list(reversed(dims)),
        StartTime=start, EndTime=now, Period=120, Statistics=["Average", "Maximum", "SampleCount"],
    )["Datapoints"]
    stats.sort(key=lambda d: d["Timestamp"])
    assert [(d["Average"], d["Maximum"], d["SampleCount"]) for d in stats] == [
        (15.0, 20.0, 2.0), (35.0, 40.0, 2.0)]
    assert stats[0]["Timestamp"] == start and stats[0]["Unit"] == "Microseconds"

    data = cw.get_metric_data(StartTime=start, EndTime=now, MetricDataQueries=[{
        "Id": "lat", "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker",
                                               "MetricName": "ModelLatency", "Dimensions": dims},
                                    "Period": 600, "Stat": "p50"}}])["MetricDataResults"]
    assert data[0]["Values"] == [20.0] and data[0]["StatusCode"] == "Complete"
    listed = cw.list_metrics(Namespace="AWS/SageMaker")["Metrics"]
    assert [m["MetricName"] for m in listed] == ["ModelLatency"]


def test_bad_statistics_request(client):
    cw = client("cloudwatch")
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(ClientError) as exc:
        cw.get_metric_statistics(Namespace="n", MetricName="m", StartTime=now,
                                 EndTime=now - dt.timedelta(minutes=1), Period=60,
                                 Statistics=["Average"])
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_dimension_values_with_separators_stay_their_own_series(client):
    """``|`` and ``=`` are legal in dimension values; they must not merge two series or
    split one dimension into two in ListMetrics."""
    cw = client("cloudwatch")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(minutes=5)
    tricky = [{"Name": "A", "Value": "x|B=y"}]
    plain = [{"Name": "A", "Value": "x"}, {"Name": "B", "Value": "y"}]
    cw.put_metric_data(Namespace="Sep", MetricData=[
        {"MetricName": "m", "Dimensions": dims, "Value": value, "Timestamp": start}
        for dims, value in ((tricky, 1.0), (plain, 100.0))])
    for dims, value in ((tricky, 1.0), (plain, 100.0)):
        points = cw.get_metric_statistics(Namespace="Sep", MetricName="m", Dimensions=dims,
                                          StartTime=start, EndTime=now, Period=300,
                                          Statistics=["Sum"])["Datapoints"]
        assert [p["Sum"] for p in points] == [value]
    listed = cw.list_metrics(Namespace="Sep")["Metrics"]
    assert sorted(map(str, (m["Dimensions"] for m in listed))) == sorted(map(str, (tricky, plain)))
