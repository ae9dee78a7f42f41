"""Resources: an index for StatusEquals lists, newest first.

A list of one kind filtered by status (``StatusEquals``, and the console's home page, which
lists each kind's failures) otherwise walks every row of the kind.

Revision ID: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_resources_kind_status_created", "resources",
                    ["kind", "status", "creation_time", "id"])


def downgrade() -> None:
    op.drop_index("ix_resources_kind_status_created", table_name="resources")
