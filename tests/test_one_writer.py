"""Exactly one writer: real ``syncd run`` children on one store.

A daemon whose lease goes away in the middle of a write phase (PostgreSQL: its lock
connection terminated by the server; SQLite: its lease row taken) writes nothing more,
the standby takes over, and nothing is lost or created twice. A store that does not
answer stops the watchdog pings and turns ``/healthz`` to 503 until it answers again.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, make_url, text, update

from syncd.harness import sandbox
from syncd.state.store import Store
from syncd.state.tables import leases
from tests.daemons import Daemon
from tests.tcp_proxy import Proxy

SETTINGS = {
    "cadence_seconds": {"company": 1, "person": 1, "deal": 1},
    "daemon": {
        "lease_seconds": 30,
        "shutdown_timeout_seconds": 20,
        "log_json": True,
        "metrics": "127.0.0.1:0",
    },
}
"""The production rhythm: a lease check every 5 s (a 30 s lease, a 20 s watchdog).

The tests ask for ``store_url`` before ``start``, so that a failing test's daemons are
killed before its PostgreSQL schema is dropped."""
WATCHDOG_USEC = 20_000_000
PEOPLE = int(os.environ.get("SYNCD_TEST_TWO_WRITERS_PEOPLE", "3000"))
"""More in a trial run (a longer write phase shows whether the two daemons' writes overlap)."""
GRACE = 0.5
"""A write already sent when the lease went may still reach the system this long after."""


class WriteLog:
    """The Salesforce write calls as the emulator receives them: (monotonic time, token).

    Each daemon logs in on its own, so the bearer token tells whose call it was."""

    def __init__(self, emulator: Any) -> None:
        self.calls: list[tuple[float, str]] = []
        passed_on = emulator.dispatch

        def dispatch(request: Any) -> Any:
            if request.method != "GET" and request.path.startswith("/services/data/"):
                token = request.headers.get("Authorization", "").partition(" ")[2]
                self.calls.append((time.monotonic(), token))
            return passed_on(request)

        emulator.dispatch = dispatch

    def of(self, token: str) -> list[float]:
        return [at for at, who in list(self.calls) if who == token]

    def not_of(self, token: str) -> list[float]:
        return [at for at, who in list(self.calls) if who != token]


def _live_leads(box: sandbox.Sandbox) -> list[dict[str, Any]]:
    return [r for r in box.emulators["salesforce"].records("Lead") if not r.get("IsDeleted")]


def _all_synced(box: sandbox.Sandbox) -> bool:
    """Every HubSpot contact has its lead, once, naming it (nothing lost)."""
    leads = _live_leads(box)
    emails = [str(r["Email"]).lower() for r in leads]
    assert len(emails) == len(set(emails)), "a lead was created twice"
    contacts = box.emulators["hubspot"].contacts()
    named = {r.get("Syncd_HubSpot_Id__c") for r in leads}
    return len(leads) == len(contacts) and named == {c["id"] for c in contacts}


def _logged_at(daemon: Daemon, start: str) -> datetime:
    """When the daemon first logged a message starting with ``start`` (its clock)."""
    for line in list(daemon.lines):
        if line.startswith("{"):
            event = json.loads(line)
            if event["message"].startswith(start):
                return datetime.strptime(event["time"], "%Y-%m-%d %H:%M:%S,%f")
    raise AssertionError(f"never logged {start!r}")


def _terminate_lock_connection(store_url: str) -> float:
    """Terminate the backend holding the store's advisory lock; when it was done."""
    schema = store_url.rsplit("search_path%3D", 1)[1]
    key = zlib.crc32(f"syncd:scheduler:{schema}".encode())
    admin = create_engine(store_url)
    try:
        with admin.connect() as connection:
            pid = connection.scalar(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND objid::bigint = :key AND objsubid = 1"
                ),
                {"key": key},
            )
            assert pid is not None, "nobody holds the lock"
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            done = time.monotonic()
            connection.commit()  # pg_stat_activity is read once per transaction
            gone = time.monotonic() + 30
            while connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ):
                connection.commit()
                assert time.monotonic() < gone, "the lock connection did not end"
                time.sleep(0.02)
            connection.commit()
    finally:
        admin.dispose()
    return done


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_daemon_whose_lock_connection_is_killed_mid_write_writes_nothing_more(
    tmp_path: Path, store_url: str, start: Callable[..., Daemon]
) -> None:
    config = tmp_path / "config"
    with sandbox.start(config, sample=False, store=store_url, overrides=SETTINGS) as box:
        salesforce = box.emulators["salesforce"]
        salesforce.set_latency(150)  # every call takes a while: the kill lands mid-write
        writes = WriteLog(salesforce)
        first = start(box.config_path, WATCHDOG_USEC)
        first.wait_for(lambda: first.logged("active"), seconds=30)
        second = start(box.config_path, WATCHDOG_USEC)
        second.wait_for(lambda: second.logged("standby"), seconds=30)
        box.emulators["hubspot"].seed_contacts(PEOPLE)
        first.wait_for(lambda: len(writes.calls) >= 2, seconds=60)
        first_token = writes.calls[0][1]  # only the active daemon writes until now
        killed = _terminate_lock_connection(store_url)
        second.wait_for(lambda: second.logged("active"), seconds=30)
        second.wait_for(lambda: _all_synced(box), seconds=120)
        first.wait_for(lambda: first.logged("lease lost"), seconds=30)
        late = [at - killed for at in writes.of(first_token) if at > killed + GRACE]
        theirs = writes.not_of(first_token)
        overlap = bool(theirs) and max(writes.of(first_token)) > min(theirs)
        both = (_logged_at(first, "lease lost") - _logged_at(second, "active")).total_seconds()
        print(
            f"two writers: first daemon's Salesforce writes after the kill "
            f"{len([a for a in writes.of(first_token) if a > killed])} "
            f"(past {GRACE} s: {len(late)}), overlap with the second's: {overlap}, "
            f"both active for {max(both, 0):.1f} s"
        )
        assert not late, f"writes after the lease was lost, at +s: {late[:10]}"
        assert not overlap
        assert first.process.poll() is None  # alive, standing by
        assert second.stop() == 0 and first.stop() == 0


def test_a_daemon_whose_sqlite_lease_is_taken_mid_write_writes_nothing_more(
    tmp_path: Path, start: Callable[..., Daemon]
) -> None:
    config = tmp_path / "config"
    with sandbox.start(config, sample=False, overrides=SETTINGS) as box:
        salesforce = box.emulators["salesforce"]
        salesforce.set_latency(150)
        writes = WriteLog(salesforce)
        daemon = start(box.config_path, WATCHDOG_USEC)
        daemon.wait_for(lambda: daemon.logged("active"), seconds=30)
        box.emulators["hubspot"].seed_contacts(PEOPLE)
        daemon.wait_for(lambda: len(writes.calls) >= 2, seconds=60)
        store = Store.open(f"sqlite:///{config / 'syncd.db'}")
        try:
            now = datetime.now(UTC)
            with store.engine.begin() as connection:  # another daemon takes the lease
                connection.execute(
                    update(leases).values(
                        holder="elsewhere:1:abcdef",
                        acquired_at=now,
                        expires_at=now + timedelta(hours=1),
                    )
                )
            taken = time.monotonic()
            daemon.wait_for(lambda: daemon.logged("lease lost"), seconds=30)
            late = [at - taken for at, _ in list(writes.calls) if at > taken + GRACE]
            assert not late, f"writes after the lease was taken, at +s: {late[:10]}"
            with store.engine.begin() as connection:  # the other daemon goes away
                connection.execute(delete(leases))
        finally:
            store.close()
        daemon.wait_for(lambda: _all_synced(box), seconds=120)
        assert daemon.stop() == 0


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_store_outage_stops_the_watchdog_and_fails_healthz(
    tmp_path: Path, store_url: str, start: Callable[..., Daemon]
) -> None:
    server = make_url(store_url)
    proxy = Proxy((server.host or "127.0.0.1", server.port or 5432))
    proxy.restore()
    via_proxy = store_url.replace(
        f"@{server.host}:{server.port or 5432}/", f"@127.0.0.1:{proxy.port}/", 1
    )
    overrides = {**SETTINGS, "daemon": {**SETTINGS["daemon"], "lease_seconds": 3}}
    try:
        config = tmp_path / "config"
        with sandbox.start(config, sample=False, store=via_proxy, overrides=overrides) as box:
            daemon = start(box.config_path)  # a ping every second
            daemon.wait_for(lambda: daemon.logged("active") and daemon.notified("WATCHDOG=1"))
            assert daemon.scrape("/healthz")[0] == 200
            proxy.cut()
            daemon.wait_for(lambda: daemon.notified("the store does not answer"), seconds=30)
            down = next(
                at for at, line in list(daemon.stamped) if "the store does not answer" in line
            )
            daemon.wait_for(lambda: daemon.logged("the store does not answer"))
            daemon.wait_for(lambda: daemon.scrape("/healthz")[0] == 503, seconds=30)
            assert "store does not answer" in daemon.scrape("/healthz")[1]

            def outage_statuses() -> int:
                return sum(
                    1
                    for at, line in list(daemon.stamped)
                    if at >= down and "the store does not answer" in line
                )

            daemon.wait_for(lambda: outage_statuses() >= 4, seconds=30)  # four ticks or more
            assert daemon.pings_since(down) == 0
            proxy.restore()
            back = time.monotonic()
            daemon.wait_for(lambda: daemon.pings_since(back) > 0, seconds=30)
            daemon.wait_for(lambda: daemon.scrape("/healthz")[0] == 200, seconds=30)
            daemon.wait_for(lambda: daemon.logged("the store answers again"))
            assert daemon.stop() == 0
    finally:
        proxy.cut()
