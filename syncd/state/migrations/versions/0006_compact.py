"""A smaller store: on SQLite, times as integers of microseconds since 1970 instead of
26 characters of text (``syncd.state.tables.Moment``); stage history loses an index
that its unique constraint's index (link, stage, time) already serves.

PostgreSQL keeps its ``timestamptz`` columns: only the index goes.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIMES = {
    "links": ("created_at", "updated_at", "tombstoned_at"),
    "bases": ("synced_at",),
    "cursors": ("updated_at",),
    "inbox": ("modified_at", "not_before"),
    "journal": ("at",),
    "dead_letters": ("first_at", "last_at", "resolved_at", "dismissed_at"),
    "stage_history": ("at",),
    "leases": ("acquired_at", "expires_at"),
    "pauses": ("paused_at",),
    "resync_requests": ("created_at", "started_at", "finished_at"),
    "cycles": ("started_at", "finished_at"),
}
"""Every time column, by table."""

# SQLAlchemy's SQLite text: 'YYYY-MM-DD HH:MM:SS.ffffff', in UTC (syncd writes only UTC).
TO_INTEGER = (
    "CAST(strftime('%s', substr({c}, 1, 19)) AS INTEGER) * 1000000"
    " + CASE WHEN length({c}) >= 26 THEN CAST(substr({c}, 21, 6) AS INTEGER) ELSE 0 END"
)
TO_TEXT = (
    "strftime('%Y-%m-%d %H:%M:%S', {c} / 1000000, 'unixepoch')"
    " || '.' || printf('%06d', {c} % 1000000)"
)


def _convert(expression: str, stored_as: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in TIMES.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = {expression.format(c=column)}"
                f" WHERE typeof({column}) = '{stored_as}'"
            )


def upgrade() -> None:
    op.drop_index("ix_stage_history_link", "stage_history")
    _convert(TO_INTEGER, "text")


def downgrade() -> None:
    _convert(TO_TEXT, "integer")
    op.create_index("ix_stage_history_link", "stage_history", ["link_id"])
