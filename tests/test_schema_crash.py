"""A store killed in its first migration, or half made by an older syncd, still opens."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, inspect, text

from syncd.errors import StoreError
from syncd.state.store import Store
from syncd.state.tables import links, metadata
from tests.factories import T0

ROOT = Path(__file__).resolve().parents[1]
OPEN = "import sys; from syncd.state.store import Store; Store.open(sys.argv[1]).close()"
FIRST_TABLES = ("links", "bases", "cursors", "inbox", "journal")
"""Tables an older syncd's first migration committed before it was killed."""


def _open_in_child(url: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCD_KILL_AT"}
    if kill_at:
        env["SYNCD_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-c", OPEN, url], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("statement", [3, 9, 20])
def test_a_kill_in_the_first_migration_leaves_a_store_that_opens(
    store_url: str, statement: int
) -> None:
    killed = _open_in_child(store_url, f"migrate.sql#{statement}")
    assert killed.returncode == -9, killed.stderr
    reopened = _open_in_child(store_url)
    assert reopened.returncode == 0, reopened.stderr
    with Store.open(store_url) as store:
        assert store.schema_version()[0] == store.schema_version()[1]
        assert store.counts()["links"] == 0


def test_a_half_made_store_with_empty_tables_is_made_again(store_url: str) -> None:
    engine = create_engine(store_url)
    metadata.create_all(engine, tables=[metadata.tables[name] for name in FIRST_TABLES])
    engine.dispose()
    with Store.open(store_url) as store:
        current, newest = store.schema_version()
        assert current == newest
        assert inspect(store.engine).has_table("leases")


def test_a_half_made_store_holding_rows_is_refused_in_one_line(store_url: str) -> None:
    engine = create_engine(store_url)
    metadata.create_all(engine, tables=[metadata.tables[name] for name in FIRST_TABLES])
    with engine.begin() as connection:
        connection.execute(insert(links).values(object="person", created_at=T0, updated_at=T0))
    engine.dispose()
    with pytest.raises(StoreError) as refused:
        Store.open(store_url)
    message = str(refused.value)
    assert "\n" not in message
    assert "no schema version" in message and "links" in message
    assert "move the store aside" in message


def test_a_store_of_an_unknown_revision_is_refused_in_one_line(store_url: str) -> None:
    Store.open(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError) as refused:
        Store.open(store_url)
    assert "\n" not in str(refused.value) and "9999" in str(refused.value)


def test_opening_an_up_to_date_sqlite_store_waits_for_no_writer(tmp_path: Path) -> None:
    path = tmp_path / "syncd.db"
    Store.open(f"sqlite:///{path}").close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a daemon's commit in flight
    try:
        started = time.monotonic()
        Store.open(f"sqlite:///{path}").close()
        assert time.monotonic() - started < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()
