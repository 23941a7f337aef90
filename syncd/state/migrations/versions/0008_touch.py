"""Speed to lead from sales activities and the SLA written back: the first touch after
each hand-off, the CRM's owners by id, and the SLA breaches with what was written.

Revision ID: 0008_touch
Revises: 0007_gate
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_touch"
down_revision = "0007_gate"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "first_touches",
        sa.Column("link_id", sa.Integer, primary_key=True),
        sa.Column("handoff_at", TS, primary_key=True),
        sa.Column("touched_at", TS, nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("activity_kind", sa.String(64), nullable=False),
        sa.Column("activity_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.String(64)),
        sa.Column("read_at", TS, nullable=False),
    )
    op.create_table(
        "crm_owners",
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("read_at", TS, nullable=False),
    )
    op.create_table(
        "sla_breaches",
        sa.Column("link_id", sa.Integer, primary_key=True),
        sa.Column("handoff_at", TS, primary_key=True),
        sa.Column("breached_at", TS, nullable=False),
        sa.Column("crm_id", sa.String(64)),
        sa.Column("marketing_id", sa.String(64)),
        sa.Column("owner_id", sa.String(64)),
        sa.Column("task_state", sa.String(16), nullable=False),
        sa.Column("task_id", sa.String(64)),
        sa.Column("flag_state", sa.String(16), nullable=False),
        sa.Column("touched_at", TS),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("sla_breaches", "crm_owners", "first_touches"):
        op.drop_table(table)
