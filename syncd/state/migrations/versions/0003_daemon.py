"""The daemon: the scheduler's lease, pauses, resync requests, cycle results, API usage
per day, and dismissed dead letters.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # One row per lease name (SQLite; PostgreSQL uses an advisory lock and keeps the
    # row only to say who holds it).
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    # A paused scope: "system:hubspot", "object:deal".
    op.create_table(
        "pauses",
        sa.Column("scope", sa.String(100), primary_key=True),
        sa.Column("paused_at", TS, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "resync_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("object", sa.String(32), nullable=False),
        sa.Column("selector", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("result", sa.Text),
        sa.Index("ix_resync_state", "state", "id"),
    )
    # The last cycle of each object, for status and the STATUS= line.
    op.create_table(
        "cycles",
        sa.Column("object", sa.String(32), primary_key=True),
        sa.Column("cycle_id", sa.String(64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
    )
    # API calls syncd made per system and UTC day, for the daily budget.
    op.create_table(
        "api_usage",
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )
    op.add_column("dead_letters", sa.Column("dismissed_at", TS))
    op.add_column("dead_letters", sa.Column("dismissed_reason", sa.Text))


def downgrade() -> None:
    op.drop_column("dead_letters", "dismissed_reason")
    op.drop_column("dead_letters", "dismissed_at")
    for table in ("api_usage", "cycles", "resync_requests", "pauses", "leases"):
        op.drop_table(table)
