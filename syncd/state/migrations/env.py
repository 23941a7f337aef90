"""Alembic environment: runs on the connection syncd hands over in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from syncd.state.tables import metadata
from syncd.sync import killpoints

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    on_version_apply=lambda **_: killpoints.reached("migrate.step"),
)
with context.begin_transaction():
    context.run_migrations()
