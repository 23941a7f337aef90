"""The people the gate on the CRM holds back (``syncd.sync.gate``), for ``syncd status``
and ``syncd explain``.

Revision ID: 0007_gate
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_gate"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
"""On SQLite, ``syncd.state.tables.Moment`` stores integers in it (see 0006)."""


def upgrade() -> None:
    op.create_table(
        "gate_held",
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("object", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("email_key", sa.String(320)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Index("ix_gate_held_email", "email_key"),
    )


def downgrade() -> None:
    op.drop_table("gate_held")
