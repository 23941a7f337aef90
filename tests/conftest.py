"""Shared fixtures: the store backends (SQLite always, PostgreSQL where configured)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.harness.killsweep import scratch_schema
from syncd.state.store import Store
from tests.daemons import Daemon, launcher
from tests.world import World, make_world

PG_URL = os.environ.get("SYNCD_TEST_DATABASE_URL")


def _pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema per test, dropped afterwards."""
    assert PG_URL is not None
    with scratch_schema(PG_URL, "t_") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """Every store test runs on SQLite and on PostgreSQL.

    PostgreSQL needs SYNCD_TEST_DATABASE_URL; without it the PostgreSQL half skips with
    that reason, except in CI (CI=true), where a missing server is a failure.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'syncd.db'}"
        return
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("SYNCD_TEST_DATABASE_URL is not set in CI")
        pytest.skip("SYNCD_TEST_DATABASE_URL not set: PostgreSQL store tests not run")
    yield from _pg_schema_url()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store.open(store_url)
    yield store
    store.close()


@pytest.fixture
def world(tmp_path, store_url: str) -> Iterator[World]:
    """Both emulators (no sample data), the real clients and an engine on ``store_url``."""
    yield from make_world(tmp_path, store_url)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Launch ``syncd run`` children (see ``tests.daemons``); killed at the end."""
    yield from launcher(tmp_path)
