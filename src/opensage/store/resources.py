"""SageMaker resources as rows: one table for every kind, tags beside it.

Lists are keyset-paginated: the opaque ``NextToken`` carries the sort key of the last row
returned, so rows inserted between pages never shift or repeat what a caller sees.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from opensage.errors import ValidationException
from opensage.store.db import Database
from opensage.store.schema import resources, tags

MAX_TAGS_PER_RESOURCE = 50


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


class AlreadyExists(Exception):
    pass


_SORT_COLUMNS = {"Name": resources.c.name, "CreationTime": resources.c.creation_time,
                 "Status": resources.c.status, "LastModifiedTime": resources.c.last_modified_time}


class ResourceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- rows ------------------------------------------------------------------------------
    def create(self, kind: str, name: str, arn: str, body: dict[str, Any], *, now: float,
               status: str | None = None,
               tag_list: Sequence[dict[str, str]] = ()) -> Resource:
        """Insert the row and its tags in one transaction; ``AlreadyExists`` on a name clash."""
        check_tag_keys(tag_list)
        if len({t["Key"] for t in tag_list}) > MAX_TAGS_PER_RESOURCE:
            raise ValidationException(f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags")
        row = {"kind": kind, "name": name, "arn": arn, "status": status, "creation_time": now,
                   "last_modified_time": now, "body": body}
        try:
            with self.db.transaction() as conn:
                row_id = conn.execute(insert(resources).values(**row)).inserted_primary_key[0]
                _put_tags(conn, arn, tag_list)
        except IntegrityError:
            raise AlreadyExists(name) from None
        return Resource(**row, row_id=row_id)

    def get(self, kind: str, name: str) -> Resource | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(_BY_NAME, {"kind": kind, "name": name}).first()
        return Resource(*row) if row else None

    def get_by_arn(self, arn: str) -> Resource | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(_BY_ARN, {"arn": arn}).first()
        return Resource(*row) if row else None

    def update(self, kind: str, name: str, body: dict[str, Any], *, now: float,
               status: str | None = None, expected_status: str | None = None) -> bool:
        """Compare-and-set: False when ``expected_status`` no longer holds (a lost race)."""
        where = [resources.c.kind == kind, resources.c.name == name]
        if expected_status is not None:
            where.append(resources.c.status == expected_status)
        values: dict[str, Any] = {"body": body, "last_modified_time": now}
        if status is not None:
            values["status"] = status
        with self.db.transaction() as conn:
            return conn.execute(update(resources).where(*where).values(**values)).rowcount == 1

    def delete(self, kind: str, name: str) -> Resource | None:
        with self.db.transaction() as conn:
            row = conn.execute(select(*_COLUMNS).where(
                resources.c.kind == kind, resources.c.name == name)).first()
            if row is None:
                return None
            conn.execute(delete(resources).where(resources.c.arn == row.arn))
            conn.execute(delete(tags).where(tags.c.arn == row.arn))
        return Resource(*row)

    def count(self, kind: str) -> int:
        with self.db.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(resources).where(
                resources.c.kind == kind)).scalar_one()

    def delete_created_before(self, kind: str, cutoff: float) -> int:
        """Delete the rows of ``kind`` created before ``cutoff`` (retention); how many."""
        old = select(resources.c.arn).where(resources.c.kind == kind,
                                            resources.c.creation_time < cutoff)
        with self.db.transaction() as conn:
            conn.execute(delete(tags).where(tags.c.arn.in_(old.scalar_subquery())))
            return conn.execute(delete(resources).where(resources.c.arn.in_(
                old.scalar_subquery()))).rowcount

    def list(self, kind: str, query: ListQuery) -> tuple[list[Resource], str | None]:
        column = _SORT_COLUMNS.get(query.sort_by)
        if column is None:
            raise ValidationException(f"Invalid SortBy value {query.sort_by!r}")
        descending = query.sort_order == "Descending"
        where = [resources.c.kind == kind, *_filters(query)]
        fingerprint = _fingerprint(kind, query)
        if query.next_token:
            last_value, last_id = _decode_token(query.next_token, fingerprint)
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
        return rows, _encode_token(sort_value[query.sort_by], last.row_id, fingerprint)

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
                  next_token: str | None = None) -> tuple[list[dict[str, str]], str | None]:
        fingerprint = _fingerprint(arn, None)
        where = [tags.c.arn == arn]
        if next_token:
            last_key, _ = _decode_token(next_token, fingerprint)
            where.append(tags.c.key > last_key)
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(tags.c.key, tags.c.value).where(*where)
                                .order_by(tags.c.key).limit(max_results + 1)).all()
        items = [{"Key": r.key, "Value": r.value} for r in rows[:max_results]]
        token = (_encode_token(items[-1]["Key"], 0, fingerprint)
                 if len(rows) > max_results else None)
        return items, token


_COLUMNS = (resources.c.kind, resources.c.name, resources.c.arn, resources.c.status,
            resources.c.creation_time, resources.c.last_modified_time, resources.c.body,
            resources.c.id)
# Built once: the hot Describe path then skips statement construction (most of its cost).
_BY_NAME = select(*_COLUMNS).where(resources.c.kind == bindparam("kind"),
                                   resources.c.name == bindparam("name"))
_BY_ARN = select(*_COLUMNS).where(resources.c.arn == bindparam("arn"))


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


def _filters(query: ListQuery) -> list[Any]:
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
    return where


def _fingerprint(kind: str, query: ListQuery | None) -> str:
    """Ties a token to the list it came from: a token from another query is refused."""
    parts = [kind]
    if query is not None:
        parts += [query.sort_by, query.sort_order, (query.name_contains or "").lower(), query.status or "",
                  *(str(d.timestamp()) if d else "" for d in (
                      query.created_after, query.created_before,
                      query.modified_after, query.modified_before))]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def _encode_token(value: Any, row_id: int, fingerprint: str) -> str:
    raw = json.dumps([fingerprint, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, fingerprint: str) -> tuple[Any, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        fp, value, row_id = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        raise ValidationException("Invalid pagination token") from None
    if fp != fingerprint or not isinstance(row_id, int):
        raise ValidationException(
            "Invalid pagination token: it belongs to a different list request")
    return value, row_id
