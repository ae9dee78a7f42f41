"""CloudTrail rows (``schema.audit_events``, ``schema.audit_trails``): append, look up newest
first by one attribute and a time range (keyset pages), purge by age. The record's contents
are ``services.audit``'s."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    delete,
    false,
    insert,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from opensage.store.db import Database
from opensage.store.schema import audit_events, audit_trails

Row = dict[str, Any]

# LookupEvents' attribute keys -> columns
ATTRIBUTES = {
    "EventId": audit_events.c.event_id,
    "EventName": audit_events.c.event_name,
    "ReadOnly": audit_events.c.read_only,
    "Username": audit_events.c.username,
    "ResourceType": audit_events.c.resource_type,
    "ResourceName": audit_events.c.resource_name,
    "EventSource": audit_events.c.event_source,
    "AccessKeyId": audit_events.c.access_key_id,
}


class EventWriter:
    """The audit writer thread's own connection: appends batches, one transaction each."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Connection | None = None

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """``rows``, committed before this returns (one executemany)."""
        if self._conn is None:
            self._conn = self.db.engine.connect()
        try:
            with self._conn.begin():
                self._conn.execute(_INSERT, list(rows))
        except Exception:
            self.close()  # a fresh connection next time
            raise

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(SQLAlchemyError):  # a broken one: nothing left to save
                conn.close()


_INSERT = insert(audit_events)


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def writer(self) -> EventWriter:
        return EventWriter(self.db)

    def append(self, row: Mapping[str, Any]) -> None:
        """One event, committed before this returns."""
        with self.db.transaction() as conn:
            conn.execute(insert(audit_events).values(**row))

    def append_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with self.db.transaction() as conn:
            conn.execute(insert(audit_events), list(rows))

    def lookup(self, attribute: tuple[str, Any] | None, start: float | None,
               end: float | None, after: tuple[float, int] | None, limit: int) -> list[Row]:
        """Up to ``limit`` events, newest first, strictly after the keyset position
        ``after`` = (event_time, seq)."""
        t = audit_events
        where: list[ColumnElement[bool]] = []
        if attribute is not None and attribute[0] == "ReadOnly":
            # a literal, so that writes use the partial index ix_audit_events_writes (and
            # reads, most events, the time index)
            where.append(t.c.read_only == (true() if attribute[1] else false()))
        elif attribute is not None:
            where.append(ATTRIBUTES[attribute[0]] == attribute[1])
        if start is not None:
            where.append(t.c.event_time >= start)
        if end is not None:
            where.append(t.c.event_time <= end)
        if after is not None:
            where.append(tuple_(t.c.event_time, t.c.seq) < tuple_(*after))
        query = (select(t.c.seq, t.c.event_id, t.c.event_time, t.c.event_name,
                        t.c.event_source, t.c.username, t.c.read_only, t.c.access_key_id,
                        t.c.resources, t.c.record)
                 .where(*where).order_by(t.c.event_time.desc(), t.c.seq.desc()).limit(limit))
        with self.db.transaction() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def purge_before(self, cutoff: float, batch: int = 5000) -> int:
        """Delete events older than ``cutoff``, in small transactions."""
        total = 0
        t = audit_events
        while True:
            with self.db.transaction() as conn:
                seqs = [r[0] for r in conn.execute(
                    select(t.c.seq).where(t.c.event_time < cutoff).limit(batch))]
                if not seqs:
                    return total
                conn.execute(delete(t).where(t.c.seq.in_(seqs)))
            total += len(seqs)

    # -- trails ----------------------------------------------------------------------------

    def trails(self) -> list[Row]:
        with self.db.transaction() as conn:
            return [dict(r) for r in conn.execute(
                select(audit_trails).order_by(audit_trails.c.name)).mappings()]

    def add_trail(self, name: str, create_time: float, body: Mapping[str, Any]) -> bool:
        with self.db.transaction() as conn:
            if conn.execute(select(audit_trails.c.name).where(
                    audit_trails.c.name == name)).first() is not None:
                return False
            conn.execute(insert(audit_trails).values(name=name, create_time=create_time,
                                                     body=dict(body)))
        return True

    def put_trail(self, name: str, body: Mapping[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute(update(audit_trails).where(audit_trails.c.name == name)
                         .values(body=dict(body)))

    def delete_trails(self, names: Iterable[str]) -> None:
        with self.db.transaction() as conn:
            conn.execute(delete(audit_trails).where(audit_trails.c.name.in_(list(names))))
