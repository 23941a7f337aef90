"""What marketing knew at the hand-off: the score, grade and source a person was handed
to sales with, kept on that stage transition (the lead-quality report reads it).

Revision ID: 0009_quality
Revises: 0008_touch
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_quality"
down_revision = "0008_touch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # JSON text, NULL on every transition but those into the hand-off stage: a nullable
    # column added at the end costs older rows nothing on either store.
    op.add_column("stage_history", sa.Column("snapshot", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("stage_history") as batch:
        batch.drop_column("snapshot")
