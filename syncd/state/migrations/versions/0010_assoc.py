"""References syncd added on its own: the people a deal's outcome is attributed to,
associated with the marketing system's deal (``syncd.sync.outcomes``).

Revision ID: 0010_assoc
Revises: 0009_quality
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_assoc"
down_revision = "0009_quality"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
"""On SQLite, ``syncd.state.tables.Moment`` stores integers in it (see 0006)."""


def upgrade() -> None:
    op.create_table(
        "derived_refs",
        sa.Column("object", sa.String(32), primary_key=True),
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("ref_link", sa.Integer, primary_key=True),
        sa.Column("ref_id", sa.String(64), nullable=False),
        sa.Column("link_id", sa.Integer, nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("derived_refs")
