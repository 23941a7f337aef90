"""Exactly one active scheduler per store: a lease, renewed while the daemon lives.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a
connection of its own. It goes with that connection, so a daemon that dies, however it
dies, frees it at once. SQLite (one machine): a row in ``leases`` with an expiry that
the holder renews; another daemon takes it once it has expired. Either way the
``leases`` row says who holds the lease, for ``syncd status``, and since when: its
``acquired_at`` is the tenure's epoch, new at each take (a renewal keeps it).

A daemon learns it lost the lease before its next write, not at its next tick:

- ``acquire`` (every tick of the daemon) takes or renews it. False: another process
  holds it. ``StoreError``: the store does not answer, so nobody can say (the daemon
  then withholds its watchdog ping).
- ``check`` before each batch of remote writes: PostgreSQL asks the lock's own
  connection whether the lock is still granted to it (a terminated connection has lost
  it); SQLite reads the row.
- ``check_in`` inside each commit of a chunk: the row must still name this holder and
  epoch. On PostgreSQL the row is read ``FOR SHARE`` and the lock must be granted to the
  lock connection's backend, so that a new holder, which rewrites the row when it takes
  the lock, starts only after a commit already under way has ended. On SQLite the
  commit first touches the row, which takes the write lock: a takeover (a write too)
  comes before the check or after the commit.

A PostgreSQL daemon whose lock connection died waits ``ttl`` before it takes the lock
again, so that a standby takes over rather than the daemon that just lost it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from syncd.abc import Fence
from syncd.errors import LeaseLostError, StoreError
from syncd.state.store import Store, aware
from syncd.state.tables import leases

log = logging.getLogger("syncd.lease")
Clock = Callable[[], datetime]
NAME = "scheduler"
_GRANTED = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objid::bigint = :key AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND pid = {pid}
"""
"""Whether a backend holds the advisory lock ``key`` (``pg_try_advisory_lock(bigint)``
with a key below 2**32: classid 0, objid the key, objsubid 1)."""


def holder_id() -> str:
    """This process: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease(Fence, Protocol):
    """The scheduler's lease; ``check`` and ``check_in`` fence the writes (``Fence``)."""

    holder: str

    def acquire(self) -> bool:
        """Take or renew the lease; True while this process holds it, False while another
        does. Raises ``StoreError`` when the store does not answer."""

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


def _unreachable(error: DBAPIError) -> StoreError:
    return StoreError(f"the store does not answer: {error.orig or error}")


def _check_row(
    connection: Connection,
    holder: str,
    epoch: datetime | None,
    now: datetime | None,
    *,
    share: bool = False,
) -> None:
    """Raise ``LeaseLostError`` unless the row names ``holder`` in tenure ``epoch`` (and,
    given ``now``, has not expired)."""
    query = select(leases.c.holder, leases.c.acquired_at, leases.c.expires_at).where(
        leases.c.name == NAME
    )
    row = connection.execute(query.with_for_update(read=True) if share else query).first()
    if row is None or row.holder != holder or epoch is None or aware(row.acquired_at) != epoch:
        taker = row.holder if row is not None and row.holder != holder else "nobody"
        raise LeaseLostError(f"the lease is no longer this daemon's ({taker} holds it)")
    expires = aware(row.expires_at)
    if now is not None and expires is not None and expires <= now:
        raise LeaseLostError(f"the lease expired at {expires:%H:%M:%S}")


def _renew_or_take(
    connection: Connection, holder: str, now: datetime, expires: datetime
) -> datetime | None:
    """Renew our live row or take an expired one (a new epoch); the epoch we hold it in,
    None if another process holds it."""
    renewed = connection.execute(
        update(leases)
        .where(leases.c.name == NAME, leases.c.holder == holder, leases.c.expires_at >= now)
        .values(expires_at=expires)
    )
    if not renewed.rowcount:
        taken = connection.execute(
            update(leases)
            .where(leases.c.name == NAME, leases.c.expires_at < now)
            .values(holder=holder, acquired_at=now, expires_at=expires)
        )
        if not taken.rowcount:
            return None
    return aware(connection.scalar(select(leases.c.acquired_at).where(leases.c.name == NAME)))


def _new_tenure(
    connection: Connection, holder: str, now: datetime, expires: datetime, *, replace: bool
) -> datetime:
    """Write the row of a lease just taken (``replace``: over the row there is); its epoch."""
    if replace:
        connection.execute(delete(leases).where(leases.c.name == NAME))
    connection.execute(
        leases.insert().values(name=NAME, holder=holder, acquired_at=now, expires_at=expires)
    )
    epoch = aware(connection.scalar(select(leases.c.acquired_at).where(leases.c.name == NAME)))
    assert epoch is not None
    return epoch


class RowLease:
    """A lease row with an expiry, renewed by its holder (SQLite)."""

    def __init__(self, store: Store, holder: str, ttl: timedelta, clock: Clock | None = None):
        self.store, self.holder, self.ttl = store, holder, ttl
        self.clock = clock or (lambda: datetime.now(UTC))
        self.epoch: datetime | None = None

    def acquire(self) -> bool:
        now = self.clock()
        try:
            with self.store.engine.begin() as connection:
                self.epoch = _renew_or_take(connection, self.holder, now, now + self.ttl)
            if self.epoch is not None:
                return True
            try:  # nobody has held it yet: the first insert wins
                with self.store.engine.begin() as connection:
                    self.epoch = _new_tenure(
                        connection, self.holder, now, now + self.ttl, replace=False
                    )
            except IntegrityError:
                return False
        except DBAPIError as error:
            raise _unreachable(error) from error
        return True

    def check(self) -> None:
        try:
            with self.store.engine.connect() as connection:
                _check_row(connection, self.holder, self.epoch, self.clock())
        except DBAPIError as error:
            raise LeaseLostError(f"cannot read the lease: {error.orig or error}") from error

    def check_in(self, connection: Connection) -> None:
        # A write first: the transaction then holds SQLite's write lock, so a takeover
        # (a write too) comes before this check or after the commit, never between.
        connection.execute(
            update(leases)
            .where(leases.c.name == NAME, leases.c.holder == self.holder)
            .values(holder=self.holder)
        )
        _check_row(connection, self.holder, self.epoch, self.clock())

    def release(self) -> None:
        self.epoch = None
        try:
            with self.store.engine.begin() as connection:
                connection.execute(
                    delete(leases).where(leases.c.name == NAME, leases.c.holder == self.holder)
                )
        except DBAPIError as error:
            log.warning("could not give the lease up: %s", error.orig or error)


class AdvisoryLease:
    """``pg_try_advisory_lock`` on a connection of its own (PostgreSQL)."""

    def __init__(self, store: Store, holder: str, ttl: timedelta):
        self.store, self.holder, self.ttl = store, holder, ttl
        # Advisory locks are database-wide: the key names the store's schema, so that
        # two stores in one database (two schemas) do not block each other.
        with store.engine.connect() as connection:
            schema = str(connection.scalar(select(func.current_schema())))
        self.key = zlib.crc32(f"syncd:{NAME}:{schema}".encode())
        self.epoch: datetime | None = None
        self._connection: Connection | None = None
        self._pid: int | None = None
        """The lock connection's backend, which ``check_in`` asks pg_locks about."""
        self._lost_at: float | None = None
        # The daemon's tick and the cycle's write threads share the lock connection.
        self._guard = threading.Lock()

    def acquire(self) -> bool:
        with self._guard:
            if self._connection is not None and not self._granted():
                log.error("lease lost: the advisory lock's connection is gone")
                self._drop()
            if self._connection is None:
                if self._holding_off():
                    return False
                if not self._take():
                    return False
            now = datetime.now(UTC)
            try:
                with self.store.engine.begin() as connection:  # the note status reads
                    renewed = connection.execute(
                        update(leases)
                        .where(leases.c.name == NAME, leases.c.holder == self.holder)
                        .values(expires_at=now + self.ttl)
                    )
                    if not renewed.rowcount:
                        self.epoch = _new_tenure(
                            connection, self.holder, now, now + self.ttl, replace=True
                        )
            except DBAPIError as error:
                raise _unreachable(error) from error
            return True

    def check(self) -> None:
        with self._guard:
            if self._connection is None:
                raise LeaseLostError("this daemon does not hold the lease")
            if not self._granted():
                self._drop()
                raise LeaseLostError("the advisory lock's connection is gone")

    def check_in(self, connection: Connection) -> None:
        pid = self._pid
        if pid is None:
            raise LeaseLostError("this daemon does not hold the lease")
        _check_row(connection, self.holder, self.epoch, None, share=True)
        if not connection.scalar(text(_GRANTED.format(pid=int(pid))), {"key": self.key}):
            raise LeaseLostError("the advisory lock is no longer held")

    def release(self) -> None:
        with self._guard:
            if self._connection is not None:
                try:
                    self._connection.scalar(select(func.pg_advisory_unlock(self.key)))
                    self._connection.commit()
                except DBAPIError as error:
                    log.warning("could not unlock: %s", error.orig or error)
                self._drop()
        self.epoch = None
        try:
            with self.store.engine.begin() as connection:
                connection.execute(
                    delete(leases).where(leases.c.name == NAME, leases.c.holder == self.holder)
                )
        except DBAPIError as error:
            log.warning("could not clear the lease row: %s", error.orig or error)

    def _take(self) -> bool:
        """Try the lock on a new connection; False when another backend holds it."""
        try:
            connection = self.store.engine.connect()
        except DBAPIError as error:
            raise _unreachable(error) from error
        try:
            # Operators (and tests) find the lock connection by its name.
            name = f"syncd lease {self.holder}"[:63]
            connection.execute(
                text("SELECT set_config('application_name', :n, false)"), {"n": name}
            )
            got = connection.scalar(select(func.pg_try_advisory_lock(self.key)))
            pid = connection.scalar(select(func.pg_backend_pid()))
            connection.commit()
        except DBAPIError as error:
            with contextlib.suppress(DBAPIError):
                connection.close()
            raise _unreachable(error) from error
        if not got:
            connection.close()
            return False
        self._connection, self._pid, self._lost_at = connection, pid, None
        now = datetime.now(UTC)
        try:
            with self.store.engine.begin() as writing:  # a new tenure: a new epoch
                self.epoch = _new_tenure(writing, self.holder, now, now + self.ttl, replace=True)
        except DBAPIError as error:
            self._drop()
            raise _unreachable(error) from error
        log.info("lease taken: advisory lock %s", self.key)
        return True

    def _granted(self) -> bool:
        """Whether the lock connection lives and holds the lock (one query on it)."""
        assert self._connection is not None
        try:
            held = self._connection.scalar(
                text(_GRANTED.format(pid="pg_backend_pid()")), {"key": self.key}
            )
            self._connection.commit()
        except DBAPIError:
            return False
        return bool(held)

    def _holding_off(self) -> bool:
        """Just lost: leave the lock to a standby for ``ttl`` (but say if the store is
        down, by asking it something)."""
        if self._lost_at is None or time.monotonic() - self._lost_at >= self.ttl.total_seconds():
            return False
        try:
            with self.store.engine.connect() as connection:
                connection.scalar(select(1))
        except DBAPIError as error:
            raise _unreachable(error) from error
        return True

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):
                self._connection.close()
            self._connection, self._pid = None, None
            self._lost_at = time.monotonic()
