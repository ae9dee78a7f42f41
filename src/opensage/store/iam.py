"""IAM rows: users, roles and access keys (``schema.iam_*``). Plain reads and writes; the
rules (limits, conflicts, ids) are ``services.iam``'s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from opensage.store.db import Database
from opensage.store.schema import (
    iam_access_keys,
    iam_attachments,
    iam_group_members,
    iam_groups,
    iam_inline_policies,
    iam_policies,
    iam_roles,
    iam_users,
)

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

    def update_role_body(self, name: str, changes: Mapping[str, Any]) -> Row | None:
        """The role with ``changes`` merged into its body (one transaction); None when no
        role has that name."""
        with self.db.transaction() as conn:
            row = conn.execute(select(iam_roles).where(iam_roles.c.name == name)
                               ).mappings().first()
            if row is None:
                return None
            body = {**row["body"], **changes}
            conn.execute(update(iam_roles).where(iam_roles.c.name == name).values(body=body))
            return {**dict(row), "body": body}

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

    # -- policies --------------------------------------------------------------------------

    def put_inline(self, kind: str, owner: str, name: str, document: str) -> None:
        t = iam_inline_policies
        where = (t.c.owner_kind == kind, t.c.owner_name == owner, t.c.policy_name == name)
        with self.db.transaction() as conn:
            if not conn.execute(update(t).where(*where).values(document=document)).rowcount:
                conn.execute(insert(t).values(owner_kind=kind, owner_name=owner,
                                              policy_name=name, document=document))

    def inline(self, kind: str, owner: str) -> dict[str, str]:
        """Policy name -> document, of one user, group or role."""
        t = iam_inline_policies
        with self.db.transaction() as conn:
            rows = conn.execute(select(t.c.policy_name, t.c.document).where(
                t.c.owner_kind == kind, t.c.owner_name == owner).order_by(t.c.policy_name))
            return {r.policy_name: r.document for r in rows}

    def delete_inline(self, kind: str, owner: str, name: str) -> bool:
        t = iam_inline_policies
        with self.db.transaction() as conn:
            return bool(conn.execute(delete(t).where(
                t.c.owner_kind == kind, t.c.owner_name == owner,
                t.c.policy_name == name)).rowcount)

    def attach(self, kind: str, owner: str, arn: str) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(iam_attachments).values(owner_kind=kind, owner_name=owner,
                                                            policy_arn=arn))
        except IntegrityError:
            pass  # attached already: AWS answers success too

    def detach(self, kind: str, owner: str, arn: str) -> bool:
        t = iam_attachments
        with self.db.transaction() as conn:
            return bool(conn.execute(delete(t).where(
                t.c.owner_kind == kind, t.c.owner_name == owner,
                t.c.policy_arn == arn)).rowcount)

    def attached(self, kind: str, owner: str) -> list[str]:
        t = iam_attachments
        with self.db.transaction() as conn:
            return [r.policy_arn for r in conn.execute(select(t.c.policy_arn).where(
                t.c.owner_kind == kind, t.c.owner_name == owner).order_by(t.c.policy_arn))]

    def attachment_count(self, arn: str) -> int:
        t = iam_attachments
        with self.db.transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(t).where(
                t.c.policy_arn == arn)).scalar_one())

    def drop_owner(self, kind: str, owner: str) -> None:
        """Forget a deleted user's, group's or role's policies and attachments."""
        with self.db.transaction() as conn:
            for t in (iam_inline_policies, iam_attachments):
                conn.execute(delete(t).where(t.c.owner_kind == kind, t.c.owner_name == owner))
            if kind == "user":
                conn.execute(delete(iam_group_members).where(
                    iam_group_members.c.user_name == owner))

    def insert_policy(self, values: Mapping[str, Any]) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(iam_policies).values(**values))
        except IntegrityError:
            raise AlreadyExists(str(values.get("name", ""))) from None

    def policy(self, arn: str) -> Row | None:
        with self.db.transaction() as conn:
            row = conn.execute(select(iam_policies).where(
                iam_policies.c.arn == arn)).mappings().first()
        return dict(row) if row is not None else None

    def set_policy_body(self, arn: str, body: Mapping[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute(update(iam_policies).where(iam_policies.c.arn == arn).values(
                body=dict(body)))

    def policies(self, path_prefix: str, after: str, limit: int) -> list[Row]:
        t = iam_policies
        query = select(t).where(t.c.path.startswith(path_prefix, autoescape=True),
                                t.c.name > after).order_by(t.c.name).limit(limit)
        with self.db.transaction() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def delete_policy(self, arn: str) -> bool:
        with self.db.transaction() as conn:
            return bool(conn.execute(delete(iam_policies).where(
                iam_policies.c.arn == arn)).rowcount)

    # -- groups ----------------------------------------------------------------------------

    def insert_group(self, values: Mapping[str, Any]) -> None:
        self._insert(iam_groups, values)

    def group(self, name: str) -> Row | None:
        return self._get(iam_groups, name)

    def add_member(self, group: str, user: str) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(iam_group_members).values(group_name=group, user_name=user))
        except IntegrityError:
            pass

    def remove_member(self, group: str, user: str) -> bool:
        t = iam_group_members
        with self.db.transaction() as conn:
            return bool(conn.execute(delete(t).where(t.c.group_name == group,
                                                     t.c.user_name == user)).rowcount)

    def groups_of(self, user: str) -> list[str]:
        t = iam_group_members
        with self.db.transaction() as conn:
            return [r.group_name for r in conn.execute(select(t.c.group_name).where(
                t.c.user_name == user).order_by(t.c.group_name))]
