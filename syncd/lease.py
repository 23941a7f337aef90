"""Exactly one active scheduler per store: a lease, renewed while the daemon lives.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a
connection of its own. It goes with that connection, so a daemon that dies, however it
dies, frees it at once. SQLite (one machine): a row in ``leases`` with an expiry that
the holder renews; another daemon takes it once it has expired. Either way the
``leases`` row says who holds the lease, for ``syncd status``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from syncd.state.store import Store, aware
from syncd.state.tables import leases

log = logging.getLogger("syncd.lease")
Clock = Callable[[], datetime]
NAME = "scheduler"


def holder_id() -> str:
    """This process: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease(Protocol):
    holder: str

    def acquire(self) -> bool:
        """Take or renew the lease; True while this process holds it."""

    def release(self) -> None:
        """Give the lease up (on a clean stop)."""


def lease_for(store: Store, ttl: timedelta, holder: str | None = None) -> Lease:
    """The store's kind of lease."""
    holder = holder or holder_id()
    if store.engine.dialect.name == "postgresql":
        return AdvisoryLease(store, holder, ttl)
    return RowLease(store, holder, ttl)


def current_holder(store: Store, now: datetime | None = None) -> dict[str, Any] | None:
    """Who holds the lease, as its row says (None when nobody does)."""
    now = now or datetime.now(UTC)
    with store.engine.connect() as connection:
        row = connection.execute(select(leases).where(leases.c.name == NAME)).first()
    if row is None:
        return None
    expires = aware(row.expires_at)
    assert expires is not None
    return {
        "holder": row.holder,
        "since": aware(row.acquired_at),
        "expires_at": expires,
        "live": expires > now,
    }


class RowLease:
    """A lease row with an expiry, renewed by its holder (SQLite)."""

    def __init__(self, store: Store, holder: str, ttl: timedelta, clock: Clock | None = None):
        self.store, self.holder, self.ttl = store, holder, ttl
        self.clock = clock or (lambda: datetime.now(UTC))

    def acquire(self) -> bool:
        now = self.clock()
        with self.store.engine.begin() as connection:
            if _renew_or_take(connection, self.holder, now, now + self.ttl):
                return True
        try:  # nobody has held it yet: the first insert wins
            with self.store.engine.begin() as connection:
                connection.execute(
                    leases.insert().values(
                        name=NAME, holder=self.holder, acquired_at=now, expires_at=now + self.ttl
                    )
                )
        except IntegrityError:
            return False
        return True

    def release(self) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(
                delete(leases).where(leases.c.name == NAME, leases.c.holder == self.holder)
            )


def _renew_or_take(connection: Connection, holder: str, now: datetime, expires: datetime) -> bool:
    """Renew our row or take an expired one; True if we hold it now."""
    renewed = connection.execute(
        update(leases)
        .where(leases.c.name == NAME, leases.c.holder == holder)
        .values(expires_at=expires)
    )
    if renewed.rowcount:
        return True
    taken = connection.execute(
        update(leases)
        .where(leases.c.name == NAME, leases.c.expires_at < now)
        .values(holder=holder, acquired_at=now, expires_at=expires)
    )
    return bool(taken.rowcount)


class AdvisoryLease:
    """``pg_try_advisory_lock`` on a connection of its own (PostgreSQL)."""

    def __init__(self, store: Store, holder: str, ttl: timedelta):
        self.store, self.holder, self.ttl = store, holder, ttl
        # Advisory locks are database-wide: the key names the store's schema, so that
        # two stores in one database (two schemas) do not block each other.
        with store.engine.connect() as connection:
            schema = str(connection.scalar(select(func.current_schema())))
        self.key = zlib.crc32(f"syncd:{NAME}:{schema}".encode())
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        now = datetime.now(UTC)
        try:
            if self._connection is None:
                connection = self.store.engine.connect()
                got = connection.scalar(select(func.pg_try_advisory_lock(self.key)))
                connection.commit()
                if not got:
                    connection.close()
                    return False
                self._connection = connection
                log.info("lease taken: advisory lock %s", self.key)
            else:  # still ours while its connection lives
                self._connection.scalar(select(1))
                self._connection.commit()
        except DBAPIError as error:
            log.error("lease lost: %s", error)
            self._drop()
            return False
        with self.store.engine.begin() as connection:  # the note status reads
            if not _renew_or_take(connection, self.holder, now, now + self.ttl):
                connection.execute(delete(leases).where(leases.c.name == NAME))
                connection.execute(
                    leases.insert().values(
                        name=NAME, holder=self.holder, acquired_at=now, expires_at=now + self.ttl
                    )
                )
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.scalar(select(func.pg_advisory_unlock(self.key)))
                self._connection.commit()
            except DBAPIError as error:
                log.warning("could not unlock: %s", error)
            self._drop()
        with self.store.engine.begin() as connection:
            connection.execute(
                delete(leases).where(leases.c.name == NAME, leases.c.holder == self.holder)
            )

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):
                self._connection.close()
            self._connection = None
