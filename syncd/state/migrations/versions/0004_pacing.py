"""Pacing: per system and day, the calls that waited for a slot, how long they waited,
and the answers 429 (``syncd.daemon.pacing``), beside the calls already counted.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_usage") as table:
        table.add_column(sa.Column("waits", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("wait_ms", sa.BigInteger, nullable=False, server_default="0"))
        table.add_column(sa.Column("http_429", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("api_usage") as table:
        for name in ("http_429", "wait_ms", "waits"):
            table.drop_column(name)
