"""One store, found by every command: a command that only reads the store never creates
or migrates one (exit 3, saying which store and who named it); ``syncd migrate``,
``syncd once`` and ``syncd run`` do. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from syncd.cli.app import app
from syncd.cli.common import STORE_NOT_READY
from syncd.state import schema
from syncd.state.store import sqlite_file

ROOT = Path(__file__).resolve().parents[1]

READING = [
    ["status"],
    ["status", "--json"],
    ["errors"],
    ["errors", "dismiss", "1"],
    ["retry", "--all"],
    ["explain", "ada@example.com"],
    ["report"],
    ["resync", "--list"],
    ["resync", "--email", "ada@example.com"],
    ["pause", "--object", "person"],
    ["resume", "--object", "person"],
]
"""Every command that reads (or adds a row to) a store it must not create."""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The shipped configuration files, in a folder of their own."""
    folder = tmp_path / "config"
    folder.mkdir()
    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(ROOT / "config" / name, folder / name)
    return folder / "syncd.yaml"


@pytest.fixture
def env(store_url: str) -> Iterator[dict[str, str]]:
    """The store of the run, named by SYNCD_STORE_URL (no credentials are needed)."""
    yield {"SYNCD_STORE_URL": store_url}


def _syncd(args: list[str], config: Path, env: dict[str, str]) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(config)], env=env)


def _tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _absent(url: str) -> bool:
    """No store at ``url``: no SQLite file (nor its log), or a schema without tables."""
    path = sqlite_file(url)
    if path is not None:
        return not any(os.path.exists(f"{path}{end}") for end in ("", "-wal", "-shm"))
    return _tables(url) == []


@pytest.mark.parametrize("args", READING, ids=lambda a: "-".join(a))
def test_a_command_that_reads_creates_no_store(
    args: list[str], config: Path, env: dict[str, str], store_url: str
) -> None:
    answer = _syncd(args, config, env)
    assert answer.exit_code == STORE_NOT_READY, answer.output
    said = " ".join(answer.output.split())
    if store_url.startswith("sqlite"):
        assert f"no store at {sqlite_file(store_url)}: the file does not exist" in said
    else:
        assert "is not a syncd store: it has no schema version" in said
    assert "named by SYNCD_STORE_URL in the environment" in said
    assert f"configuration read: {config} (from --config)" in said
    assert "syncd migrate" in said
    assert _absent(store_url)  # nothing created: no file, no alembic_version, no table


def test_a_database_that_does_not_exist_is_a_missing_store(
    config: Path, store_url: str, tmp_path: Path
) -> None:
    """PostgreSQL refuses a connection to a database that is not there: that is a store
    to create (exit 3, how), not a failure to reach the server (exit 1)."""
    if store_url.startswith("sqlite"):
        missing = f"sqlite:///{tmp_path / 'nowhere' / 'syncd.db'}"
    else:
        missing = make_url(store_url).set(database=f"syncd_missing_{uuid.uuid4().hex[:8]}")
        missing = missing.render_as_string(hide_password=False)
    answer = _syncd(["status"], config, {"SYNCD_STORE_URL": missing})
    assert answer.exit_code == STORE_NOT_READY, answer.output
    said = " ".join(answer.output.split())
    assert "does not exist" in said
    if not store_url.startswith("sqlite"):
        database = make_url(missing).database
        assert f"the database {database} does not exist" in said
        assert f"createdb {database}" in said


def test_migrate_creates_the_store_and_then_every_command_reads_it(
    config: Path, env: dict[str, str], store_url: str
) -> None:
    made = _syncd(["migrate", "--json"], config, env)
    assert made.exit_code == 0, made.output
    done = json.loads(made.output)
    assert (done["before"], done["after"]) == (None, schema.newest())
    assert done["store"]["from"].startswith("SYNCD_STORE_URL")
    for args in READING:
        answer = _syncd(args, config, env)
        assert answer.exit_code != STORE_NOT_READY, (args, answer.output)
    status = json.loads(_syncd(["status", "--json"], config, env).output)
    assert status["schema"] == schema.newest() and status["paused"] == {}  # resumed again
    again = _syncd(["migrate"], config, env)
    assert again.exit_code == 0 and "up to date, nothing to do" in again.output


def test_a_store_behind_is_read_by_no_command_until_migrated(
    config: Path, env: dict[str, str], store_url: str
) -> None:
    older = schema.alembic_config()  # a store an older syncd made: migrated up to 0004
    engine = create_engine(store_url)
    with engine.begin() as connection:
        older.attributes["connection"] = connection
        command.upgrade(older, "0004")
    answer = _syncd(["status"], config, env)
    assert answer.exit_code == STORE_NOT_READY, answer.output
    assert f"is at schema 0004, older than this syncd's {schema.newest()}" in answer.output
    with engine.connect() as connection:  # left as it was
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0004"
    made = _syncd(["migrate"], config, env)
    assert made.exit_code == 0 and f"schema 0004 -> {schema.newest()}" in made.output
    assert _syncd(["status"], config, env).exit_code == 0
    with engine.begin() as connection:  # a newer syncd's revision: migrate cannot help
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    newer = _syncd(["errors"], config, env)
    assert newer.exit_code == STORE_NOT_READY
    assert "is at schema 9999, which this syncd does not know" in newer.output


def _main(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from syncd.cli.app import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command_", [["status"], ["explain", "ada@example.com"], ["run"]])
def test_a_missing_config_says_where_its_path_came_from(
    tmp_path: Path, command_: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCD_CONFIG", "SYNCD_STORE_URL")}
    given = _main([*command_, "--config", str(tmp_path / "given.yaml")], tmp_path, env)
    assert given.returncode == 2
    assert f"no config at {tmp_path / 'given.yaml'} (from --config)" in given.stderr
    env["SYNCD_CONFIG"] = str(tmp_path / "from-env.yaml")
    from_env = _main(command_, tmp_path, env)
    assert from_env.returncode == 2
    assert f"no config at {tmp_path / 'from-env.yaml'} (from $SYNCD_CONFIG)" in from_env.stderr
    if Path("/etc/syncd/syncd.yaml").exists():  # the default would be that file here
        return
    del env["SYNCD_CONFIG"]
    default = _main(command_, tmp_path, env)
    assert default.returncode == 2
    said = " ".join(default.stderr.split())
    assert f"no config at {tmp_path / 'config' / 'syncd.yaml'} (the default: no --config" in said
