"""IAM rows: users, roles and access keys (``schema.iam_*``). Plain reads and writes; the
rules (limits, conflicts, ids) are ``services.iam``'s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from opensage.store.db import Database
from opensage.store.schema import iam_access_keys, iam_roles, iam_users

Row = dict[str, Any]


class AlreadyExists(Exception):
    pass


class IamStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- generic ---------------------------------------------------------------------------

    def _insert(self, table: Table, values: Mapping[str, Any]) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(table).values(**values))
        except IntegrityError:
            raise AlreadyExists(str(values.get("name", ""))) from None

    def _get(self, table: Table, name: str) -> Row | None:
        with self.db.transaction() as conn:
            row = conn.execute(select(table).where(table.c.name == name)).mappings().first()
        return dict(row) if row is not None else None

    def _list(self, table: Table, path_prefix: str, after: str, limit: int) -> list[Row]:
        query = select(table).where(table.c.path.startswith(path_prefix, autoescape=True),
                                    table.c.name > after).order_by(table.c.name).limit(limit)
        with self.db.transaction() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def _delete(self, table: Table, name: str) -> bool:
        with self.db.transaction() as conn:
            return bool(conn.execute(delete(table).where(table.c.name == name)).rowcount)

    # -- users and roles -------------------------------------------------------------------

    def insert_user(self, values: Mapping[str, Any]) -> None:
        self._insert(iam_users, values)

    def user(self, name: str) -> Row | None:
        return self._get(iam_users, name)

    def users(self, path_prefix: str, after: str, limit: int) -> list[Row]:
        return self._list(iam_users, path_prefix, after, limit)

    def delete_user(self, name: str) -> bool:
        return self._delete(iam_users, name)

    def insert_role(self, values: Mapping[str, Any]) -> None:
        self._insert(iam_roles, values)

    def role(self, name: str) -> Row | None:
        return self._get(iam_roles, name)

    def roles(self, path_prefix: str, after: str, limit: int) -> list[Row]:
        return self._list(iam_roles, path_prefix, after, limit)

    def delete_role(self, name: str) -> bool:
        return self._delete(iam_roles, name)

    # -- access keys -----------------------------------------------------------------------

    def insert_key(self, values: Mapping[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute(insert(iam_access_keys).values(**values))

    def key(self, access_key_id: str) -> Row | None:
        with self.db.transaction() as conn:
            row = conn.execute(select(iam_access_keys).where(
                iam_access_keys.c.access_key_id == access_key_id)).mappings().first()
        return dict(row) if row is not None else None

    def keys_of(self, user_name: str) -> list[Row]:
        with self.db.transaction() as conn:
            return [dict(r) for r in conn.execute(select(iam_access_keys).where(
                iam_access_keys.c.kind == "user", iam_access_keys.c.user_name == user_name,
            ).order_by(iam_access_keys.c.create_time)).mappings()]

    def count_keys(self, user_name: str) -> int:
        with self.db.transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(iam_access_keys).where(
                iam_access_keys.c.kind == "user",
                iam_access_keys.c.user_name == user_name)).scalar_one())

    def root_keys(self) -> list[Row]:
        with self.db.transaction() as conn:
            return [dict(r) for r in conn.execute(select(iam_access_keys).where(
                iam_access_keys.c.kind == "root")).mappings()]

    def replace_root_key(self, values: Mapping[str, Any]) -> None:
        """The root key becomes ``values``: any other root key stops working."""
        with self.db.transaction() as conn:
            conn.execute(delete(iam_access_keys).where(iam_access_keys.c.kind == "root"))
            conn.execute(insert(iam_access_keys).values(**values))

    def delete_key(self, access_key_id: str, user_name: str) -> bool:
        with self.db.transaction() as conn:
            return bool(conn.execute(delete(iam_access_keys).where(
                iam_access_keys.c.access_key_id == access_key_id,
                iam_access_keys.c.kind == "user",
                iam_access_keys.c.user_name == user_name)).rowcount)

    def set_key_status(self, access_key_id: str, user_name: str, status: str) -> bool:
        with self.db.transaction() as conn:
            return bool(conn.execute(update(iam_access_keys).where(
                iam_access_keys.c.access_key_id == access_key_id,
                iam_access_keys.c.kind == "user",
                iam_access_keys.c.user_name == user_name).values(status=status)).rowcount)

    def purge_sessions(self, now: float) -> int:
        """Forget STS session keys that expired before ``now``."""
        with self.db.transaction() as conn:
            return int(conn.execute(delete(iam_access_keys).where(
                iam_access_keys.c.kind == "session",
                iam_access_keys.c.expiration < now)).rowcount)
