"""A response may name the routing task it is about.

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
    op.add_column("feedback_responses", sa.Column("task_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("feedback_responses", "task_id")
