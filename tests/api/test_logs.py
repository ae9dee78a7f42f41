"""CloudWatch Logs through boto3: groups, streams, events, tokens and errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION

DAY_MS = 86_400_000
GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def logs(client: Callable[..., Any]) -> Any:
    return client("logs")


def now_ms() -> int:
    return int(time.time() * 1000)


def expect_error(code: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    assert exc.value.response["Error"]["Code"] == code
    return exc.value


def put(logs: Any, stream: str, messages: list[str], start: int, group: str = GROUP,
        step: int = 1) -> dict[str, Any]:
    events = [{"timestamp": start + i * step, "message": m} for i, m in enumerate(messages)]
    response: dict[str, Any] = logs.put_log_events(logGroupName=group, logStreamName=stream,
                                                   logEvents=events)
    return response


def make_stream(logs: Any, stream: str, group: str = GROUP) -> None:
    if group not in [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]:
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)


def messages(response: dict[str, Any]) -> list[str]:
    return [e["message"] for e in response["events"]]


# -- groups ----------------------------------------------------------------------------------

def test_log_groups_lifecycle_and_errors(logs: Any) -> None:
    logs.create_log_group(logGroupName="/a/one", tags={"team": "ml"})
    expect_error("ResourceAlreadyExistsException", logs.create_log_group, logGroupName="/a/one")

    (group,) = logs.describe_log_groups()["logGroups"]
    assert group["logGroupName"] == "/a/one"
    assert group["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/a/one:*"
    assert group["logGroupArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/a/one"
    assert abs(group["creationTime"] - now_ms()) < 60_000
    assert group["storedBytes"] == 0 and "retentionInDays" not in group

    logs.delete_log_group(logGroupName="/a/one")
    assert logs.describe_log_groups()["logGroups"] == []
    expect_error("ResourceNotFoundException", logs.delete_log_group, logGroupName="/a/one")


def test_describe_log_groups_prefix_pattern_and_pages(logs: Any) -> None:
    for name in ("/b/3", "/b/1", "/c/1", "/b/2", "/B/4"):
        logs.create_log_group(logGroupName=name)
    names = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert names == ["/B/4", "/b/1", "/b/2", "/b/3", "/c/1"]
    by_prefix = logs.describe_log_groups(logGroupNamePrefix="/b/")
    assert [g["logGroupName"] for g in by_prefix["logGroups"]] == ["/b/1", "/b/2", "/b/3"]
    assert "nextToken" not in by_prefix
    by_pattern = logs.describe_log_groups(logGroupNamePattern="b/")  # case-sensitive substring
    assert [g["logGroupName"] for g in by_pattern["logGroups"]] == ["/b/1", "/b/2", "/b/3"]
    expect_error("InvalidParameterException", logs.describe_log_groups,
                 logGroupNamePrefix="/b", logGroupNamePattern="b")

    first = logs.describe_log_groups(limit=2)
    assert len(first["logGroups"]) == 2 and first["nextToken"]
    logs.create_log_group(logGroupName="/a/0")  # sorts before the position: never shows up
    second = logs.describe_log_groups(limit=2, nextToken=first["nextToken"])
    third = logs.describe_log_groups(limit=2, nextToken=second["nextToken"])
    seen = [g["logGroupName"] for page in (first, second, third) for g in page["logGroups"]]
    assert seen == ["/B/4", "/b/1", "/b/2", "/b/3", "/c/1"]
    assert "nextToken" not in third
    expect_error("InvalidParameterException", logs.describe_log_groups, nextToken="garbage")


def test_retention_policy(logs: Any) -> None:
    logs.create_log_group(logGroupName="/r")
    logs.put_retention_policy(logGroupName="/r", retentionInDays=7)
    assert logs.describe_log_groups()["logGroups"][0]["retentionInDays"] == 7
    expect_error("InvalidParameterException", logs.put_retention_policy, logGroupName="/r",
                 retentionInDays=8)
    assert logs.describe_log_groups()["logGroups"][0]["retentionInDays"] == 7  # unchanged
    expect_error("ResourceNotFoundException", logs.put_retention_policy,
                 logGroupName="/missing", retentionInDays=7)
    logs.delete_retention_policy(logGroupName="/r")
    assert "retentionInDays" not in logs.describe_log_groups()["logGroups"][0]


def test_bad_group_name_is_refused_and_changes_nothing(logs: Any) -> None:
    with pytest.raises(ClientError) as exc:
        logs.create_log_group(logGroupName="bad name!")
    error = exc.value.response["Error"]
    # AWS Logs words this as a validation error; the code depends on the shared validator.
    assert error["Code"] in ("InvalidParameterException", "ValidationException")
    assert "logGroupName" in error["Message"]
    assert logs.describe_log_groups()["logGroups"] == []


# -- streams ---------------------------------------------------------------------------------

def test_log_streams_lifecycle_and_errors(logs: Any) -> None:
    expect_error("ResourceNotFoundException", logs.create_log_stream, logGroupName=GROUP,
                 logStreamName="s")
    expect_error("ResourceNotFoundException", logs.describe_log_streams, logGroupName=GROUP)

    make_stream(logs, "job/algo-1-1")
    expect_error("ResourceAlreadyExistsException", logs.create_log_stream, logGroupName=GROUP,
                 logStreamName="job/algo-1-1")

    (stream,) = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert stream["logStreamName"] == "job/algo-1-1"
    assert stream["arn"] == (f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}"
                             ":log-stream:job/algo-1-1")
    assert "firstEventTimestamp" not in stream and "lastEventTimestamp" not in stream

    start = now_ms() - 1000
    put(logs, "job/algo-1-1", ["a", "bb", "ccc"], start, step=10)
    (stream,) = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert stream["firstEventTimestamp"] == start
    assert stream["lastEventTimestamp"] == start + 20
    assert abs(stream["lastIngestionTime"] - now_ms()) < 60_000
    assert stream["storedBytes"] == 6 and stream["creationTime"] <= stream["lastIngestionTime"]

    logs.delete_log_stream(logGroupName=GROUP, logStreamName="job/algo-1-1")
    assert logs.describe_log_streams(logGroupName=GROUP)["logStreams"] == []
    expect_error("ResourceNotFoundException", logs.delete_log_stream, logGroupName=GROUP,
                 logStreamName="job/algo-1-1")
    logs.create_log_stream(logGroupName=GROUP, logStreamName="job/algo-1-1")
    assert logs.get_log_events(logGroupName=GROUP, logStreamName="job/algo-1-1")["events"] == []


def test_describe_log_streams_order_prefix_and_pages(logs: Any) -> None:
    start = now_ms() - 10_000
    for i, name in enumerate(["job/algo-1-2", "other/x", "job/algo-1-1", "job/algo-1-3"]):
        make_stream(logs, name)
        put(logs, name, ["m"], start + [300, 100, 200, 0][i])

    def names(**kw: Any) -> list[str]:
        return [s["logStreamName"] for s in
                logs.describe_log_streams(logGroupName=GROUP, **kw)["logStreams"]]

    assert names() == ["job/algo-1-1", "job/algo-1-2", "job/algo-1-3", "other/x"]
    assert names(descending=True) == ["other/x", "job/algo-1-3", "job/algo-1-2", "job/algo-1-1"]
    assert names(logStreamNamePrefix="job/") == ["job/algo-1-1", "job/algo-1-2", "job/algo-1-3"]
    assert names(orderBy="LastEventTime") == [
        "job/algo-1-3", "other/x", "job/algo-1-1", "job/algo-1-2"]
    assert names(orderBy="LastEventTime", descending=True) == [
        "job/algo-1-2", "job/algo-1-1", "other/x", "job/algo-1-3"]
    expect_error("InvalidParameterException", logs.describe_log_streams, logGroupName=GROUP,
                 orderBy="LastEventTime", logStreamNamePrefix="job/")

    for order, descending in (("LogStreamName", False), ("LastEventTime", True)):
        seen, token = [], None
        for _ in range(10):
            kw = {"nextToken": token} if token else {}
            page = logs.describe_log_streams(logGroupName=GROUP, orderBy=order,
                                             descending=descending, limit=3, **kw)
            seen += [s["logStreamName"] for s in page["logStreams"]]
            token = page.get("nextToken")
            if token is None:
                break
        assert seen == names(orderBy=order, descending=descending)

    # A full last page carries no token: the SDK's discovery loop would never end otherwise.
    page = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="job/", limit=3)
    assert len(page["logStreams"]) == 3 and "nextToken" not in page


# -- PutLogEvents ----------------------------------------------------------------------------

def test_put_log_events_rejects_too_old_and_too_new(logs: Any) -> None:
    make_stream(logs, "s")
    now = now_ms()
    response = logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[
        {"timestamp": now - 20 * DAY_MS, "message": "ancient"},
        {"timestamp": now - 15 * DAY_MS, "message": "old"},
        {"timestamp": now - 1000, "message": "ok1"},
        {"timestamp": now, "message": "ok2"},
        {"timestamp": now + 3 * 3_600_000, "message": "future"},
    ])
    assert response["nextSequenceToken"]
    assert response["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2,
                                                 "tooNewLogEventStartIndex": 4}
    stored = logs.get_log_events(logGroupName=GROUP, logStreamName="s", startFromHead=True)
    assert messages(stored) == ["ok1", "ok2"]
    accepted = put(logs, "s", ["fine"], now + 1)
    assert "rejectedLogEventsInfo" not in accepted


def test_put_log_events_expired_by_retention(logs: Any) -> None:
    make_stream(logs, "s")
    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=1)
    now = now_ms()
    response = put(logs, "s", ["expired", "kept"], now - 2 * DAY_MS, step=2 * DAY_MS - 5000)
    assert response["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}
    assert messages(logs.get_log_events(logGroupName=GROUP, logStreamName="s")) == ["kept"]


def test_retention_hides_older_events_at_once(logs: Any) -> None:
    make_stream(logs, "s")
    now = now_ms()
    put(logs, "s", ["three days old"], now - 3 * DAY_MS)
    put(logs, "s", ["recent"], now - 1000)
    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=1)
    assert logs.describe_log_groups()["logGroups"][0]["retentionInDays"] == 1
    assert messages(logs.get_log_events(logGroupName=GROUP, logStreamName="s",
                                        startFromHead=True)) == ["recent"]
    assert messages(logs.filter_log_events(logGroupName=GROUP, startTime=0)) == ["recent"]


@pytest.mark.parametrize("days", [0, 2, 4000, -1])
def test_retention_outside_aws_list_is_refused(logs: Any, days: int) -> None:
    logs.create_log_group(logGroupName="/r")
    expect_error("InvalidParameterException", logs.put_retention_policy, logGroupName="/r",
                 retentionInDays=days)
    assert "retentionInDays" not in logs.describe_log_groups()["logGroups"][0]


@pytest.mark.parametrize("timestamps", [[2000, 1000], [0, DAY_MS + 1]],
                         ids=["not-chronological", "spans-more-than-24h"])
def test_put_log_events_bad_batch_changes_nothing(logs: Any, timestamps: list[int]) -> None:
    make_stream(logs, "s")
    base = now_ms() - 2 * DAY_MS
    events = [{"timestamp": base + t, "message": "x"} for t in timestamps]
    expect_error("InvalidParameterException", logs.put_log_events, logGroupName=GROUP,
                 logStreamName="s", logEvents=events)
    assert logs.get_log_events(logGroupName=GROUP, logStreamName="s")["events"] == []
    (stream,) = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert "lastEventTimestamp" not in stream and stream["storedBytes"] == 0


def test_put_log_events_limits_and_missing_targets(logs: Any) -> None:
    expect_error("ResourceNotFoundException", put, logs, "s", ["x"], now_ms())
    logs.create_log_group(logGroupName=GROUP)
    error = expect_error("ResourceNotFoundException", put, logs, "s", ["x"], now_ms())
    assert "log stream" in error.response["Error"]["Message"]
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    big = ["x" * 600_000, "y" * 600_000]  # 2 x 600 kB > 1 MB per batch
    expect_error("InvalidParameterException", put, logs, "s", big, now_ms())
    assert logs.get_log_events(logGroupName=GROUP, logStreamName="s")["events"] == []


# -- GetLogEvents ----------------------------------------------------------------------------

def test_get_log_events_windows_limits_and_order(logs: Any) -> None:
    make_stream(logs, "s")
    start = now_ms() - 60_000
    put(logs, "s", [f"m{i}" for i in range(10)], start, step=100)

    def get(**kw: Any) -> dict[str, Any]:
        return logs.get_log_events(  # type: ignore[no-any-return]
            logGroupName=GROUP, logStreamName="s", **kw)

    everything = get()
    assert messages(everything) == [f"m{i}" for i in range(10)]
    assert all(e["ingestionTime"] >= e["timestamp"] for e in everything["events"])
    assert messages(get(limit=3)) == ["m7", "m8", "m9"]  # default: the latest events
    assert messages(get(limit=3, startFromHead=True)) == ["m0", "m1", "m2"]
    window = get(startTime=start + 200, endTime=start + 500, startFromHead=True)
    assert messages(window) == ["m2", "m3", "m4"]  # startTime inclusive, endTime exclusive
    by_identifier = logs.get_log_events(
        logGroupIdentifier=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}",
        logStreamName="s", limit=1)
    assert messages(by_identifier) == ["m9"]
    expect_error("InvalidParameterException", logs.get_log_events, logStreamName="s")
    expect_error("ResourceNotFoundException", logs.get_log_events, logGroupName=GROUP,
                 logStreamName="nope")
    for token in ("f/garbage", "nonsense", "b/"):
        expect_error("InvalidParameterException", get, nextToken=token)


def test_get_log_events_tokens_page_both_ways(logs: Any) -> None:
    make_stream(logs, "s")
    start = now_ms() - 60_000
    put(logs, "s", [f"m{i}" for i in range(7)], start, step=0)  # same timestamp: id breaks ties

    first = logs.get_log_events(logGroupName=GROUP, logStreamName="s", startFromHead=True,
                                limit=3)
    assert first["nextForwardToken"].startswith("f/")
    assert first["nextBackwardToken"].startswith("b/")
    pages = [messages(first)]
    token = first["nextForwardToken"]
    while True:
        page = logs.get_log_events(logGroupName=GROUP, logStreamName="s", nextToken=token,
                                   limit=3)
        if not page["events"]:
            assert page["nextForwardToken"] == token  # AWS's end-of-stream signal
            break
        pages.append(messages(page))
        token = page["nextForwardToken"]
    assert pages == [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]

    tail = logs.get_log_events(logGroupName=GROUP, logStreamName="s", limit=3)
    assert messages(tail) == ["m4", "m5", "m6"]
    back = logs.get_log_events(logGroupName=GROUP, logStreamName="s", limit=3,
                               nextToken=tail["nextBackwardToken"])
    assert messages(back) == ["m1", "m2", "m3"]
    back = logs.get_log_events(logGroupName=GROUP, logStreamName="s", limit=3,
                               nextToken=back["nextBackwardToken"])
    assert messages(back) == ["m0"]
    end = logs.get_log_events(logGroupName=GROUP, logStreamName="s", limit=3,
                              nextToken=back["nextBackwardToken"])
    assert end["events"] == [] and end["nextBackwardToken"] == back["nextBackwardToken"]


def test_sdk_tailer_contract_end_of_stream_then_new_events(logs: Any) -> None:
    """What sagemaker.logs.log_stream does: read from head with startTime, follow
    nextForwardToken until an empty page; later calls with that token see only new events."""
    make_stream(logs, "job/algo-1-1")
    empty = logs.get_log_events(logGroupName=GROUP, logStreamName="job/algo-1-1",
                                startTime=0, startFromHead=True)
    assert empty["events"] == []
    assert empty["nextForwardToken"] and empty["nextBackwardToken"]
    again = logs.get_log_events(logGroupName=GROUP, logStreamName="job/algo-1-1",
                                startTime=0, startFromHead=True,
                                nextToken=empty["nextForwardToken"])
    assert again["events"] == [] and again["nextForwardToken"] == empty["nextForwardToken"]

    start = now_ms() - 5000
    put(logs, "job/algo-1-1", ["epoch 1", "epoch 2"], start)
    token, read = empty["nextForwardToken"], []
    for _ in range(5):
        page = logs.get_log_events(logGroupName=GROUP, logStreamName="job/algo-1-1",
                                   startTime=0, startFromHead=True, nextToken=token)
        if not page["events"]:
            break
        read += messages(page)
        token = page["nextForwardToken"]
    assert read == ["epoch 1", "epoch 2"]
    put(logs, "job/algo-1-1", ["epoch 3"], start + 10)
    newer = logs.get_log_events(logGroupName=GROUP, logStreamName="job/algo-1-1",
                                startTime=0, startFromHead=True, nextToken=token)
    assert messages(newer) == ["epoch 3"]


# -- FilterLogEvents -------------------------------------------------------------------------

@pytest.fixture
def filled(logs: Any) -> int:
    start = now_ms() - 60_000
    make_stream(logs, "job/algo-1-1")
    make_stream(logs, "job/algo-2-1")
    make_stream(logs, "other/1")
    put(logs, "job/algo-1-1", ["INFO start", "ERROR disk full", "INFO loss=0.5"], start, step=10)
    put(logs, "job/algo-2-1", ["WARN slow", "ERROR Connection timed out", "INFO done"],
        start + 5, step=10)
    put(logs, "other/1", ["ERROR elsewhere"], start + 1)
    return start


def filtered(logs: Any, **kw: Any) -> list[str]:
    return [e["message"] for e in logs.filter_log_events(logGroupName=GROUP, **kw)["events"]]


def test_filter_log_events_patterns(logs: Any, filled: int) -> None:
    assert filtered(logs, filterPattern="ERROR") == [
        "ERROR elsewhere", "ERROR disk full", "ERROR Connection timed out"]
    assert filtered(logs, filterPattern='"timed out"') == ["ERROR Connection timed out"]
    assert filtered(logs, filterPattern="ERROR disk") == ["ERROR disk full"]
    assert filtered(logs, filterPattern="?WARN ?full") == ["WARN slow", "ERROR disk full"]
    assert filtered(logs, filterPattern="ERROR -disk -elsewhere") == [
        "ERROR Connection timed out"]
    assert filtered(logs, filterPattern="%loss=[0-9.]+%") == ["INFO loss=0.5"]
    assert filtered(logs, filterPattern="error") == []  # case-sensitive, as AWS
    assert len(filtered(logs, filterPattern="")) == 7
    expect_error("InvalidParameterException", logs.filter_log_events, logGroupName=GROUP,
                 filterPattern='{ $.level = "x" }')


def test_filter_log_events_streams_times_and_fields(logs: Any, filled: int) -> None:
    assert filtered(logs, logStreamNames=["job/algo-2-1"]) == [
        "WARN slow", "ERROR Connection timed out", "INFO done"]
    assert len(filtered(logs, logStreamNamePrefix="job/")) == 6
    assert filtered(logs, startTime=filled + 10, endTime=filled + 15) == [
        "ERROR disk full", "ERROR Connection timed out"]  # both ends inclusive
    event = logs.filter_log_events(logGroupName=GROUP, limit=1)["events"][0]
    assert event["logStreamName"] == "job/algo-1-1" and event["eventId"]
    assert event["timestamp"] == filled and event["ingestionTime"] >= filled
    expect_error("InvalidParameterException", logs.filter_log_events, logGroupName=GROUP,
                 logStreamNames=["a"], logStreamNamePrefix="a")
    expect_error("ResourceNotFoundException", logs.filter_log_events, logGroupName="/missing")


def test_filter_log_events_pages_are_stable_under_inserts(logs: Any, filled: int) -> None:
    first = logs.filter_log_events(logGroupName=GROUP, limit=3)
    assert len(first["events"]) == 3 and first["nextToken"]
    put(logs, "other/1", ["late but early-stamped"], filled - 1)  # before the position
    put(logs, "other/1", ["appended"], filled + 100)
    rest, token = [], first["nextToken"]
    while token:
        page = logs.filter_log_events(logGroupName=GROUP, limit=3, nextToken=token)
        rest += [e["message"] for e in page["events"]]
        token = page.get("nextToken")
    seen = [e["message"] for e in first["events"]] + rest
    assert seen == ["INFO start", "ERROR elsewhere", "WARN slow", "ERROR disk full",
                    "ERROR Connection timed out", "INFO loss=0.5", "INFO done", "appended"]
    paginator = logs.get_paginator("filter_log_events")
    pages = list(paginator.paginate(logGroupName=GROUP, filterPattern="INFO",
                                    PaginationConfig={"PageSize": 2}))
    assert [len(p["events"]) for p in pages] == [2, 1]
    assert "nextToken" not in pages[-1]
