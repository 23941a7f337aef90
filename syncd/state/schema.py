"""Migrating a store: every revision in one transaction, on SQLite as on PostgreSQL.

pysqlite begins a transaction of its own only before INSERT, UPDATE and DELETE; a
CREATE TABLE outside one is committed at once. A first migration killed half-way then
left tables without their version row, and every later open failed on "table links
already exists". Here pysqlite's own transaction handling is off for the migration and
an explicit ``BEGIN IMMEDIATE`` covers the DDL too (SQLAlchemy's recipe for
transactional DDL on pysqlite): a migration lands whole or not at all. ``IMMEDIATE``
also makes a second process opening the same new store wait, then find it migrated.

A command that only reads the store (``Store.existing``) migrates nothing: it asks
``refusal`` whether the store is at this syncd's newest revision, reading the version
table alone, and a store that is not is refused with the fix (``syncd migrate``).

A store half made by an older syncd (syncd's tables, no version row) is repaired when
its tables are empty (no cycle can have run on it) and refused otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, event, func, inspect, select
from sqlalchemy.exc import OperationalError

from syncd.errors import StoreError, StoreNotReadyError
from syncd.state.tables import metadata
from syncd.sync import killpoints

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the store to the newest revision, in one transaction; ``StoreError`` when
    the store cannot be reached or holds a half-made schema with data in it."""
    config = alembic_config()
    newest = ScriptDirectory.from_config(config).get_current_head()
    try:
        with engine.connect() as connection:
            # An up-to-date store is only read: opening it takes no write lock.
            if MigrationContext.configure(connection).get_current_revision() == newest:
                return
        with engine.connect() as connection:
            event.listen(connection, "after_cursor_execute", killpoints.on_statement("migrate.sql"))
            with transactional_ddl(connection):
                repair_half_made(connection)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
    except OperationalError as error:
        raise StoreError(f"cannot open the state store: {error.orig}") from error
    except CommandError as error:  # a revision this syncd does not know: a newer one's
        raise StoreError(f"cannot migrate the state store: {error}") from error


def newest() -> str | None:
    """The head revision of this syncd's migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(engine: Engine) -> str | None:
    """The store's revision (None: no version table, or no row in it); reads only."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as error:
        raise StoreError(f"cannot open the state store: {error.orig}") from error


def refusal(shown: str, revision: str | None) -> StoreNotReadyError | None:
    """Why a store at ``revision`` is not one a command may read (None: it is)."""
    head = newest()
    if revision == head:
        return None
    migrate = "run `syncd migrate` (the daemon, `syncd run`, migrates it at start too)"
    if revision is None:
        return StoreNotReadyError(
            f"{shown} is not a syncd store: it has no schema version (alembic_version)",
            f"if this is the database syncd should use, {migrate}",
        )
    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revision(revision)
    except CommandError:
        return StoreNotReadyError(
            f"{shown} is at schema {revision}, which this syncd does not know (a newer"
            f" syncd's? this one's newest is {head})",
            "run the syncd version that migrated it, or upgrade this one",
        )
    return StoreNotReadyError(
        f"{shown} is at schema {revision}, older than this syncd's {head}", migrate
    )


@contextmanager
def transactional_ddl(connection: Connection) -> Iterator[None]:
    """One transaction on ``connection`` that covers DDL statements too."""
    if connection.dialect.name != "sqlite":
        with connection.begin():
            yield
        return
    raw = connection.connection.dbapi_connection
    level = raw.isolation_level  # type: ignore[union-attr]
    raw.isolation_level = None  # type: ignore[union-attr]
    try:
        with connection.begin():
            # SQLAlchemy's begin is a no-op for pysqlite: this is the transaction.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield
    finally:
        raw.isolation_level = level  # type: ignore[union-attr]


def repair_half_made(connection: Connection) -> None:
    """Drop the syncd tables of a store that has no version row, if they are empty."""
    if MigrationContext.configure(connection).get_current_revision() is not None:
        return
    present = [t for t in metadata.sorted_tables if inspect(connection).has_table(t.name)]
    if not present:
        return
    holding = [t.name for t in present if connection.scalar(select(func.count()).select_from(t))]
    if holding:
        raise StoreError(
            "the state store has syncd's tables but no schema version (a first migration"
            f" interrupted?) and {', '.join(holding)} hold rows: syncd will not guess its"
            " schema; move the store aside (or restore a backup) and run syncd again"
        )
    for table in reversed(present):
        table.drop(connection)
