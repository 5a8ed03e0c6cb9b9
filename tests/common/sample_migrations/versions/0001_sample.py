"""A sample service's schema for the libs/common tests: the event tables and one table of its own.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from cxops.common.events.tables import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables()
    op.create_table(
        "sample_tally",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sample_tally")
    drop_event_tables()
