"""The journal's (action, record_id) index holds only the actions syncd looks up by
record (``syncd.state.tables.LOOKED_UP_ACTIONS``): before, every ``create`` had an entry
in it, about 40 bytes a record that no query read.

Revision ID: 0011_journal_index
Revises: 0010_assoc
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_journal_index"
down_revision = "0010_assoc"
branch_labels = None
depends_on = None

WHERE = (
    "action = 'closed_loop' OR action = 'converted_deal' OR action = 'converted'"
    " OR action = 'conversion left alone'"
)
"""``syncd.state.tables.LOOKED_UP_WHERE`` as it was at this revision."""


def upgrade() -> None:
    op.drop_index("ix_journal_action_record", "journal")
    op.create_index(
        "ix_journal_action_record",
        "journal",
        ["action", "record_id"],
        sqlite_where=sa.text(WHERE),
        postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_journal_action_record", "journal")
    op.create_index("ix_journal_action_record", "journal", ["action", "record_id"])
