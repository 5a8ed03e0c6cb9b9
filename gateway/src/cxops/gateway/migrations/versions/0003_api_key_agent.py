"""API keys: the routing agent an agent-role key is bound to (nullable: unbound keys stay valid).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("agent_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    # SQLite: the batch copies the table without the column (its unique prefix and tenant
    # index included); PostgreSQL drops the column in place.
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("agent_id")
