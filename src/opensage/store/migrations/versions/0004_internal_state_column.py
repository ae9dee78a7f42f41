"""Internal state out of the API document: ``resources.internal``.

Rows used to carry opensage's own bookkeeping inside the Describe document, under keys that
start with ``_`` (``_Deployment``, ``_Container``, ``_Endpoint``, ...) or ``Opensage``
(``OpensageRunner``, ``OpensageTuning``). This revision adds the ``internal`` column and
moves those keys there, row by row, so an existing data directory keeps working.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 500


def is_internal_key(key: str) -> bool:
    return key.startswith(("_", "Opensage"))


def upgrade() -> None:
    op.add_column("resources", sa.Column("internal", sa.JSON, nullable=False,
                                         server_default="{}"))
    table = sa.table("resources", sa.column("id", sa.Integer), sa.column("body", sa.JSON),
                     sa.column("internal", sa.JSON))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.select(table.c.id, table.c.body).where(table.c.id > last)
                            .order_by(table.c.id).limit(_BATCH)).all()
        if not rows:
            break
        for row_id, body in rows:
            moved = {k: v for k, v in (body or {}).items() if is_internal_key(k)}
            if moved:
                kept = {k: v for k, v in body.items() if not is_internal_key(k)}
                conn.execute(sa.update(table).where(table.c.id == row_id)
                             .values(body=kept, internal=moved))
        last = rows[-1][0]


def downgrade() -> None:
    table = sa.table("resources", sa.column("id", sa.Integer), sa.column("body", sa.JSON),
                     sa.column("internal", sa.JSON))
    conn = op.get_bind()
    for row_id, body, internal in conn.execute(
            sa.select(table.c.id, table.c.body, table.c.internal)).all():
        if internal:
            conn.execute(sa.update(table).where(table.c.id == row_id)
                         .values(body={**body, **internal}))
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("internal")
