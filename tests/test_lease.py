"""The scheduler's lease: one holder per store, taken over once the holder is gone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from syncd.daemon.lease import RowLease, current_holder, lease_for
from syncd.errors import LeaseLostError, StoreError
from syncd.state.store import Store
from tests.tcp_proxy import Proxy

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def test_a_row_lease_is_held_renewed_and_taken_over_only_when_expired(store: Store) -> None:
    now = [T0]
    first = RowLease(store, "host:1:aaaaaa", TTL, clock=lambda: now[0])
    second = RowLease(store, "host:2:bbbbbb", TTL, clock=lambda: now[0])
    assert first.acquire() and not second.acquire()
    now[0] = T0 + timedelta(seconds=20)
    assert first.acquire()  # renewed: expires at +50 s now
    now[0] = T0 + timedelta(seconds=45)
    assert not second.acquire()
    holder = current_holder(store, now[0])
    assert holder is not None and holder["holder"] == "host:1:aaaaaa" and holder["live"]
    now[0] = T0 + timedelta(seconds=51)  # the first stopped renewing: it died
    assert second.acquire() and not first.acquire()
    taken = current_holder(store, now[0])
    assert taken is not None and taken["holder"] == "host:2:bbbbbb"
    second.release()
    assert current_holder(store) is None and first.acquire()


def test_the_store_kind_decides_the_lease(store: Store) -> None:
    first, second = lease_for(store, TTL, "host:1:aaaaaa"), lease_for(store, TTL, "host:2:bbbbbb")
    assert first.acquire() and not second.acquire()
    assert first.acquire()  # still held
    first.release()
    assert second.acquire() and not first.acquire()
    second.release()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_stores_in_two_postgresql_schemas_have_leases_of_their_own(store_url: str) -> None:
    first = Store.open(store_url)
    other_url = store_url.rsplit("search_path%3D", 1)[0] + "search_path%3Dsyncd_other"
    with first.engine.begin() as connection:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS syncd_other"))
    second = Store.open(other_url)
    try:
        mine, theirs = lease_for(first, TTL, "a:1:x"), lease_for(second, TTL, "b:2:y")
        assert mine.acquire() and theirs.acquire()  # no shared lock between the schemas
        mine.release()
        theirs.release()
    finally:
        second.close()
        with first.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA syncd_other CASCADE"))
        first.close()


def _terminate(store: Store, holder: str) -> None:
    """End the lease's lock connection from the server side, as an admin or a failover would."""
    with store.engine.connect() as connection:
        pids = connection.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": f"syncd lease {holder}"[:63]},
        ).all()
        assert len(pids) == 1
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
        connection.commit()  # pg_stat_activity is read once per transaction
        while connection.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pids[0]}
        ):
            connection.commit()
            time.sleep(0.02)
        connection.commit()


def test_a_lost_lease_fails_the_checks_before_writes_and_in_commits(store: Store) -> None:
    now = [datetime.now(UTC)]
    first, second = lease_for(store, TTL, "host:1:aaaaaa"), lease_for(store, TTL, "host:2:bbbbbb")
    for lease in (first, second):
        if isinstance(lease, RowLease):
            lease.clock = lambda: now[0]
    assert first.acquire()
    first.check()
    with store.engine.begin() as connection:
        first.check_in(connection)
    if store.engine.dialect.name == "postgresql":
        _terminate(store, first.holder)  # the lock goes with its connection
    else:
        now[0] += TTL + timedelta(seconds=1)  # the first stopped renewing
    with pytest.raises(LeaseLostError):
        first.check()
    assert second.acquire()
    with pytest.raises(LeaseLostError), store.engine.begin() as connection:
        first.check_in(connection)
    assert not first.acquire()  # the second holds it now
    second.check()
    second.release()
    with pytest.raises(LeaseLostError):
        second.check()


def test_a_lease_taken_anew_by_its_old_holder_is_a_new_epoch(store: Store) -> None:
    """A commit of the tenure before does not pass the check of the tenure after."""
    now = [datetime.now(UTC)]
    lease = RowLease(store, "host:1:aaaaaa", TTL, clock=lambda: now[0])
    assert lease.acquire()
    before = lease.epoch
    now[0] += TTL + timedelta(seconds=1)
    assert lease.acquire() and lease.epoch is not None and lease.epoch != before
    lease.epoch = before
    with pytest.raises(LeaseLostError):
        lease.check()


def test_an_unreachable_sqlite_store_is_an_error_not_another_holder(tmp_path: Path) -> None:
    missing = Store(create_engine(f"sqlite:///{tmp_path / 'gone' / 'syncd.db'}"))
    lease = lease_for(missing, TTL, "host:1:aaaaaa")
    with pytest.raises(StoreError, match="does not answer"):
        lease.acquire()
    with pytest.raises(LeaseLostError):
        lease.check()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_an_unreachable_postgresql_store_is_an_error_not_another_holder(store_url: str) -> None:
    server = make_url(store_url)
    proxy = Proxy((server.host or "127.0.0.1", server.port or 5432))
    proxy.restore()
    via_proxy = store_url.replace(
        f"@{server.host}:{server.port or 5432}/", f"@127.0.0.1:{proxy.port}/", 1
    )
    store = Store.open(via_proxy)
    try:
        lease = lease_for(store, TTL, "host:1:aaaaaa")
        assert lease.acquire()
        proxy.cut()
        with pytest.raises(StoreError, match="does not answer"):
            lease.acquire()
        with pytest.raises(LeaseLostError):
            lease.check()
        proxy.restore()
        assert not lease.acquire()  # just lost: a standby gets the first chance
    finally:
        proxy.cut()
        store.close()
