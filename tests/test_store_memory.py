"""A SQLite store's memory stays bounded at any size of backfill (issue 11): few
connections kept open, each with a small statement cache, so that lookups by lists of
ids of every length (a prepared statement each) do not pile up in every connection."""

from __future__ import annotations

import _sqlite3
import ctypes
import threading
from pathlib import Path

from syncd.state.store import SQLITE_POOL_SIZE, Store

_memory_used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
_memory_used.restype = ctypes.c_int64


def _sqlite_bytes() -> int:
    """What SQLite has allocated in this process, all connections together."""
    return int(_memory_used())


def test_lookups_by_id_lists_of_every_length_keep_sqlite_memory_bounded(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'syncd.db'}") as store:
        store.links_for("person", "marketing", ["0"])  # the connection and its schema
        before = _sqlite_bytes()
        for length in range(1, 401):  # 400 statements, 1 to 400 parameters
            store.links_for("person", "marketing", [str(n) for n in range(length)])
        grown = _sqlite_bytes() - before
    # With the driver's default cache (128 statements) this grows by about 15 MB.
    assert grown < 6_000_000, grown


def test_a_sqlite_file_keeps_few_connections_open_however_many_threads_used_it(
    tmp_path: Path,
) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'syncd.db'}") as store:
        barrier = threading.Barrier(6)

        def use() -> None:
            with store.engine.connect() as connection:
                barrier.wait(timeout=10)  # six connections checked out at once
                connection.exec_driver_sql("SELECT count(*) FROM links").scalar()

        threads = [threading.Thread(target=use) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.engine.pool.checkedin() == SQLITE_POOL_SIZE  # type: ignore[attr-defined]
        assert SQLITE_POOL_SIZE <= 2
