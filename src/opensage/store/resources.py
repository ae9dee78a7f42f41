"""SageMaker resources as rows: one table for every kind, tags beside it.

Lists are keyset-paginated (``store.pagination``): the opaque ``NextToken`` carries the sort
key of the last row returned, so rows inserted between pages never shift or repeat what a
caller sees. ``scan`` iterates every matching row in keyset batches: the one way to walk a
whole kind without loading it at once or stopping at an arbitrary limit.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Float,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError

from opensage.errors import ValidationException
from opensage.store import pagination, search_index
from opensage.store.db import Database
from opensage.store.schema import resource_metrics, resources, status_transitions, tags

MAX_TAGS_PER_RESOURCE = 50
_List = list  # ``ResourceStore.list`` shadows the builtin inside the class
SCAN_BATCH = 500  # rows per query of ``scan``
_CAS_ATTEMPTS = 20  # ``transition`` re-reads a row this often before giving up


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    arn: str
    status: str | None
    creation_time: float
    last_modified_time: float
    body: dict[str, Any]
    row_id: int = 0  # insertion order; the tie-breaker of keyset pagination
    # opensage's own state of the resource (never part of an API answer)
    internal: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BodyPath:
    """A value of the body at a path of object keys (missing or null: None)."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class ListItem:
    """``value_key`` of the first item of the body's list at ``path`` whose ``match_key``
    is ``match`` (e.g. a metric's value in ``FinalMetricDataList``), as a number."""

    path: str
    match_key: str
    match: str
    value_key: str


@dataclass(frozen=True)
class TagValue:
    key: str


Property = BodyPath | ListItem | TagValue


@dataclass(frozen=True)
class Projected:
    """A row's identity and the properties ``ResourceStore.project`` extracted from it."""

    name: str
    arn: str
    row_id: int
    values: tuple[Any, ...]


@dataclass(frozen=True)
class ListQuery:
    """What every ``List*`` operation filters and sorts on."""

    name_contains: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    modified_after: dt.datetime | None = None
    modified_before: dt.datetime | None = None
    status: str | None = None
    sort_by: str = "CreationTime"  # Name | CreationTime | Status
    sort_order: str = "Descending"
    max_results: int = 10
    next_token: str | None = None
    # Children numbered under a parent are named "parent/n" (``create_numbered``):
    # ``name_prefix`` "parent/" lists one parent's; ``children`` True only names with a "/",
    # False only names without.
    name_prefix: str | None = None
    children: bool | None = None
    # Top-level text fields of the body that must equal a value (ModelApprovalStatus, ...).
    body_equals: tuple[tuple[str, str], ...] = ()


class AlreadyExists(Exception):
    pass


class _LostRace(Exception):
    """A compare-and-set matched no row: roll the transaction back and read again."""


class StatusConflict(ValidationException):
    """``transition`` found the resource in none of the statuses it may leave (or gone).

    A ``ValidationException``, as AWS answers an operation the resource's status does not
    allow: a service lets it through or rewords it; ``current`` is the status found."""

    def __init__(self, kind: str, name: str, current: str | None,
                 allowed: Sequence[str | None]) -> None:
        found = "does not exist" if current is None else f"is in status {current}"
        super().__init__(f"The {kind} {name} {found}; the request needs one of the statuses "
                         f"{', '.join(str(s) for s in allowed)}.")
        self.current = current


_SORT_COLUMNS = {"Name": resources.c.name, "CreationTime": resources.c.creation_time,
                 "Status": resources.c.status, "LastModifiedTime": resources.c.last_modified_time}


class ResourceStore:
    def __init__(self, db: Database, *, scan_batch: int = SCAN_BATCH) -> None:
        self.db = db
        self.scan_batch = scan_batch

    # -- rows ------------------------------------------------------------------------------
    def create(self, kind: str, name: str, arn: str, body: dict[str, Any], *, now: float,
               status: str | None = None, tag_list: Sequence[dict[str, str]] = (),
               internal: dict[str, Any] | None = None) -> Resource:
        """Insert the row and its tags in one transaction; ``AlreadyExists`` on a name clash."""
        check_tag_keys(tag_list)
        if len({t["Key"] for t in tag_list}) > MAX_TAGS_PER_RESOURCE:
            raise ValidationException(f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags")
        row: dict[str, Any] = {"kind": kind, "name": name, "arn": arn, "status": status,
                               "creation_time": now, "last_modified_time": now, "body": body,
                               "internal": internal or {}}
        try:
            with self.db.transaction() as conn:
                inserted = conn.execute(insert(resources).values(**row)).inserted_primary_key
                assert inserted is not None
                search_index.write_metrics(conn, int(inserted[0]), kind, body)
                _put_tags(conn, arn, tag_list)
        except IntegrityError:
            raise AlreadyExists(name) from None
        return Resource(kind, name, arn, status, now, now, body, row_id=int(inserted[0]),
                        internal=internal or {})

    def create_numbered(self, parent_kind: str, parent_name: str,
                        parent_statuses: Sequence[str | None], kind: str,
                        make: Callable[[int], tuple[str, str, dict[str, Any]]], *, counter: str,
                        now: float, status: str | None = None,
                        tag_list: Sequence[dict[str, str]] = (),
                        internal: dict[str, Any] | None = None) -> Resource:
        """Insert a child numbered 1, 2, ... under a parent row (a model package version in
        its group): the parent's counter (``internal[counter]``) is raised and the child
        (``make(number)`` -> name, ARN, body) inserted in one transaction, the parent written
        as a compare-and-set on its status and modification time. Concurrent creates get
        consecutive numbers, never one twice (the (kind, name) unique constraint backs the
        counter: a clash rolls both writes back and the create is retried), and a number is
        never reused after its child is deleted. ``StatusConflict`` when the parent is in
        none of ``parent_statuses`` or does not exist."""
        check_tag_keys(tag_list)
        if len({t["Key"] for t in tag_list}) > MAX_TAGS_PER_RESOURCE:
            raise ValidationException(f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags")
        seen: str | None = None
        for _ in range(_CAS_ATTEMPTS):
            try:
                with self.db.transaction() as conn:
                    parent = conn.execute(_BY_NAME.with_for_update(),
                                          {"kind": parent_kind, "name": parent_name}).first()
                    if parent is None or parent.status not in parent_statuses:
                        raise StatusConflict(parent_kind, parent_name,
                                             None if parent is None else parent.status,
                                             parent_statuses)
                    seen = parent.status
                    parent_internal = dict(parent.internal)
                    number = int(parent_internal.get(counter, 0)) + 1
                    parent_internal[counter] = number
                    # A strictly later modification time: the compare-and-set of the next
                    # writer fails even when the clock has not moved.
                    stamp = max(now, parent.last_modified_time + 1e-6)
                    moved = conn.execute(update(resources).where(
                        resources.c.id == parent.id, resources.c.status == parent.status,
                        resources.c.last_modified_time == parent.last_modified_time,
                    ).values(internal=parent_internal, last_modified_time=stamp)).rowcount
                    if moved != 1:
                        raise _LostRace
                    name, arn, body = make(number)
                    inserted = conn.execute(insert(resources).values(
                        kind=kind, name=name, arn=arn, status=status, creation_time=now,
                        last_modified_time=now, body=body,
                        internal=internal or {})).inserted_primary_key
                    assert inserted is not None
                    search_index.write_metrics(conn, int(inserted[0]), kind, body)
                    _put_tags(conn, arn, tag_list)
            except (_LostRace, IntegrityError):
                continue  # another create took the number: read the counter again
            return Resource(kind, name, arn, status, now, now, body, row_id=int(inserted[0]),
                            internal=internal or {})
        raise StatusConflict(parent_kind, parent_name, seen,
                             parent_statuses)  # pragma: no cover - livelock

    def get(self, kind: str, name: str) -> Resource | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(_BY_NAME, {"kind": kind, "name": name}).first()
        return Resource(*row) if row else None

    def get_by_arn(self, arn: str) -> Resource | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(_BY_ARN, {"arn": arn}).first()
        return Resource(*row) if row else None

    def update(self, kind: str, name: str, body: dict[str, Any], *, now: float,
               status: str | None = None, expected_status: str | None = None,
               internal: dict[str, Any] | None = None) -> bool:
        """Compare-and-set: False when ``expected_status`` no longer holds (a lost race).
        ``internal`` replaces the row's internal state when given."""
        where = [resources.c.kind == kind, resources.c.name == name]
        if expected_status is not None:
            where.append(resources.c.status == expected_status)
        values: dict[str, Any] = {"body": body, "last_modified_time": now}
        if status is not None:
            values["status"] = status
        if internal is not None:
            values["internal"] = internal
        with self.db.transaction() as conn:
            written = conn.execute(update(resources).where(*where).values(**values)
                                   .returning(resources.c.id)).first()
            if written is None:
                return False
            search_index.write_metrics(conn, written.id, kind, body)
            return True

    def transition(self, kind: str, name: str, from_statuses: Sequence[str | None],
                   to_status: str, change: Callable[[dict[str, Any]], None] | None = None,
                   *, now: float,
                   change_internal: Callable[[dict[str, Any]], None] | None = None) -> Resource:
        """Move a resource from one of ``from_statuses`` to ``to_status`` as a compare-and-set
        in one transaction: ``change`` edits (a copy of) the body and ``change_internal`` (a
        copy of) the internal state, the status column and
        ``last_modified_time`` are set, and the move is recorded in ``status_transitions``.

        Raises ``StatusConflict`` (a ``ValidationException``) when the row is in none of
        ``from_statuses`` or does not exist, and lets an exception of ``change`` through;
        either way nothing is written. A concurrent writer that changes the row between the
        read and the write makes the write match no row: the move is then retried on the
        fresh row (and refused if its status no longer allows it)."""
        return self._compare_and_set(kind, name, from_statuses, to_status, change,
                                     change_internal, now)

    def edit(self, kind: str, name: str, statuses: Sequence[str | None],
             change: Callable[[dict[str, Any]], None] | None = None, *, now: float,
             change_internal: Callable[[dict[str, Any]], None] | None = None) -> Resource:
        """``transition`` that keeps the status: the same compare-and-set of the whole row
        (a concurrent edit or move is never lost), for a change that is no move (metrics, a
        setting), so nothing is recorded in ``status_transitions``. Raises ``StatusConflict``
        when the row is in none of ``statuses`` or does not exist."""
        return self._compare_and_set(kind, name, statuses, None, change, change_internal, now)

    def _compare_and_set(self, kind: str, name: str, from_statuses: Sequence[str | None],
                         to_status: str | None,
                         change: Callable[[dict[str, Any]], None] | None,
                         change_internal: Callable[[dict[str, Any]], None] | None,
                         now: float) -> Resource:
        """Read, change and write back one row in one transaction, retried on a lost race;
        ``to_status`` None keeps the status and records nothing."""
        seen: str | None = None
        for _ in range(_CAS_ATTEMPTS):
            with self.db.transaction() as conn:
                row = conn.execute(_BY_NAME.with_for_update(),
                                   {"kind": kind, "name": name}).first()
                if row is None or row.status not in from_statuses:
                    raise StatusConflict(kind, name, None if row is None else row.status,
                                         from_statuses)
                seen, body = row.status, copy.deepcopy(row.body)
                internal = copy.deepcopy(row.internal)
                # internal first: ``change`` may render what ``change_internal`` computed
                if change_internal is not None:
                    change_internal(internal)
                if change is not None:
                    change(body)
                status = row.status if to_status is None else to_status
                moved = conn.execute(update(resources).where(
                    resources.c.id == row.id, resources.c.status == row.status,
                    resources.c.last_modified_time == row.last_modified_time,
                ).values(status=status, body=body, internal=internal,
                         last_modified_time=now)).rowcount
                if moved != 1:
                    continue  # lost a race (SQLite reads without a row lock): read again
                search_index.write_metrics(conn, row.id, kind, body)
                if to_status is not None:
                    conn.execute(insert(status_transitions).values(
                        kind=kind, name=row.name, from_status=row.status, to_status=to_status,
                        time=now))
                return Resource(kind, row.name, row.arn, status, row.creation_time, now,
                                body, row.id, internal)
        raise StatusConflict(kind, name, seen, from_statuses)  # pragma: no cover - livelock

    def transitions(self, kind: str, name: str) -> _List[tuple[str | None, str, float]]:
        """The recorded moves of a resource, oldest first: (from, to, time)."""
        with self.db.engine.connect() as conn:
            return [(r.from_status, r.to_status, r.time) for r in conn.execute(
                select(status_transitions).where(status_transitions.c.kind == kind,
                                                 status_transitions.c.name == name)
                .order_by(status_transitions.c.id))]

    def delete(self, kind: str, name: str) -> Resource | None:
        with self.db.transaction() as conn:
            row = conn.execute(select(*_COLUMNS).where(
                resources.c.kind == kind, resources.c.name == name)).first()
            if row is None:
                return None
            conn.execute(delete(resources).where(resources.c.arn == row.arn))
            search_index.forget(conn, [row.id])
            conn.execute(delete(tags).where(tags.c.arn == row.arn))
            conn.execute(delete(status_transitions).where(
                status_transitions.c.kind == kind, status_transitions.c.name == row.name))
        return Resource(*row)

    def count(self, kind: str) -> int:
        with self.db.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(resources).where(
                resources.c.kind == kind)).scalar_one()

    def delete_created_before(self, kind: str, cutoff: float) -> int:
        """Delete the rows of ``kind`` created before ``cutoff`` (retention); how many."""
        old = select(resources.c.arn).where(resources.c.kind == kind,
                                            resources.c.creation_time < cutoff)
        old_ids = select(resources.c.id).where(resources.c.kind == kind,
                                               resources.c.creation_time < cutoff)
        with self.db.transaction() as conn:
            conn.execute(delete(tags).where(tags.c.arn.in_(old.scalar_subquery())))
            search_index.forget(conn, old_ids.scalar_subquery())
            return conn.execute(delete(resources).where(resources.c.arn.in_(
                old.scalar_subquery()))).rowcount

    def list(self, kind: str, query: ListQuery) -> tuple[list[Resource], str | None]:
        column = _SORT_COLUMNS.get(query.sort_by)
        if column is None:
            raise ValidationException(f"Invalid SortBy value {query.sort_by!r}")
        descending = query.sort_order == "Descending"
        where = [resources.c.kind == kind, *_filters(query, self.db.engine.dialect.name)]
        fingerprint = _list_fingerprint(kind, query)
        if query.next_token:
            last_value, last_id = pagination.decode(query.next_token, fingerprint, 2)
            if not isinstance(last_id, int):
                raise ValidationException("Invalid pagination token")
            after = column < last_value if descending else column > last_value
            tie = resources.c.id < last_id if descending else resources.c.id > last_id
            where.append(or_(after, and_(column == last_value, tie)))
        order = (column.desc(), resources.c.id.desc()) if descending else (
            column.asc(), resources.c.id.asc())
        stmt = select(*_COLUMNS).where(*where).order_by(*order).limit(query.max_results + 1)
        with self.db.engine.connect() as conn:
            rows = [Resource(*r) for r in conn.execute(stmt)]
        if len(rows) <= query.max_results:
            return rows, None
        rows = rows[:query.max_results]
        last = rows[-1]
        sort_value = {"Name": last.name, "CreationTime": last.creation_time,
                      "Status": last.status, "LastModifiedTime": last.last_modified_time}
        return rows, pagination.encode(fingerprint, (sort_value[query.sort_by], last.row_id))

    def scan(self, kind: str, *, statuses: Sequence[str] | None = None,
             batch_size: int | None = None) -> Iterator[Resource]:
        """Every row of ``kind`` (with one of ``statuses``, if given), oldest first, read
        ``batch_size`` rows per query along the (kind, creation time, id) index: no limit,
        and never the whole kind in memory. A row created meanwhile is seen if it sorts
        after the batch being read."""
        size = batch_size or self.scan_batch
        where = [resources.c.kind == kind]
        if statuses is not None:
            where.append(resources.c.status.in_(list(statuses)))
        order = (resources.c.creation_time, resources.c.id)
        after: list[Any] = []
        while True:
            stmt = select(*_COLUMNS).where(*where, *after).order_by(*order).limit(size)
            with self.db.engine.connect() as conn:
                batch = [Resource(*r) for r in conn.execute(stmt)]
            yield from batch
            if len(batch) < size:
                return
            last = batch[-1]
            after = [or_(resources.c.creation_time > last.creation_time,
                         and_(resources.c.creation_time == last.creation_time,
                              resources.c.id > last.row_id))]

    def project(self, kind: str, properties: Sequence[Property], *,
                present: Sequence[int] = (),
                bounds: Sequence[tuple[int, str, float]] = ()) -> _List[Projected]:
        """The rows of ``kind`` with only ``properties`` extracted, by the database: what a
        search filters and sorts on, without decoding every whole body in Python. Only rows
        where the properties at the ``present`` indexes exist, and whose numeric
        (``ListItem``) properties satisfy ``bounds`` (index, one of < <= > >= =, number).

        Final metrics come from the search index (``store.search_index``); when one of them
        must exist (``present``) or is bounded, the rows are found through the index range
        and only theirs are read: no body is parsed for a metric filter or sort."""
        if any(not isinstance(properties[i], ListItem) for i, _, _ in bounds):
            raise TypeError("bounds apply to numeric (ListItem) properties only")
        dialect = self.db.engine.dialect.name
        driver = _index_driver(properties, present, bounds)
        source: Any = resources
        scope: _List[Any] = [resources.c.kind == kind]
        columns: _List[Any] = []
        for i, prop in enumerate(properties):
            if i == driver:
                assert isinstance(prop, ListItem)
                entry = resource_metrics.alias("driver")
                source = entry.join(resources, resources.c.id == entry.c.resource_id)
                scope = [entry.c.kind == kind, entry.c.metric_name == prop.match,
                         *(entry.c.value.op(op)(number) for j, op, number in bounds if j == i)]
                columns.append(entry.c.value)
            elif _is_indexed(prop):
                assert isinstance(prop, ListItem)
                columns.append(select(resource_metrics.c.value).where(
                    resource_metrics.c.resource_id == resources.c.id,
                    resource_metrics.c.metric_name == prop.match).scalar_subquery())
            else:
                columns.append(_property_column(prop, dialect))
        # Extracted once per row (a materialised CTE), then filtered: each extraction parses
        # the body, and a WHERE on the expressions themselves would parse it again.
        extracted = (select(resources.c.name, resources.c.arn, resources.c.id,
                            *(c.label(f"p{i}") for i, c in enumerate(columns)))
                     .select_from(source).where(*scope).cte("extracted")
                     .prefix_with("MATERIALIZED"))
        values = [extracted.c[f"p{i}"] for i in range(len(properties))]
        where = [values[i].is_not(None) for i in present if i != driver]
        where += [values[i].op(op)(number) for i, op, number in bounds if i != driver]
        stmt = select(extracted).where(*where)
        with self.db.engine.connect() as conn:
            return [Projected(r[0], r[1], r[2], tuple(r[3:])) for r in conn.execute(stmt)]

    def rank(self, kind: str, metric: str, *, bounds: Sequence[tuple[str, str, float]] = (),
             tag_equals: Sequence[tuple[str, str]] = (), descending: bool = False,
             after: tuple[float, int] | None = None, limit: int) -> _List[Projected]:
        """At most ``limit`` rows of ``kind`` in the order of their final ``metric`` (then
        row id), after the keyset position ``after`` (value, row id), among those whose
        final metrics satisfy ``bounds`` (metric, one of < <= > >= =, number) and whose tags
        include ``tag_equals`` (key, value); rows without ``metric`` are left out. One index
        range of the search index, walked until ``limit`` rows match: only those are read."""
        entry = resource_metrics.alias("ranked")
        where: _List[Any] = [entry.c.kind == kind, entry.c.metric_name == metric]
        for name, op, number in bounds:
            value = entry.c.value if name == metric else select(resource_metrics.c.value) \
                .where(resource_metrics.c.resource_id == entry.c.resource_id,
                       resource_metrics.c.metric_name == name).scalar_subquery()
            where.append(value.op(op)(number))
        for key, tag_value in tag_equals:
            where.append(exists().where(tags.c.arn == resources.c.arn, tags.c.key == key,
                                        tags.c.value == tag_value))
        if after is not None:
            last_value, last_id = after
            beyond = entry.c.value < last_value if descending else entry.c.value > last_value
            tie = entry.c.resource_id < last_id if descending else entry.c.resource_id > last_id
            where.append(or_(beyond, and_(entry.c.value == last_value, tie)))
        order = (entry.c.value.desc(), entry.c.resource_id.desc()) if descending else (
            entry.c.value.asc(), entry.c.resource_id.asc())
        stmt = (select(resources.c.name, resources.c.arn, entry.c.resource_id, entry.c.value)
                .select_from(entry.join(resources, resources.c.id == entry.c.resource_id))
                .where(*where).order_by(*order).limit(limit))
        with self.db.engine.connect() as conn:
            return [Projected(r[0], r[1], r[2], (r[3],)) for r in conn.execute(stmt)]

    def get_many(self, kind: str, names: Sequence[str]) -> dict[str, Resource]:
        """The rows of ``kind`` named ``names`` (those that exist), in one query, by name."""
        found: dict[str, Resource] = {}
        unique = list(dict.fromkeys(names))
        for start in range(0, len(unique), self.scan_batch):  # bounded IN lists
            chunk = unique[start:start + self.scan_batch]
            with self.db.engine.connect() as conn:
                for r in conn.execute(select(*_COLUMNS).where(
                        resources.c.kind == kind, resources.c.name.in_(chunk))):
                    found[r.name] = Resource(*r)
        return found

    # -- tags ------------------------------------------------------------------------------
    def add_tags(self, arn: str, tag_list: Sequence[dict[str, str]]) -> None:
        check_tag_keys(tag_list)
        with self.db.transaction() as conn:
            existing = {r.key for r in conn.execute(select(tags.c.key).where(tags.c.arn == arn))}
            if len(existing | {t["Key"] for t in tag_list}) > MAX_TAGS_PER_RESOURCE:
                raise ValidationException(
                    f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags")
            _put_tags(conn, arn, tag_list)

    def delete_tags(self, arn: str, keys: Sequence[str]) -> None:
        with self.db.transaction() as conn:
            conn.execute(delete(tags).where(tags.c.arn == arn, tags.c.key.in_(list(keys))))

    def list_tags(self, arn: str, max_results: int = 50,
                  next_token: str | None = None) -> tuple[_List[dict[str, str]], str | None]:
        fingerprint = ("tags", arn)
        where = [tags.c.arn == arn]
        if next_token:
            (last_key,) = pagination.decode(next_token, fingerprint, 1)
            where.append(tags.c.key > str(last_key))
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(tags.c.key, tags.c.value).where(*where)
                                .order_by(tags.c.key).limit(max_results + 1)).all()
        items = [{"Key": r.key, "Value": r.value} for r in rows[:max_results]]
        token = (pagination.encode(fingerprint, (items[-1]["Key"],))
                 if len(rows) > max_results else None)
        return items, token

    def tags_of(self, arns: Sequence[str]) -> dict[str, _List[dict[str, str]]]:
        """The tags of many resources at once (by ARN, in key order): one query per
        ``scan_batch`` ARNs instead of one per resource."""
        found: dict[str, _List[dict[str, str]]] = {arn: [] for arn in arns}
        unique = list(found)
        for start in range(0, len(unique), self.scan_batch):
            chunk = unique[start:start + self.scan_batch]
            with self.db.engine.connect() as conn:
                for r in conn.execute(select(tags.c.arn, tags.c.key, tags.c.value)
                                      .where(tags.c.arn.in_(chunk))
                                      .order_by(tags.c.arn, tags.c.key)):
                    found[r.arn].append({"Key": r.key, "Value": r.value})
        return found


_COLUMNS = (resources.c.kind, resources.c.name, resources.c.arn, resources.c.status,
            resources.c.creation_time, resources.c.last_modified_time, resources.c.body,
            resources.c.id, resources.c.internal)
# Built once: the hot Describe path then skips statement construction (most of its cost).
_BY_NAME = select(*_COLUMNS).where(resources.c.kind == bindparam("kind"),
                                   resources.c.name == bindparam("name"))
_BY_ARN = select(*_COLUMNS).where(resources.c.arn == bindparam("arn"))


def _is_indexed(prop: Property) -> bool:
    """A final metric's value: answered by the search index."""
    return isinstance(prop, ListItem) and (prop.path, prop.match_key, prop.value_key) == (
        search_index.METRICS_LIST, search_index.METRIC_NAME, search_index.METRIC_VALUE)


def _index_driver(properties: Sequence[Property], present: Sequence[int],
                  bounds: Sequence[tuple[int, str, float]]) -> int | None:
    """The indexed property whose index range the rows are found through: a bounded one
    first (the narrower range), else one that must exist; None when there is none."""
    for i in [i for i, _, _ in bounds] + list(present):
        if _is_indexed(properties[i]):
            return i
    return None


def _property_column(prop: Property, dialect: str) -> Any:
    if isinstance(prop, BodyPath):
        if dialect != "sqlite":
            return resources.c.body[prop.keys]  # JSON-typed: decoded with its own type
        # SQLite's json_extract turns true/false into 1/0: json_type tells them apart.
        path = "$" + "".join("." + _json_key(k) for k in prop.keys)
        return type_coerce(case(
            (func.json_type(resources.c.body, path) == "true", "true"),
            (func.json_type(resources.c.body, path) == "false", "false"),
            else_=func.json_quote(func.json_extract(resources.c.body, path))), JSON)
    if isinstance(prop, TagValue):
        return (select(tags.c.value).where(tags.c.arn == resources.c.arn, tags.c.key == prop.key)
                .scalar_subquery())
    if dialect == "postgresql":
        items = func.json_array_elements(resources.c.body.op("->")(prop.path)) \
            .table_valued("value").alias("item")
        value: Any = cast(items.c.value.op("->>")(prop.value_key), Float)
        matches = items.c.value.op("->>")(prop.match_key) == prop.match
    else:
        items = func.json_each(resources.c.body, _json_path(prop.path)) \
            .table_valued("value").alias("item")
        value = func.json_extract(items.c.value, _json_path(prop.value_key))
        matches = func.json_extract(items.c.value, _json_path(prop.match_key)) == prop.match
    return select(value).select_from(items).where(matches).limit(1).scalar_subquery()


def _json_path(key: str) -> str:
    return "$." + _json_key(key)


def _json_key(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_tag_keys(tag_list: Sequence[dict[str, str]]) -> None:
    for tag in tag_list:
        if tag["Key"].lower().startswith("aws:"):
            raise ValidationException(
                f"Tag keys starting with 'aws:' are reserved for system use: {tag['Key']!r}")


def _put_tags(conn: Connection, arn: str, tag_list: Sequence[dict[str, str]]) -> None:
    latest = {t["Key"]: t.get("Value", "") for t in tag_list}  # the last value of a key wins
    if not latest:
        return
    conn.execute(delete(tags).where(tags.c.arn == arn, tags.c.key.in_(list(latest))))
    conn.execute(insert(tags), [{"arn": arn, "key": k, "value": v} for k, v in latest.items()])


def _filters(query: ListQuery, dialect: str) -> list[Any]:
    where: list[Any] = []
    if query.name_contains:
        # Escaped: '_' and '%' in a name are literal. Case-insensitive, as AWS matches.
        where.append(func.lower(resources.c.name).contains(query.name_contains.lower(),
                                                            autoescape=True))
    bounds = ((query.created_after, resources.c.creation_time, True),
              (query.created_before, resources.c.creation_time, False),
              (query.modified_after, resources.c.last_modified_time, True),
              (query.modified_before, resources.c.last_modified_time, False))
    for when, column, after in bounds:
        if when is not None:
            where.append(column > when.timestamp() if after else column < when.timestamp())
    if query.status:
        where.append(resources.c.status == query.status)
    if query.name_prefix:
        where.append(resources.c.name.startswith(query.name_prefix, autoescape=True))
    if query.children is not None:
        has_slash = resources.c.name.contains("/", autoescape=True)
        where.append(has_slash if query.children else ~has_slash)
    for key, value in query.body_equals:
        where.append(_body_text(key, dialect) == value)
    return where


def _body_text(key: str, dialect: str) -> Any:
    """A top-level text field of the body, as SQL text (NULL when absent)."""
    if dialect == "postgresql":
        return resources.c.body.op("->>")(key)
    return func.json_extract(resources.c.body, _json_path(key))


def _list_fingerprint(kind: str, query: ListQuery) -> tuple[Any, ...]:
    """Ties a token to the list it came from: a token from another query is refused."""
    return (kind, query.sort_by, query.sort_order, (query.name_contains or "").lower(),
            query.status or "", query.name_prefix or "", query.children,
            [list(pair) for pair in query.body_equals], *(d.timestamp() if d else None for d in (
                query.created_after, query.created_before,
                query.modified_after, query.modified_before)))
