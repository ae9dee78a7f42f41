"""LogService called directly, as opensage's own writers (the training runner) do."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from opensage.errors import InvalidParameterException, LogsResourceAlreadyExists
from opensage.services.log_query import parse_filter_pattern
from opensage.services.logs import LogService
from opensage.settings import Settings
from opensage.store.db import Database

NOW = 1_700_000_000.0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LogService]:
    db = Database(f"sqlite:///{tmp_path / 'logs.db'}")
    db.migrate()
    yield LogService(db, Settings(data_dir=tmp_path), clock=lambda: NOW)
    db.dispose()


def test_append_creates_group_and_stream_on_demand(service: LogService) -> None:
    ts = int(NOW * 1000)
    assert service.append("/aws/sagemaker/TrainingJobs", "job/algo-1-1",
                          [(ts + 2, "second"), {"timestamp": ts, "message": "first"},
                           (ts + 1, "")]) == 2  # sorted; the empty line is dropped
    assert service.append("/aws/sagemaker/TrainingJobs", "job/algo-1-1", [(ts + 3, "x")]) == 1
    page = service.get_events("/aws/sagemaker/TrainingJobs", "job/algo-1-1",
                              start_from_head=True)
    assert [e["message"] for e in page["events"]] == ["first", "second", "x"]
    streams, token = service.describe_streams("/aws/sagemaker/TrainingJobs")
    assert token is None
    assert streams[0]["firstEventTimestamp"] == ts and streams[0]["lastEventTimestamp"] == ts + 3
    with pytest.raises(LogsResourceAlreadyExists):
        service.create_group("/aws/sagemaker/TrainingJobs")


def test_append_accepts_old_events_put_would_reject(service: LogService) -> None:
    old = int(NOW * 1000) - 30 * 86_400_000
    service.append("/g", "s", [(old, "replayed")])
    assert service.put_events("/g", "s", [(old, "replayed")]) == {"tooOldLogEventEndIndex": 1}
    assert len(service.get_events("/g", "s")["events"]) == 1


def test_concurrent_appends_to_a_new_stream(service: LogService) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            service.append("/g", "s", [(n, f"line {n}")])
        except BaseException as exc:  # noqa: BLE001 - collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(service.get_events("/g", "s")["events"]) == 8


@pytest.mark.parametrize(("pattern", "message", "matches"), [
    ("ERROR", "an ERROR here", True),
    ("ERROR", "an error here", False),
    ('"disk full"', "ERROR disk full now", True),
    ('"disk full"', "full disk", False),
    ("ERROR disk", "ERROR net", False),
    ("?WARN ?ERROR", "WARN x", True),
    ("?WARN ?ERROR", "INFO x", False),
    ("ERROR -retry", "ERROR retry 1", False),
    ("%[0-9]+ms%", "took 35ms", True),
])
def test_filter_patterns(pattern: str, message: str, matches: bool) -> None:
    matcher = parse_filter_pattern(pattern)
    assert matcher is not None and matcher(message) is matches


@pytest.mark.parametrize("pattern", ['{ $.x = 1 }', "[ip, user]", '"unclosed', "%[%"])
def test_unsupported_or_broken_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidParameterException):
        parse_filter_pattern(pattern)


def test_blank_pattern_matches_everything() -> None:
    assert parse_filter_pattern("") is None and parse_filter_pattern("   ") is None


# -- retention ---------------------------------------------------------------------------------
DAY_MS = 86_400_000


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[LogService, list[float]]]:
    """A service whose clock the test moves: ``now[0]`` is the time in seconds."""
    now = [NOW]
    db = Database(f"sqlite:///{tmp_path / 'logs.db'}")
    db.migrate()
    yield LogService(db, Settings(data_dir=tmp_path), clock=lambda: now[0]), now
    db.dispose()


def test_reads_never_show_events_older_than_the_retention(
        clocked: tuple[LogService, list[float]]) -> None:
    service, now = clocked
    ts = int(NOW * 1000)
    service.append("/g", "s", [(ts - 3 * DAY_MS, "three days"), (ts - DAY_MS // 2, "half a day"),
                               (ts, "now")])
    service.set_retention("/g", 1)
    assert [e["message"] for e in service.get_events("/g", "s", start_from_head=True)[
        "events"]] == ["half a day", "now"]
    assert [e["message"] for e in service.filter_events("/g")[0]] == ["half a day", "now"]
    now[0] += 0.75 * 86_400  # time passes, no purge has run: still hidden
    assert [e["message"] for e in service.get_events("/g", "s")["events"]] == ["now"]
    assert [e["message"] for e in service.filter_events("/g", start_time=0)[0]] == ["now"]
    service.set_retention("/g", None)  # not purged yet: visible again, as in AWS
    assert len(service.get_events("/g", "s")["events"]) == 3


def test_purge_deletes_expired_events_and_fixes_stream_sizes(
        clocked: tuple[LogService, list[float]]) -> None:
    service, now = clocked
    ts = int(NOW * 1000)
    old = [(ts - 10 * DAY_MS + i, f"old é {i}") for i in range(2500)]  # several chunks
    service.append("/g", "a", [*old, (ts, "kept")])
    service.append("/g", "b", [(ts - 9 * DAY_MS, "old in b")])
    service.append("/forever", "s", [(ts - 400 * DAY_MS, "no retention")])
    service.set_retention("/g", 7)

    assert service.purge_expired() == 2501
    assert service.purge_expired() == 0  # nothing left to do
    streams = {s["logStreamName"]: s for s in service.describe_streams("/g")[0]}
    assert streams["a"]["storedBytes"] == len(b"kept")  # bytes, not characters
    assert streams["a"]["firstEventTimestamp"] == ts
    assert streams["b"]["storedBytes"] == 0 and streams["b"]["firstEventTimestamp"] is None
    assert [e["message"] for e in service.filter_events("/g")[0]] == ["kept"]
    service.set_retention("/g", None)
    assert [e["message"] for e in service.filter_events("/g")[0]] == ["kept"]  # gone for good
    assert len(service.get_events("/forever", "s")["events"]) == 1

    now[0] += 8 * 86_400
    service.set_retention("/g", 7)
    assert service.purge_expired() == 1
    sizes = {g["logGroupName"]: g["storedBytes"] for g in service.describe_groups()[0]}
    assert sizes == {"/g": 0, "/forever": len(b"no retention")}
