"""Initial schema: links, bases, cursors, inbox, journal, dead letters, stage history.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("object", sa.String(32), nullable=False),
        sa.Column("marketing_kind", sa.String(64)),
        sa.Column("marketing_id", sa.String(64)),
        sa.Column("crm_kind", sa.String(64)),
        sa.Column("crm_id", sa.String(64)),
        sa.Column("email_key", sa.String(320)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("tombstoned_at", TS),
        sa.Column("tombstone_reason", sa.Text),
        sa.UniqueConstraint("object", "marketing_id", name="uq_links_marketing"),
        sa.UniqueConstraint("object", "crm_id", name="uq_links_crm"),
    )
    op.create_index("ix_links_email", "links", ["object", "email_key"])
    op.create_table(
        "bases",
        sa.Column(
            "link_id", sa.Integer, sa.ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("stage", sa.String(64)),
        sa.Column("synced_at", TS, nullable=False),
    )
    op.create_table(
        "cursors",
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("object", sa.String(32), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("link_id", sa.Integer),
        sa.Column("email_key", sa.String(320)),
        sa.Column("partner_id", sa.String(64)),
        sa.Column("pair_key", sa.String(400)),
        sa.Column("modified_at", TS, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", TS),
        sa.UniqueConstraint("system", "kind", "record_id", name="uq_inbox_record"),
    )
    op.create_index("ix_inbox_link", "inbox", ["object", "link_id"])
    op.create_index("ix_inbox_pair", "inbox", ["object", "pair_key"])
    op.create_index("ix_inbox_partner", "inbox", ["object", "system", "partner_id"])
    op.create_index("ix_inbox_record", "inbox", ["object", "system", "record_id"])
    op.create_table(
        "journal",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("cycle_id", sa.String(64), nullable=False),
        sa.Column("link_id", sa.Integer),
        sa.Column("system", sa.String(64)),
        sa.Column("record_id", sa.String(64)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_journal_link", "journal", ["link_id"])
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("object", sa.String(32), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("target_id", sa.String(64)),
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("code", sa.String(100)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_at", TS, nullable=False),
        sa.Column("last_at", TS, nullable=False),
        sa.Column("resolved_at", TS),
        sa.UniqueConstraint("system", "source", name="uq_dead_letter_source"),
    )
    op.create_table(
        "stage_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("link_id", sa.Integer, nullable=False),
        sa.Column("object", sa.String(32), nullable=False),
        sa.Column("from_stage", sa.String(64)),
        sa.Column("to_stage", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("source_system", sa.String(64), nullable=False),
        sa.Column("source_record", sa.String(200), nullable=False),
        sa.UniqueConstraint("link_id", "to_stage", "at", name="uq_stage_transition"),
    )
    op.create_index("ix_stage_history_link", "stage_history", ["link_id"])


def downgrade() -> None:
    for table in (
        "stage_history",
        "dead_letters",
        "journal",
        "inbox",
        "cursors",
        "bases",
        "links",
    ):
        op.drop_table(table)
