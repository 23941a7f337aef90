"""The state store: SQLite by default, PostgreSQL in production, migrated by Alembic.

``Store.open`` creates and migrates (``syncd run``, ``syncd once``, ``syncd migrate``);
``Store.existing`` opens a store as it is and refuses one that is missing or not at the
newest schema, creating and writing nothing (every other command).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import orjson
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    case,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url

from syncd.errors import StoreError, StoreNotReadyError
from syncd.model import Cursor, Record, RecordRef, email_key
from syncd.state import schema
from syncd.state import url as store_url
from syncd.state.derived import DerivedQueries
from syncd.state.links import LINK_COLUMNS, LinkQueries, chunks, link_state
from syncd.state.refusals import resolve_refusals, store_refusals
from syncd.state.sweeps import SweepQueries, SweepState, sweep_kind
from syncd.state.tables import (
    bases,
    cursors,
    dead_letters,
    gate_held,
    inbox,
    journal,
    links,
    stage_history,
)
from syncd.sync.intake import Refusal
from syncd.sync.reconcile import LinkState

MIGRATIONS = schema.MIGRATIONS
OPEN_LETTER = dead_letters.c.resolved_at.is_(None) & dead_letters.c.dismissed_at.is_(None)
"""A dead letter still to be dealt with: neither resolved nor dismissed."""
T = TypeVar("T")
HELD = datetime(9999, 1, 1, tzinfo=UTC)
"""The ``not_before`` of an inbox row no merge takes (conversions read it every cycle)."""


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time in syncd is UTC-aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def record_payload(record: Record) -> str:
    return orjson.dumps(
        {
            "fields": dict(record.fields),
            "stage": dict(record.stage),
            "deleted": record.deleted,
            "modified_at": record.modified_at.isoformat(),
        }
    ).decode()


def record_from_row(row: Any) -> Record:
    payload = orjson.loads(row.payload)
    converted = {}
    if row.converted:
        converted = {obj: RecordRef(*ref) for obj, ref in orjson.loads(row.converted).items()}
    return Record(
        ref=RecordRef(row.system, row.kind, row.record_id),
        fields=payload["fields"],
        modified_at=datetime.fromisoformat(payload["modified_at"]),
        stage=payload["stage"],
        partner_id=row.partner_id,
        deleted=payload["deleted"],
        converted=converted,
    )


def _converted(record: Record) -> str | None:
    if not record.converted:
        return None
    refs = {obj: [r.system, r.kind, r.id] for obj, r in record.converted.items()}
    return orjson.dumps(refs).decode()


class Store(LinkQueries, SweepQueries, DerivedQueries):
    """One state store; ``open`` migrates it to the newest schema."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """The store at ``url``, created if missing and migrated to the newest schema."""
        store = cls(_engine(url))
        store.migrate()
        return store

    @classmethod
    def existing(cls, url: str) -> Store:
        """The store at ``url`` as it is: nothing created, migrated or written on the way.

        Raises ``StoreNotReadyError`` when a SQLite file is missing, or the database has
        no syncd schema or another revision than this syncd's newest; ``StoreError``
        when it does not answer."""
        path = sqlite_file(url)
        if path is not None and not path.exists():
            raise StoreNotReadyError(
                f"no store at {path}: the file does not exist",
                "`syncd migrate` creates it (`syncd run` and `syncd once` do too)",
            )
        try:
            revision = revision_of(url)
        except StoreError as error:  # the server refused the connection: the reason
            missing = _MISSING_DATABASE.search(str(error))
            if missing is None:
                raise
            raise StoreNotReadyError(
                f"no store at {store_url.shown(url)}: the database {missing[1]} does not exist",
                f"create it (`createdb {missing[1]}`, or CREATE DATABASE as its owner), then"
                " `syncd migrate`",
            ) from error
        refused = schema.refusal(store_url.shown(url), revision)
        if refused is not None:
            raise refused
        return cls(_engine(url))

    def migrate(self) -> None:
        """Bring the schema to the newest revision (see ``syncd.state.schema``)."""
        schema.migrate(self.engine)

    def schema_version(self) -> tuple[str | None, str | None]:
        """(current, newest) Alembic revisions."""
        newest = ScriptDirectory.from_config(schema.alembic_config()).get_current_head()
        with self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        return current, newest

    def close(self) -> None:
        self.engine.dispose()

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database and cut the log back to
        nothing (``wal_checkpoint(TRUNCATE)``), so that a cycle's writes do not pile up
        in it; a reader still busy in another connection makes it a partial checkpoint,
        and the next one finishes the job. Before it, pages the inbox freed (a backfill
        queues every record it read, then empties the queue) go back to the file system
        once more than ``FREE_PAGES_KEPT`` of them lie unused (``incremental_vacuum``, on
        stores made with ``auto_vacuum=INCREMENTAL``: see ``_sqlite_pragmas``).
        PostgreSQL: nothing to do (autovacuum)."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as connection:
            free = connection.exec_driver_sql("PRAGMA freelist_count").scalar() or 0
            if free > FREE_PAGES_KEPT:
                # One step of the statement frees one page; executescript steps it to
                # the end (sqlite3's execute would step it once).
                raw = connection.connection.driver_connection
                assert raw is not None
                raw.executescript("PRAGMA incremental_vacuum")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- cursors ------------------------------------------------------------------

    def cursor(self, system: str, kind: str) -> Cursor:
        with self.engine.connect() as connection:
            value = connection.scalar(
                select(cursors.c.value).where(cursors.c.system == system, cursors.c.kind == kind)
            )
        return Cursor.loads(value)

    @staticmethod
    def save_cursor(connection: Connection, system: str, kind: str, cursor: Cursor) -> None:
        now = datetime.now(UTC)
        values = {"value": cursor.dumps(), "updated_at": now}
        done = connection.execute(
            update(cursors).where(cursors.c.system == system, cursors.c.kind == kind), values
        )
        if done.rowcount == 0:
            connection.execute(cursors.insert(), {"system": system, "kind": kind, **values})

    def save_sweep(
        self,
        obj: str,
        system: str,
        kind: str,
        sweep: str,
        state: SweepState,
        records: Sequence[Record],
        links: Mapping[str, LinkState],
        match: str | None,
    ) -> None:
        """Keep what a sweep slice found (in the inbox) and its new position, in one
        transaction."""
        with self.engine.begin() as connection:
            if records:
                _put_rows(connection, obj, system, kind, records, links, frozenset(), match)
            values = {"value": state.dumps(), "updated_at": datetime.now(UTC)}
            where = (cursors.c.system == system) & (cursors.c.kind == sweep_kind(kind, sweep))
            if connection.execute(update(cursors).where(where), values).rowcount == 0:
                connection.execute(
                    cursors.insert(), {"system": system, "kind": sweep_kind(kind, sweep), **values}
                )

    # -- the inbox ---------------------------------------------------------------

    def links_for(self, obj: str, role: str, ids: Sequence[str]) -> dict[str, LinkState]:
        """The links (with their bases) of one side's records, by that side's id."""
        id_column = links.c.marketing_id if role == "marketing" else links.c.crm_id
        found: dict[str, LinkState] = {}
        with self.engine.connect() as connection:
            for chunk in chunks(ids, 500):
                rows = connection.execute(
                    select(*LINK_COLUMNS, bases.c.fields, bases.c.stage)
                    .select_from(links.outerjoin(bases, bases.c.link_id == links.c.id))
                    .where(links.c.object == obj, id_column.in_(chunk))
                ).all()
                for row in rows:
                    found[row.marketing_id if role == "marketing" else row.crm_id] = link_state(row)
        return found

    def stage(
        self,
        obj: str,
        system: str,
        kind: str,
        records: Sequence[Record],
        cursor: Cursor | None,
        *,
        links: Mapping[str, LinkState],
        settled: Set[str] = frozenset(),
        match: str | None = "email",
        refused: Sequence[Refusal] = (),
    ) -> None:
        """Keep one page of read records and advance the cursor, in one transaction.

        ``refused`` records of the page (``syncd.sync.intake``) are dead-lettered instead;
        the others resolve their own earlier refusals.

        Records in ``settled`` stand at their base (mostly syncd's own writes coming
        back): an older copy of them leaves the inbox and nothing takes its place.
        ``cursor`` None keeps the cursor where it is (a dry run). ``match`` names the
        field whose value (case-insensitive) pairs unlinked records.
        """
        with self.engine.begin() as connection:
            _put_rows(connection, obj, system, kind, records, links, settled, match)
            now = datetime.now(UTC)
            if refused:
                store_refusals(connection, obj, refused, now)
            resolve_refusals(connection, system, [str(r.ref) for r in records], now)
            if cursor is not None:
                self.save_cursor(connection, system, kind, cursor)

    def convert(
        self,
        obj: str,
        moves: Sequence[tuple[int, str, RecordRef]],
        records: Sequence[tuple[Record, LinkState]],
        drop: Sequence[int],
        journal_rows: Sequence[Mapping[str, Any]],
        *,
        now: datetime,
        match: str | None,
        refused: Sequence[Refusal] = (),
        held: Sequence[int] = (),
    ) -> None:
        """Move links to the records they were converted into, in one transaction.

        ``moves``: (link id, role, new record). ``records`` are put in the inbox under
        their links (the converted-into record, and its partner), ``drop`` are inbox rows
        done with (the converted records); ``refused`` records are dead-lettered, and the
        rows of the conversions into them are ``held``: out of the merge, read again by
        the next cycle's conversions.
        """
        with self.engine.begin() as connection:
            for link_id, role, ref in moves:
                kind, id_ = (
                    (links.c.marketing_kind, links.c.marketing_id)
                    if role == "marketing"
                    else (links.c.crm_kind, links.c.crm_id)
                )
                connection.execute(
                    update(links)
                    .where(links.c.id == link_id)
                    .values({kind: ref.kind, id_: ref.id, links.c.updated_at: now})
                )
            for record, link in records:
                _put_rows(
                    connection,
                    obj,
                    record.ref.system,
                    record.ref.kind,
                    [record],
                    {record.ref.id: link},
                    frozenset(),
                    match,
                )
            for chunk in chunks(list(drop), 500):
                connection.execute(delete(inbox).where(inbox.c.id.in_(chunk)))
            if journal_rows:
                connection.execute(journal.insert(), list(journal_rows))
            store_refusals(connection, obj, refused, now)
            for chunk in chunks(list(held), 500):
                connection.execute(
                    update(inbox).where(inbox.c.id.in_(chunk)).values(not_before=HELD)
                )

    def assign_pairs(self, obj: str, marketing: str, crm: str) -> None:
        """Give unlinked inbox rows a pair key: partner id first, then email, else alone.

        A partner id pairs two rows only when the record it names is in the inbox too;
        one naming a record not read this cycle falls through to the email match.

        A row is queued with its email or record key already (``default_pair_key``), so
        only the rows a partner id pairs are written here, and the ones it paired before
        go back to their own key first. Before, every unlinked row was keyed anew in
        three passes: at 1,000,000 people one transaction rewrote the whole inbox, half a
        gigabyte of write-ahead log that no checkpoint could cut while it ran.
        """
        with self.engine.begin() as connection:
            unpaired = (inbox.c.object == obj) & inbox.c.link_id.is_(None)
            by_partner = or_(
                *(
                    (inbox.c.pair_key >= prefix) & (inbox.c.pair_key < _after(prefix))
                    for prefix in PARTNER_PREFIXES
                )
            )
            connection.execute(
                update(inbox)
                .where(unpaired, or_(inbox.c.pair_key.is_(None), by_partner))
                .values(
                    pair_key=case(
                        (inbox.c.email_key.is_not(None), "e:" + inbox.c.email_key),
                        else_="r:" + inbox.c.system + ":" + inbox.c.record_id,
                    )
                )
            )
            for holder, named, prefix in ((marketing, crm, "p:"), (crm, marketing, "q:")):
                _pair_by_partner(connection, unpaired & ~by_partner, obj, holder, named, prefix)

    def inbox_groups(
        self, obj: str, *, linked: bool, now: datetime, size: int, holding: str | None = None
    ) -> Iterator[list[list[Any]]]:
        """Due inbox rows in chunks of about ``size`` groups (by link, or by pair key);
        ``holding`` (a system): only the groups with a row of it."""
        key = inbox.c.link_id if linked else inbox.c.pair_key
        due = (
            (inbox.c.object == obj)
            & (inbox.c.link_id.is_not(None) if linked else inbox.c.link_id.is_(None))
            & ((inbox.c.not_before.is_(None)) | (inbox.c.not_before <= now))
        )
        if holding is not None:
            # Correlated, so that each group is checked through the (object, key) index as
            # the chunk's walk reaches it. As ``key IN (SELECT ...)`` SQLite built the list
            # of every held key anew for each chunk: quadratic in the inbox, a backfill of
            # 1,000,000 people spent minutes on it.
            other = inbox.alias("held")
            other_key = other.c.link_id if linked else other.c.pair_key
            due = due & (
                select(other.c.id)
                .where(
                    other.c.object == obj,
                    other_key == key,
                    # as an expression, not the column: without statistics SQLite would
                    # rather search (object, system), every row of the system per group
                    other.c.system + "" == holding,
                    other.c.not_before.is_(None) | (other.c.not_before <= now),
                )
                .exists()
            )
        after: Any = None
        while True:
            with self.engine.connect() as connection:
                query = select(key).where(due).group_by(key).order_by(key).limit(size)
                if after is not None:
                    query = query.where(key > after)
                keys = list(connection.scalars(query))
                if not keys:
                    return
                rows = connection.execute(
                    select(inbox).where(due, key.in_(keys)).order_by(key, inbox.c.id)
                ).all()
            groups: dict[Any, list[Any]] = {}
            for row in rows:
                groups.setdefault(row.link_id if linked else row.pair_key, []).append(row)
            yield list(groups.values())
            after = keys[-1]

    def converted_rows(self, obj: str) -> list[Any]:
        """Inbox rows of records the system converted (a Salesforce lead), oldest first."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(inbox)
                    .where(inbox.c.object == obj, inbox.c.converted.is_not(None))
                    .order_by(inbox.c.modified_at, inbox.c.id)
                )
            )

    def drop_inbox(self, row_ids: Sequence[int]) -> None:
        with self.engine.begin() as connection:
            for chunk in chunks(list(row_ids), 500):
                connection.execute(delete(inbox).where(inbox.c.id.in_(chunk)))

    # -- reading for status and tests -------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            result = {}
            for name, table, where in (
                ("links", links, links.c.tombstoned_at.is_(None)),
                ("tombstoned", links, links.c.tombstoned_at.is_not(None)),
                ("inbox", inbox, None),
                ("dead_letters", dead_letters, OPEN_LETTER),
                ("journal", journal, None),
                ("stage_history", stage_history, None),
                ("gate_held", gate_held, None),
            ):
                query = select(func.count()).select_from(table)
                if where is not None:
                    query = query.where(where)
                result[name] = int(connection.scalar(query) or 0)
        return result

    def open_letters_by_system(self) -> dict[str, int]:
        """Dead letters neither resolved nor dismissed, per refusing system."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(dead_letters.c.system, func.count())
                .where(OPEN_LETTER)
                .group_by(dead_letters.c.system)
            )
            return {str(system): int(count) for system, count in rows}

    def inbox_by_object(self) -> dict[str, int]:
        """Records read and not merged yet (retries waiting included), per object."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(inbox.c.object, func.count())
                .group_by(inbox.c.object)
                .order_by(inbox.c.object)
            )
            return {str(obj): int(count) for obj, count in rows}

    def links_by_object(self) -> dict[str, int]:
        """Live links per object."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(links.c.object, func.count())
                .where(links.c.tombstoned_at.is_(None))
                .group_by(links.c.object)
                .order_by(links.c.object)
            )
            return {str(obj): int(count) for obj, count in rows}

    def cursors(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(cursors).order_by(cursors.c.system, cursors.c.kind))
            return [  # sweep positions ("contacts#deletions") are no scan cursors
                {
                    "system": r.system,
                    "kind": r.kind,
                    "since": Cursor.loads(r.value).since,
                    "updated_at": aware(r.updated_at),
                }
                for r in rows
                if "#" not in r.kind
            ]

    def dead_letters(self, *, open_only: bool = True) -> list[dict[str, Any]]:
        query = select(dead_letters).order_by(dead_letters.c.id)
        if open_only:
            query = query.where(OPEN_LETTER)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def stage_history(self, link_id: int | None = None) -> list[dict[str, Any]]:
        query = select(stage_history).order_by(stage_history.c.id)
        if link_id is not None:
            query = query.where(stage_history.c.link_id == link_id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def journal(self, link_id: int | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        query = select(journal).order_by(journal.c.id.desc()).limit(limit)
        if link_id is not None:
            query = query.where(journal.c.link_id == link_id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]


def _put_rows(
    connection: Connection,
    obj: str,
    system: str,
    kind: str,
    records: Sequence[Record],
    links: Mapping[str, LinkState],
    settled: Set[str],
    match: str | None,
) -> None:
    """Replace the inbox rows of ``records`` (leaving out the settled ones).

    A row holding exactly what a record says (read again by a lookback while it waits,
    e.g. for a retry) is kept as it is, with its attempts and retry time.
    """
    payloads = {r.ref.id: record_payload(r) for r in records}
    waiting: set[str] = set()
    for chunk in chunks(list(payloads), 500):
        for row in connection.execute(
            select(inbox.c.record_id, inbox.c.payload, inbox.c.link_id).where(
                inbox.c.system == system, inbox.c.kind == kind, inbox.c.record_id.in_(chunk)
            )
        ):
            link = links.get(row.record_id)
            same_link = (link.id if link else None) == row.link_id
            if payloads[row.record_id] == row.payload and same_link:
                waiting.add(row.record_id)
    records = [r for r in records if r.ref.id not in waiting or r.ref.id in settled]
    ids = [r.ref.id for r in records]
    for chunk in chunks(ids, 500):
        connection.execute(
            delete(inbox).where(
                inbox.c.system == system, inbox.c.kind == kind, inbox.c.record_id.in_(chunk)
            )
        )
    rows = [
        {
            "object": obj,
            "system": r.ref.system,
            "kind": r.ref.kind,
            "record_id": r.ref.id,
            "link_id": links[r.ref.id].id if r.ref.id in links else None,
            "email_key": email_key(r.fields.get(match)) if match else None,
            "pair_key": None
            if r.ref.id in links
            else default_pair_key(
                email_key(r.fields.get(match)) if match else None, r.ref.system, r.ref.id
            ),
            "partner_id": r.partner_id,
            "modified_at": r.modified_at,
            "payload": record_payload(r),
            "attempts": 0,
            "converted": _converted(r),
        }
        for r in records
        if r.ref.id not in settled
    ]
    if rows:
        connection.execute(inbox.insert(), rows)


PARTNER_PREFIXES = ("p:", "q:")
"""The pair keys ``assign_pairs`` gives rows a partner id pairs (marketing's naming the
CRM's, the CRM's naming marketing's)."""


def default_pair_key(email: str | None, system: str, record_id: str) -> str:
    """The pair key of an unlinked row no partner id pairs: its email, else itself."""
    return f"e:{email}" if email else f"r:{system}:{record_id}"


def _after(prefix: str) -> str:
    """The least string above every string starting with ``prefix`` (an index range)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _pair_by_partner(
    connection: Connection, unpaired: Any, obj: str, holder: str, named: str, prefix: str
) -> None:
    """Pair a ``holder`` row naming a ``named`` row by its partner id with that row."""
    other = inbox.alias("other")
    free = unpaired
    names_a_row = (
        select(other.c.id)
        .where(
            other.c.object == obj, other.c.system == named, other.c.record_id == inbox.c.partner_id
        )
        .exists()
    )
    is_named = (
        select(other.c.id)
        .where(
            other.c.object == obj, other.c.system == holder, other.c.partner_id == inbox.c.record_id
        )
        .exists()
    )
    connection.execute(
        update(inbox)
        .where(free, inbox.c.system == named, is_named)
        .values(pair_key=prefix + inbox.c.record_id)
    )
    connection.execute(
        update(inbox)
        .where(free, inbox.c.system == holder, inbox.c.partner_id.is_not(None), names_a_row)
        .values(pair_key=prefix + inbox.c.partner_id)
    )


_MISSING_DATABASE = re.compile(r'database "([^"]+)" does not exist')
"""PostgreSQL's refusal of a connection to a database that is not there (SQLSTATE 3D000,
which psycopg does not attach to a failed connection: only the server's message says it)."""


def revision_of(url: str) -> str | None:
    """The schema revision of the store at ``url``, read without creating or writing
    anything (None: no SQLite file there, or no syncd schema)."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return None
    # An engine of its own, without the pragmas: setting WAL mode is a write.
    probe = create_engine(url, **_engine_options(url))
    try:
        return schema.current(probe)
    finally:
        probe.dispose()


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store (None: not SQLite, or in memory)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


SQLITE_POOL_SIZE = 2
"""Connections to a SQLite file kept open between uses. Each holds its own page cache
(``cache_size``) and statement cache, filled up by the end of a backfill; the threads
that use the store at once (two pulls, the merge, the committer) open the others as
they need them, closed again when handed back (``SQLITE_OVERFLOW``)."""

SQLITE_OVERFLOW = 10
"""Connections to a SQLite file opened beyond ``SQLITE_POOL_SIZE`` while many are in use
(SQLAlchemy's default: 5 kept and 10 more, so no thread waits for one any more than
before)."""

SQLITE_CACHED_STATEMENTS = 16
"""Prepared statements each SQLite connection keeps (the driver's default: 128). A lookup
by a list of ids is a statement of its own for each length of the list (``IN (?, ?, ...)``
with a parameter per id), up to a thousand parameters: 128 of them held 23 MB in one
connection, over and over in each connection of the pool, and grew a backfill's memory
with the number of distinct chunk sizes it met. The few statements run per chunk are
prepared again when they fell out, a cost too small for the benchmark to tell apart."""


SQLITE_BUSY_TIMEOUT_S = 30
"""How long a SQLite connection waits for a lock another connection holds."""


def _engine_options(url: str) -> dict[str, Any]:
    if not url.startswith("sqlite"):
        return {}
    options: dict[str, Any] = {
        "connect_args": {
            "timeout": SQLITE_BUSY_TIMEOUT_S,
            "cached_statements": SQLITE_CACHED_STATEMENTS,
        }
    }
    if sqlite_file(url) is not None:  # in memory: a pool of one connection per thread
        options |= {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_OVERFLOW}
    return options


LOG_BOUND = 64 * 1024 * 1024
"""The size past which a SQLite store's write-ahead log is checkpointed and cut back at
once (``LogBound``): ``journal_size_limit``, the size a checkpoint leaves it at."""

LOG_BOUND_WAIT_MS = 1000
"""How long that checkpoint waits for the readers still on the log (the busy timeout it
runs under, instead of the connection's 30 s): a miss is tried again at the next use."""


class LogBound:
    """Keeps a SQLite store's write-ahead log bounded while syncd writes.

    SQLite's automatic checkpoint (``wal_autocheckpoint``) is passive: it copies the log
    into the database only up to the oldest snapshot a reader still holds, and the log is
    started over from its beginning only once a checkpoint caught up with every reader.
    A backfill's threads (two pulls, the merge, the committer) read and write all the
    time, so at 1,000,000 people that moment never came: the log grew to 8.2 GB, and
    every page read searched its index (syncd's CPU per record doubled). Each time a
    connection that wrote goes back to the pool, the log's size is looked at (one ``stat``); past
    ``LOG_BOUND`` that connection runs ``wal_checkpoint(TRUNCATE)``, which waits (at most
    ``LOG_BOUND_WAIT_MS``) for the readers to move to the newest snapshot, copies the
    whole log and empties it (https://sqlite.org/pragma.html#pragma_wal_checkpoint,
    https://sqlite.org/wal.html#avoiding_excessively_large_wal_files). One thread at a
    time; the others go on."""

    def __init__(self, database: Path, bound: int = LOG_BOUND) -> None:
        self.log = Path(f"{database}-wal").absolute()
        self.bound = bound
        self.truncated = 0
        """Checkpoints that emptied the log."""
        self.missed = 0
        """Checkpoints that found a reader still on the log after the wait."""
        self._busy = threading.Lock()

    def __call__(self, dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is None:
            return
        # Only a connection that wrote since it was last handed back: a reader's checkpoint
        # would have to win the write lock from a busy writer, polling for it.
        changes = getattr(dbapi_connection, "total_changes", None)
        if changes is None or changes == record.info.get("log_bound_changes"):
            return
        record.info["log_bound_changes"] = changes
        try:
            size = self.log.stat().st_size
        except OSError:
            return
        if size <= self.bound or not self._busy.acquire(blocking=False):
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout={LOG_BOUND_WAIT_MS}")
                busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            finally:
                cursor.close()
            if busy:
                self.missed += 1
            else:
                self.truncated += 1
        finally:
            self._busy.release()


_LOG_BOUNDS: WeakKeyDictionary[Engine, LogBound] = WeakKeyDictionary()


def log_bound(engine: Engine) -> LogBound | None:
    """The ``LogBound`` of a SQLite file store's engine (None: another store)."""
    return _LOG_BOUNDS.get(engine)


def _engine(url: str) -> Engine:
    engine = create_engine(url, **_engine_options(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        database = sqlite_file(url)
        if database is not None:
            bound = _LOG_BOUNDS[engine] = LogBound(database)
            event.listen(engine, "checkin", bound)
    return engine


FREE_PAGES_KEPT = 64
"""Unused pages (4 KiB each: 256 KiB) a SQLite store may hold before ``Store.checkpoint``
hands them all back to the file system."""


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # On a new, empty file only (an older store keeps its free pages for reuse, as before;
    # setting it on a store in use would wait for its writer): freed pages can then be
    # handed back without a full VACUUM.
    if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # A cycle writes in chunks of a thousand records. The log is checkpointed every 4,000
    # pages (16 MiB): at 20,000 it reached 697 MiB at 1,000,000 people, a checkpoint
    # rarely finding a moment with no reader behind it. The page cache is per connection (the
    # pull threads, the committer and the merge each hold one): 4 MB each, because at
    # 16 MB the caches filling up grew peak memory by 30 MB at 100,000 people with no
    # gain in speed the benchmark could tell apart from its noise.
    cursor.execute("PRAGMA cache_size=-4096")
    cursor.execute("PRAGMA wal_autocheckpoint=4000")
    # After a checkpoint the log is cut back to this size (64 MiB) rather than kept at its
    # largest; each object's cycle ends with a full checkpoint (``Store.checkpoint``).
    cursor.execute(f"PRAGMA journal_size_limit={LOG_BOUND}")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
