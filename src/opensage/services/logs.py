"""CloudWatch Logs: groups, streams and events, all in the database.

Times are epoch milliseconds, as Logs speaks. Events are read in (timestamp, id) order, and
every token is a keyset position in that order, so events inserted between two calls never
shift or repeat what a reader sees.

A group's retention (``PutRetentionPolicy``) is honoured twice: reads never show an event older
than it, and ``purge_expired`` (run by the housekeeping thread) deletes such events in small
transactions, keeping each stream's ``storedBytes`` and ``firstEventTimestamp`` right.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict

from sqlalchemy import (
    ColumnElement,
    Connection,
    LargeBinary,
    RowMapping,
    Table,
    cast,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from opensage.errors import (
    InvalidParameterException,
    LogsResourceAlreadyExists,
    LogsResourceNotFound,
)
from opensage.services.log_query import decode_token, encode_token, parse_filter_pattern
from opensage.settings import Settings
from opensage.store.db import Database
from opensage.store.schema import log_events, log_groups, log_streams

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653)
DAY_MS = 24 * 3600 * 1000
MAX_FUTURE_MS = 2 * 3600 * 1000  # PutLogEvents rejects events more than 2 h ahead
MAX_AGE_MS = 14 * DAY_MS  # ... and more than 14 days old
MAX_BATCH_BYTES = 1_048_576  # message bytes + 26 per event, for a batch and for a response
EVENT_OVERHEAD = 26
MAX_EVENTS = 10_000
FIRST = (-(2**62), 0)  # a keyset position before every event
SCAN_CHUNK = 1000
PURGE_CHUNK = 1000  # events deleted per transaction: writers wait at most one chunk



class InputLogEvent(TypedDict):
    """A ``PutLogEvents`` event, as the API takes it."""

    timestamp: int
    message: str


Event = InputLogEvent | tuple[int, str]  # opensage's own writers pass (timestamp, message)
_GROUP_MISSING = "The specified log group does not exist."
_STREAM_MISSING = "The specified log stream does not exist."


class LogService:
    def __init__(self, db: Database, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.db, self.settings, self.clock = db, settings, clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def group_arn(self, group: str) -> str:
        return self.settings.arn("logs", f"log-group:{group}")

    # -- groups ----------------------------------------------------------------------------
    def create_group(self, name: str, *, tags: Mapping[str, str] | None = None,
                     kms_key_id: str | None = None, log_group_class: str | None = None) -> None:
        meta = {"tags": dict(tags or {}), "kmsKeyId": kms_key_id,
                "logGroupClass": log_group_class or "STANDARD"}
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(log_groups).values(
                    name=name, creation_time=self.now_ms(), retention_days=None, meta=meta))
        except IntegrityError:
            raise LogsResourceAlreadyExists("The specified log group already exists") from None

    def delete_group(self, name: str) -> None:
        with self.db.transaction() as conn:
            self._require_group(conn, name)
            conn.execute(delete(log_events).where(log_events.c.group_name == name))
            conn.execute(delete(log_streams).where(log_streams.c.group_name == name))
            conn.execute(delete(log_groups).where(log_groups.c.name == name))

    def set_retention(self, name: str, days: int | None) -> None:
        if days is not None and days not in RETENTION_DAYS:
            raise InvalidParameterException(
                f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to "
                f"satisfy constraint: Member must satisfy enum value set: {list(RETENTION_DAYS)}")
        with self.db.transaction() as conn:
            self._require_group(conn, name)
            conn.execute(update(log_groups).where(log_groups.c.name == name)
                         .values(retention_days=days))

    def describe_groups(self, *, prefix: str | None = None, pattern: str | None = None,
                        limit: int = 50, token: str | None = None
                        ) -> tuple[list[dict[str, Any]], str | None]:
        if prefix and pattern:
            raise InvalidParameterException(
                "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive")
        query = select(log_groups).order_by(log_groups.c.name).limit(limit + 1)
        if prefix:
            query = query.where(_starts_with(log_groups.c.name, prefix))
        if pattern:  # AWS: a case-sensitive substring match (LIKE is not, in SQLite)
            find = func.strpos if self.db.engine.dialect.name == "postgresql" else func.instr
            query = query.where(find(log_groups.c.name, pattern) > 0)
        if token:
            query = query.where(log_groups.c.name > decode_token(token, "groups", 2)[1])
        with self.db.transaction() as conn:
            rows = conn.execute(query).mappings().all()
            page = rows[:limit]
            sizes = dict(conn.execute(
                select(log_streams.c.group_name, func.sum(log_streams.c.stored_bytes))
                .where(log_streams.c.group_name.in_([r["name"] for r in page]))
                .group_by(log_streams.c.group_name)).all())
        groups = [self._group_view(r, int(sizes.get(r["name"]) or 0)) for r in page]
        more = len(rows) > limit
        return groups, encode_token("groups", page[-1]["name"]) if more else None

    def _group_view(self, row: RowMapping, stored: int) -> dict[str, Any]:
        arn = self.group_arn(row["name"])
        meta = row["meta"] or {}
        return {"logGroupName": row["name"], "creationTime": row["creation_time"],
                "retentionInDays": row["retention_days"], "metricFilterCount": 0,
                "arn": arn + ":*", "logGroupArn": arn, "storedBytes": stored,
                "kmsKeyId": meta.get("kmsKeyId"),
                "logGroupClass": meta.get("logGroupClass", "STANDARD")}

    # -- streams ---------------------------------------------------------------------------
    def create_stream(self, group: str, name: str) -> None:
        try:
            with self.db.transaction() as conn:
                self._require_group(conn, group)
                conn.execute(insert(log_streams).values(
                    group_name=group, name=name, creation_time=self.now_ms(), stored_bytes=0))
        except IntegrityError:
            raise LogsResourceAlreadyExists("The specified log stream already exists") from None

    def delete_stream(self, group: str, name: str) -> None:
        with self.db.transaction() as conn:
            self._require_stream(conn, group, name)
            conn.execute(delete(log_events).where(log_events.c.group_name == group,
                                                  log_events.c.stream_name == name))
            conn.execute(delete(log_streams).where(log_streams.c.group_name == group,
                                                   log_streams.c.name == name))

    def describe_streams(self, group: str, *, prefix: str | None = None,
                         order_by: str = "LogStreamName", descending: bool = False,
                         limit: int = 50, token: str | None = None
                         ) -> tuple[list[dict[str, Any]], str | None]:
        if prefix and order_by == "LastEventTime":
            raise InvalidParameterException(
                "Cannot order by LastEventTime with a logStreamNamePrefix.")
        c = log_streams.c
        by_time = order_by == "LastEventTime"
        key = (func.coalesce(c.last_event_time, 0), c.name) if by_time else (c.name,)
        query = select(log_streams).where(c.group_name == group).limit(limit + 1)
        query = query.order_by(*(k.desc() if descending else k for k in key))
        if prefix:
            query = query.where(_starts_with(c.name, prefix))
        if token:
            kind = f"streams:{order_by}:{descending}"
            last = decode_token(token, kind, 1 + len(key))[1:]
            position = tuple_(*key) if by_time else key[0]
            bound = tuple_(*last) if by_time else last[0]
            query = query.where(position < bound if descending else position > bound)
        with self.db.transaction() as conn:
            self._require_group(conn, group)
            rows = conn.execute(query).mappings().all()
        page = rows[:limit]
        next_token = None
        if len(rows) > limit:
            last_row = page[-1]
            values = ([last_row["last_event_time"] or 0, last_row["name"]] if by_time
                      else [last_row["name"]])
            next_token = encode_token(f"streams:{order_by}:{descending}", *values)
        return [self._stream_view(group, r) for r in page], next_token

    def _stream_view(self, group: str, row: RowMapping) -> dict[str, Any]:
        return {"logStreamName": row["name"], "creationTime": row["creation_time"],
                "firstEventTimestamp": row["first_event_time"],
                "lastEventTimestamp": row["last_event_time"],
                "lastIngestionTime": row["last_ingestion_time"],
                "arn": self.group_arn(group) + f":log-stream:{row['name']}",
                "storedBytes": row["stored_bytes"]}

    # -- writing ---------------------------------------------------------------------------
    def put_events(self, group: str, stream: str, events: Sequence[Event]) -> dict[str, Any]:
        """PutLogEvents: check the batch as AWS does, store what is acceptable.

        Returns ``rejectedLogEventsInfo`` members (empty when everything was accepted).
        """
        batch = [_event(e) for e in events]
        if not batch:
            raise InvalidParameterException("At least one log event is required.")
        if any(a[0] > b[0] for a, b in itertools.pairwise(batch)):
            raise InvalidParameterException(
                "Log events in a single PutLogEvents request must be in chronological order.")
        size = sum(len(m.encode()) + EVENT_OVERHEAD for _, m in batch)
        if size > MAX_BATCH_BYTES:
            raise InvalidParameterException(
                f"Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}")
        now = self.now_ms()
        with self.db.transaction() as conn:
            retention = self._require_group(conn, group)["retention_days"]
            self._require_stream(conn, group, stream)
            too_old = sum(1 for ts, _ in batch if ts < now - MAX_AGE_MS)
            expired = (sum(1 for ts, _ in batch if ts < now - retention * DAY_MS)
                       if retention else 0)
            too_new = next((i for i, (ts, _) in enumerate(batch) if ts > now + MAX_FUTURE_MS),
                           len(batch))
            accepted = batch[max(too_old, expired):too_new]
            if accepted and accepted[-1][0] - accepted[0][0] > DAY_MS:
                raise InvalidParameterException(
                    "The batch of log events in a single PutLogEvents request cannot span "
                    "more than 24 hours.")
            self._insert(conn, group, stream, accepted, now)
        rejected: dict[str, int] = {}
        if too_old:
            rejected["tooOldLogEventEndIndex"] = too_old  # exclusive, as AWS documents
        if expired:
            rejected["expiredLogEventEndIndex"] = expired
        if too_new < len(batch):
            rejected["tooNewLogEventStartIndex"] = too_new  # inclusive
        return rejected

    def append(self, group: str, stream: str, events: Iterable[Event]) -> int:
        """Store events for opensage's own writers (the training runner, endpoints).

        Creates the group and stream on demand, sorts by timestamp and skips empty messages
        (Logs cannot hold them); none of PutLogEvents's age limits apply. Returns the count.
        """
        batch = sorted((e for e in map(_event, events) if e[1]), key=lambda e: e[0])
        now = self.now_ms()
        with self.db.transaction() as conn:
            _insert_missing(conn, log_groups, name=group, creation_time=now,
                            retention_days=None, meta={"tags": {}, "logGroupClass": "STANDARD"})
            _insert_missing(conn, log_streams, group_name=group, name=stream,
                            creation_time=now, stored_bytes=0)
            self._insert(conn, group, stream, batch, now)
        return len(batch)

    def _insert(self, conn: Connection, group: str, stream: str,
                batch: Sequence[tuple[int, str]], now: int) -> None:
        if not batch:
            return
        conn.execute(insert(log_events), [
            {"group_name": group, "stream_name": stream, "timestamp": ts,
             "ingestion_time": now, "message": message} for ts, message in batch])
        c = log_streams.c
        low, high = min(ts for ts, _ in batch), max(ts for ts, _ in batch)
        stored = sum(len(m.encode()) for _, m in batch)
        conn.execute(update(log_streams).where(c.group_name == group, c.name == stream).values(
            first_event_time=_extreme(conn, "min", c.first_event_time, low),
            last_event_time=_extreme(conn, "max", c.last_event_time, high),
            last_ingestion_time=now, stored_bytes=c.stored_bytes + stored))

    # -- reading ---------------------------------------------------------------------------
    def get_events(self, group: str, stream: str, *, start_time: int | None = None,
                   end_time: int | None = None, limit: int = MAX_EVENTS,
                   start_from_head: bool = False, token: str | None = None) -> dict[str, Any]:
        """GetLogEvents. Tokens mark a position between two events; a forward read that
        finds nothing new answers the same ``nextForwardToken`` it was given."""
        c = log_events.c
        position: tuple[int, int] | None  # None: a backward read from the end
        if token:
            forward, position = _position(token)
        else:
            forward, position = start_from_head, FIRST if start_from_head else None
        key = tuple_(c.timestamp, c.id)
        query = select(c.id, c.timestamp, c.message, c.ingestion_time).where(
            c.group_name == group, c.stream_name == stream)
        if start_time is not None:
            query = query.where(c.timestamp >= start_time)
        if end_time is not None:
            query = query.where(c.timestamp < end_time)  # GetLogEvents' endTime is exclusive
        if position is not None:
            query = query.where(key >= tuple_(*position) if forward else key < tuple_(*position))
        if forward:
            query = query.order_by(c.timestamp, c.id)
        else:
            query = query.order_by(c.timestamp.desc(), c.id.desc())
        with self.db.transaction() as conn:
            oldest = self._oldest_kept(self._require_stream(conn, group, stream))
            if oldest is not None:
                query = query.where(c.timestamp >= oldest)
            rows = _within_bytes(conn.execute(query.limit(limit)).mappings().all())
        if not forward:
            rows.reverse()
        if rows:
            first, last = (rows[0]["timestamp"], rows[0]["id"]), (rows[-1]["timestamp"],
                                                                   rows[-1]["id"] + 1)
        else:  # nothing here: both tokens stay where the reader is
            first = last = position if position is not None else FIRST
        return {"events": [{"timestamp": r["timestamp"], "message": r["message"],
                            "ingestionTime": r["ingestion_time"]} for r in rows],
                "nextForwardToken": "f/" + encode_token("f", *last),
                "nextBackwardToken": "b/" + encode_token("b", *first)}

    def filter_events(self, group: str, *, stream_names: Sequence[str] | None = None,
                      stream_prefix: str | None = None, start_time: int | None = None,
                      end_time: int | None = None, pattern: str | None = None,
                      limit: int = MAX_EVENTS, token: str | None = None
                      ) -> tuple[list[dict[str, Any]], str | None]:
        if stream_names and stream_prefix:
            raise InvalidParameterException(
                "logStreamNames and logStreamNamePrefix are mutually exclusive")
        matches = parse_filter_pattern(pattern)
        c = log_events.c
        query = select(c.id, c.stream_name, c.timestamp, c.message, c.ingestion_time).where(
            c.group_name == group).order_by(c.timestamp, c.id)
        if stream_names:
            query = query.where(c.stream_name.in_(stream_names))
        if stream_prefix:
            query = query.where(_starts_with(c.stream_name, stream_prefix))
        if start_time is not None:
            query = query.where(c.timestamp >= start_time)
        if end_time is not None:
            query = query.where(c.timestamp <= end_time)  # FilterLogEvents' is inclusive
        position = tuple(decode_token(token, "filter", 3)[1:]) if token else FIRST
        found: list[RowMapping] = []
        with self.db.transaction() as conn:
            oldest = self._oldest_kept(self._require_group(conn, group))
            if oldest is not None:
                query = query.where(c.timestamp >= oldest)
            while len(found) <= limit:  # scan in chunks until one event past the page
                chunk = conn.execute(query.where(tuple_(c.timestamp, c.id) >
                                                 tuple_(*position)).limit(SCAN_CHUNK)
                                     ).mappings().all()
                found.extend(r for r in chunk if matches is None or matches(r["message"]))
                if len(chunk) < SCAN_CHUNK:
                    break
                position = (chunk[-1]["timestamp"], chunk[-1]["id"])
        page = _within_bytes(found[:limit])
        more = len(found) > len(page)
        events = [{"logStreamName": r["stream_name"], "timestamp": r["timestamp"],
                   "message": r["message"], "ingestionTime": r["ingestion_time"],
                   "eventId": f"{r['id']:056d}"} for r in page]
        next_token = (encode_token("filter", page[-1]["timestamp"], page[-1]["id"])
                      if more and page else None)
        return events, next_token

    # -- retention -------------------------------------------------------------------------
    def purge_expired(self, now_ms: int | None = None) -> int:
        """Delete the events older than their group's retention; returns how many."""
        now = self.now_ms() if now_ms is None else now_ms
        with self.db.transaction() as conn:
            groups = conn.execute(select(log_groups.c.name, log_groups.c.retention_days).where(
                log_groups.c.retention_days.is_not(None))).all()
        return sum(self._purge_group(name, now - days * DAY_MS) for name, days in groups)

    def _purge_group(self, group: str, cutoff: int) -> int:
        c = log_events.c
        purged = 0
        while True:
            with self.db.transaction() as conn:
                chunk = conn.execute(
                    select(c.id, c.stream_name, _byte_length(conn, c.message))
                    .where(c.group_name == group, c.timestamp < cutoff)
                    .order_by(c.timestamp, c.id).limit(PURGE_CHUNK)).all()
                if chunk:
                    conn.execute(delete(log_events).where(c.id.in_([r[0] for r in chunk])))
                freed: dict[str, int] = {}
                for _, stream, size in chunk:
                    freed[stream] = freed.get(stream, 0) + int(size)
                for stream, size in freed.items():
                    conn.execute(update(log_streams).where(
                        log_streams.c.group_name == group, log_streams.c.name == stream
                    ).values(stored_bytes=log_streams.c.stored_bytes - size,
                             first_event_time=select(func.min(c.timestamp)).where(
                                 c.group_name == group, c.stream_name == stream
                             ).scalar_subquery()))
            purged += len(chunk)
            if len(chunk) < PURGE_CHUNK:
                return purged

    def _oldest_kept(self, group: RowMapping) -> int | None:
        """The oldest timestamp a read may show under the group's retention (None: all)."""
        days = group["retention_days"]
        return self.now_ms() - days * DAY_MS if days else None

    # -- helpers ---------------------------------------------------------------------------
    def _require_group(self, conn: Connection, group: str) -> RowMapping:
        row = conn.execute(select(log_groups).where(log_groups.c.name == group)).mappings().first()
        if row is None:
            raise LogsResourceNotFound(_GROUP_MISSING)
        return row

    def _require_stream(self, conn: Connection, group: str, stream: str) -> RowMapping:
        """The stream's group row, once both are known to exist."""
        row = self._require_group(conn, group)
        found = conn.execute(select(log_streams.c.name).where(
            log_streams.c.group_name == group, log_streams.c.name == stream)).first()
        if found is None:
            raise LogsResourceNotFound(_STREAM_MISSING)
        return row


def _event(event: Event) -> tuple[int, str]:
    if isinstance(event, tuple):
        return int(event[0]), str(event[1])
    return int(event["timestamp"]), str(event["message"])


def _position(token: str) -> tuple[bool, tuple[int, int]]:
    """A GetLogEvents token: its direction and keyset position (timestamp, id)."""
    direction, _, body = token.partition("/")
    if direction not in ("f", "b") or not body:
        raise InvalidParameterException("The specified nextToken is invalid.")
    values = decode_token(body, direction, 3)
    if not all(isinstance(v, int) for v in values[1:]):
        raise InvalidParameterException("The specified nextToken is invalid.")
    return direction == "f", (values[1], values[2])


def _within_bytes(rows: Sequence[RowMapping]) -> list[RowMapping]:
    """As many rows as fit a 1 MB response (at least one)."""
    total = 0
    out: list[RowMapping] = []
    for row in rows:
        total += len(row["message"].encode()) + EVENT_OVERHEAD
        if out and total > MAX_BATCH_BYTES:
            break
        out.append(row)
    return out


def _starts_with(column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    # Names are case-sensitive; LIKE is not in SQLite, substr compares exactly everywhere.
    return func.substr(column, 1, len(prefix)) == prefix


def _byte_length(conn: Connection, column: ColumnElement[str]) -> ColumnElement[int]:
    """UTF-8 bytes of a text column (storedBytes counts bytes; SQLite's length counts
    characters unless given a blob)."""
    if conn.dialect.name == "postgresql":
        return func.octet_length(column)
    return func.length(cast(column, LargeBinary))


def _extreme(conn: Connection, which: str, column: ColumnElement[int], value: int,
             ) -> ColumnElement[int]:
    """min/max of a nullable column and a value, in SQL (SQLite's two-argument min/max
    return NULL when either is NULL; PostgreSQL's least/greatest skip NULLs)."""
    if conn.dialect.name == "postgresql":
        return (func.least if which == "min" else func.greatest)(column, value)
    return func.coalesce(getattr(func, which)(column, value), value)


def _insert_missing(conn: Connection, table: Table, **values: Any) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: concurrent writers may create the same row."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())

