"""The scheduler's lease: one holder per store, taken over once the holder is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from syncd.lease import RowLease, current_holder, lease_for
from syncd.state.store import Store

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
