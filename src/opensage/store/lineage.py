"""Experiment memberships and lineage edges: the two relations between resources that are
not a resource themselves.

- ``trial_memberships``: trial component <-> trial (many to many), with the trial's
  experiment, so components are listed and searched by trial or experiment with one index.
- ``lineage_associations``: AddAssociation's edges, keyed (source ARN, destination ARN).

Lists are keyset-paginated like ``ResourceStore.list`` (``store.pagination``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from opensage.store import pagination
from opensage.store.db import Database
from opensage.store.schema import lineage_associations, trial_memberships


@dataclass(frozen=True)
class Membership:
    trial_name: str
    component_name: str
    experiment_name: str
    creation_time: float


@dataclass(frozen=True)
class Edge:
    source_arn: str
    destination_arn: str
    association_type: str
    source_type: str
    destination_type: str
    source_name: str
    destination_name: str
    creation_time: float


@dataclass(frozen=True)
class EdgeQuery:
    source_arn: str | None = None
    destination_arn: str | None = None
    source_type: str | None = None
    destination_type: str | None = None
    association_type: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    sort_by: str = "CreationTime"  # SourceArn | DestinationArn | SourceType | ... | CreationTime
    descending: bool = True
    max_results: int = 10
    next_token: str | None = None


class EdgeExists(Exception):
    pass


_EDGE_SORT = {"SourceArn": lineage_associations.c.source_arn,
              "DestinationArn": lineage_associations.c.destination_arn,
              "SourceType": lineage_associations.c.source_type,
              "DestinationType": lineage_associations.c.destination_type,
              "CreationTime": lineage_associations.c.creation_time}


class LineageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- trial memberships -----------------------------------------------------------------
    def join(self, trial: str, component: str, experiment: str, now: float) -> bool:
        """Add the component to the trial; False when it already was a member."""
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(trial_memberships).values(
                    trial_name=trial, component_name=component, experiment_name=experiment,
                    creation_time=now))
        except IntegrityError:
            return False
        return True

    def leave(self, trial: str, component: str) -> bool:
        with self.db.transaction() as conn:
            return bool(conn.execute(delete(trial_memberships).where(
                trial_memberships.c.trial_name == trial,
                trial_memberships.c.component_name == component)).rowcount)

    def memberships(self, *, trial: str | None = None, component: str | None = None,
                    experiment: str | None = None) -> list[Membership]:
        c = trial_memberships.c
        where = [col == value for col, value in ((c.trial_name, trial),
                                                  (c.component_name, component),
                                                  (c.experiment_name, experiment))
                 if value is not None]
        with self.db.engine.connect() as conn:
            return [Membership(*r) for r in conn.execute(
                select(c.trial_name, c.component_name, c.experiment_name, c.creation_time)
                .where(*where).order_by(c.creation_time, c.trial_name))]

    def parents_of(self, components: Sequence[str]) -> dict[str, list[Membership]]:
        """The memberships of many components at once, by component."""
        found: dict[str, list[Membership]] = {name: [] for name in components}
        unique = list(found)
        c = trial_memberships.c
        for start in range(0, len(unique), 500):
            with self.db.engine.connect() as conn:
                for r in conn.execute(
                        select(c.trial_name, c.component_name, c.experiment_name,
                               c.creation_time)
                        .where(c.component_name.in_(unique[start:start + 500]))
                        .order_by(c.creation_time, c.trial_name)):
                    found[r.component_name].append(Membership(*r))
        return found

    def count_members(self, trial: str) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(trial_memberships).where(
                trial_memberships.c.trial_name == trial)).scalar_one())

    # -- lineage edges ---------------------------------------------------------------------
    def add(self, edge: Edge) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(lineage_associations).values(**edge.__dict__))
        except IntegrityError:
            raise EdgeExists(edge.source_arn, edge.destination_arn) from None

    def remove(self, source_arn: str, destination_arn: str) -> bool:
        with self.db.transaction() as conn:
            return bool(conn.execute(delete(lineage_associations).where(
                lineage_associations.c.source_arn == source_arn,
                lineage_associations.c.destination_arn == destination_arn)).rowcount)

    def remove_touching(self, arn: str) -> int:
        """Drop every edge from or to ``arn`` (its entity was deleted)."""
        c = lineage_associations.c
        with self.db.transaction() as conn:
            return int(conn.execute(delete(lineage_associations).where(
                or_(c.source_arn == arn, c.destination_arn == arn))).rowcount)

    def edges_from(self, arns: Sequence[str]) -> list[Edge]:
        return self._edges(lineage_associations.c.source_arn, arns)

    def edges_to(self, arns: Sequence[str]) -> list[Edge]:
        return self._edges(lineage_associations.c.destination_arn, arns)

    def _edges(self, column: Any, arns: Sequence[str]) -> list[Edge]:
        found: list[Edge] = []
        unique = list(dict.fromkeys(arns))
        for start in range(0, len(unique), 500):
            with self.db.engine.connect() as conn:
                found += [Edge(*r) for r in conn.execute(
                    select(*_EDGE_COLUMNS).where(column.in_(unique[start:start + 500]))
                    .order_by(lineage_associations.c.creation_time))]
        return found

    def list(self, query: EdgeQuery) -> tuple[list[Edge], str | None]:
        c = lineage_associations.c
        column = _EDGE_SORT[query.sort_by]
        where: list[Any] = [col == value for col, value in (
            (c.source_arn, query.source_arn), (c.destination_arn, query.destination_arn),
            (c.source_type, query.source_type), (c.destination_type, query.destination_type),
            (c.association_type, query.association_type)) if value is not None]
        if query.created_after is not None:
            where.append(c.creation_time > query.created_after)
        if query.created_before is not None:
            where.append(c.creation_time < query.created_before)
        fingerprint = ("associations", query.source_arn, query.destination_arn,
                       query.source_type, query.destination_type, query.association_type,
                       query.created_after, query.created_before, query.sort_by,
                       query.descending)
        # Ties broken on the key (source, destination), as ResourceStore breaks them on id.
        key = (column, c.source_arn, c.destination_arn)
        if query.next_token:
            last = pagination.decode(query.next_token, fingerprint, 3)
            beyond = [k < v if query.descending else k > v for k, v in zip(key, last)]
            where.append(or_(beyond[0], and_(key[0] == last[0], or_(
                beyond[1], and_(key[1] == last[1], beyond[2])))))
        order = [k.desc() if query.descending else k.asc() for k in key]
        with self.db.engine.connect() as conn:
            rows = [Edge(*r) for r in conn.execute(
                select(*_EDGE_COLUMNS).where(*where).order_by(*order)
                .limit(query.max_results + 1))]
        if len(rows) <= query.max_results:
            return rows, None
        rows = rows[:query.max_results]
        last_edge = rows[-1]
        sort_value = {"SourceArn": last_edge.source_arn,
                      "DestinationArn": last_edge.destination_arn,
                      "SourceType": last_edge.source_type,
                      "DestinationType": last_edge.destination_type,
                      "CreationTime": last_edge.creation_time}[query.sort_by]
        return rows, pagination.encode(fingerprint, (sort_value, last_edge.source_arn,
                                                     last_edge.destination_arn))


_EDGE_COLUMNS = (lineage_associations.c.source_arn, lineage_associations.c.destination_arn,
                 lineage_associations.c.association_type, lineage_associations.c.source_type,
                 lineage_associations.c.destination_type, lineage_associations.c.source_name,
                 lineage_associations.c.destination_name, lineage_associations.c.creation_time)
