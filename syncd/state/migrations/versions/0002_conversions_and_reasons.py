"""Lead conversions in the inbox; the reason of a stage transition; journal by action.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # What a read record was converted into (JSON: object -> [system, kind, id]).
    op.add_column("inbox", sa.Column("converted", sa.Text))
    # Why a stage moved, where a rule moved it (a lost deal recycles its people).
    op.add_column("stage_history", sa.Column("reason", sa.Text))
    # Finding deal transitions the closed loop has not handled yet, and conversions.
    op.create_index("ix_journal_action_record", "journal", ["action", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_journal_action_record", "journal")
    op.drop_column("stage_history", "reason")
    op.drop_column("inbox", "converted")
