"""A bounded, cheaper store: the journal pruned past its retention (but never what syncd
still reads), a person's company as an indexed column (migrated for existing stores), and
SQLite's write-ahead log cut back after each cycle. On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, create_engine, delete, func, insert, inspect, select

from syncd.state.explain import CONVERSIONS
from syncd.state.links import KEPT_ACTIONS
from syncd.state.store import MIGRATIONS, Store, log_bound
from syncd.state.tables import bases, inbox, journal, journal_action, links
from tests.world import World

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _entry(at: datetime, action: str, n: int) -> dict[str, object]:
    return {
        "at": at,
        "cycle_id": "c1",
        "link_id": n,
        "system": "hubspot",
        "record_id": str(n),
        "action": action,
        "detail": "{}",
    }


def _queued(record_ids: list[str]) -> list[dict[str, object]]:
    """Inbox rows of HubSpot contacts, 2,000 bytes of payload each."""
    return [
        {
            "object": "person",
            "system": "hubspot",
            "kind": "contacts",
            "record_id": record_id,
            "modified_at": NOW,
            "payload": "x" * 2000,
            "attempts": 0,
        }
        for record_id in record_ids
    ]


def _actions(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(journal.c.action, journal.c.record_id)).all()
    return sorted((str(a), str(r)) for a, r in rows)


def test_the_journal_is_pruned_past_its_retention_but_not_what_syncd_reads(
    store: Store,
) -> None:
    old, recent = NOW - timedelta(days=91), NOW - timedelta(days=89)
    rows = [_entry(old, "create", 1), _entry(old, "update", 2), _entry(recent, "create", 3)]
    rows += [_entry(old, action, 10 + i) for i, action in enumerate(KEPT_ACTIONS)]
    with store.engine.begin() as connection:
        connection.execute(insert(journal), rows)
    assert store.prune_journal(NOW - timedelta(days=90)) == 2
    assert _actions(store) == sorted(
        [("create", "3")] + [(action, str(10 + i)) for i, action in enumerate(KEPT_ACTIONS)]
    )
    assert store.prune_journal(NOW - timedelta(days=90)) == 0


def test_a_prune_deletes_a_bounded_batch_oldest_first(store: Store) -> None:
    rows = [_entry(NOW - timedelta(days=200 - n), "update", n) for n in range(5)]
    with store.engine.begin() as connection:
        connection.execute(insert(journal), rows)
    assert store.prune_journal(NOW, batch=2) == 2
    assert [r for _, r in _actions(store)] == ["2", "3", "4"]


def test_people_of_a_company_are_found_by_the_company_column(world: World) -> None:
    hubspot = world.hubspot
    acme, globex = hubspot.seed_companies(2)
    ids = hubspot.seed_contacts(4)
    for contact, company in zip(ids, (acme, acme, globex, None), strict=True):
        if company is not None:
            hubspot.associate("contacts", contact, "companies", company)
    world.cycle()
    with world.store.engine.connect() as connection:
        found = connection.execute(select(links.c.object, links.c.marketing_id, links.c.id))
        link = {(obj, native): int(link_id) for obj, native, link_id in found}
    person = [link["person", contact] for contact in ids]
    people = world.store.people_of_company(str(link["company", acme]))
    assert people == sorted(person[:2])
    assert world.store.people_of_company(str(link["company", globex])) == [person[2]]
    assert world.store.people_of_company("no such company") == []


def test_the_migration_fills_the_company_of_existing_people(store_url: str) -> None:
    engine = create_engine(store_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        for n, account in ((1, "5"), (2, None), (3, "5")):
            fields = {"email": f"p{n}@x.com", **({"account": account} if account else {})}
            link_id = connection.execute(
                insert(links).values(
                    object="person", marketing_id=str(n), created_at=NOW, updated_at=NOW
                )
            ).inserted_primary_key[0]
            connection.exec_driver_sql(
                "INSERT INTO bases (link_id, fields, synced_at) VALUES (%s, %s, %s)"
                if engine.dialect.name != "sqlite"
                else "INSERT INTO bases (link_id, fields, synced_at) VALUES (?, ?, ?)",
                (link_id, orjson.dumps(fields).decode(), NOW),
            )
    engine.dispose()
    store = Store.open(store_url)
    try:
        with store.engine.connect() as connection:
            found = dict(connection.execute(select(bases.c.link_id, bases.c.company_link)).all())
        assert sorted(found.values(), key=str) == sorted(["5", "5", None], key=str)
        assert len(store.people_of_company("5")) == 2
    finally:
        store.close()


def test_a_cycle_keeps_the_company_column_in_step_and_cuts_the_log_back(world: World) -> None:
    world.hubspot.seed_contacts(300)
    world.cycle()
    with world.store.engine.connect() as connection:
        people = connection.scalar(
            select(func.count()).select_from(links).where(links.c.object == "person")
        )
    assert people == 300
    database = world.store.engine.url.database
    if world.store.engine.dialect.name == "sqlite" and database:
        wal = Path(database + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0  # truncated after the cycle


def test_the_engine_prunes_once_an_hour_while_little_is_due(world: World) -> None:
    now = [NOW]
    world.engine.clock = lambda: now[0]
    old = NOW - timedelta(days=100)
    with world.store.engine.begin() as connection:
        connection.execute(insert(journal), [_entry(old, "update", 1)])
    assert world.cycle().pruned == 1
    with world.store.engine.begin() as connection:
        connection.execute(insert(journal), [_entry(old, "update", 2)])
    now[0] += timedelta(minutes=59)
    assert world.cycle().pruned == 0  # searched less than an hour ago
    now[0] += timedelta(minutes=2)
    assert world.cycle().pruned == 1


def test_times_are_integers_on_sqlite_and_older_text_times_are_converted(store_url: str) -> None:
    engine = create_engine(store_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        # what SQLAlchemy's DateTime wrote on SQLite before 0006, and a timestamptz on PG
        at = "2026-12-04 12:00:00.250000" if sqlite else NOW + timedelta(milliseconds=250)
        mark = "?" if sqlite else "%s"
        connection.exec_driver_sql(
            "INSERT INTO journal (at, cycle_id, action, detail)"
            f" VALUES ({mark}, 'c', 'update', '{{}}')",
            (at,),
        )
    engine.dispose()
    store = Store.open(store_url)
    try:
        store.journal_rows([{**_entry(NOW, "update", 2), "detail": {}, "cycle_id": "c2"}], now=NOW)
        with store.engine.connect() as connection:
            read = connection.execute(select(journal.c.at).order_by(journal.c.id)).scalars().all()
            typeof = "SELECT DISTINCT typeof(at) FROM journal"
            kinds = connection.exec_driver_sql(typeof).scalars().all() if sqlite else ["integer"]
            indexes = {ix["name"] for ix in inspect(connection).get_indexes("stage_history")}
        assert read == [NOW + timedelta(milliseconds=250), NOW]
        assert all(a.utcoffset() == timedelta(0) for a in read)
        assert kinds == ["integer"]
        assert "ix_stage_history_link" not in indexes
        cutoff = NOW + timedelta(milliseconds=100)  # compared as instants, not as text
        with store.engine.connect() as connection:
            later = connection.scalars(select(journal.c.cycle_id).where(journal.c.at > cutoff))
            assert list(later) == ["c"]
    finally:
        store.close()


def test_pages_the_inbox_freed_go_back_at_the_checkpoint(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        with store.engine.begin() as connection:
            connection.execute(insert(inbox), _queued([str(n) for n in range(2000)]))
        with store.engine.begin() as connection:
            connection.execute(delete(inbox))

        def pages(name: str) -> int:
            with store.engine.connect() as connection:
                return int(connection.exec_driver_sql(f"PRAGMA {name}").scalar() or 0)

        assert pages("auto_vacuum") == 2  # incremental, set when the file was made
        before = pages("page_count")
        assert pages("freelist_count") > 1000 and before > 1000
        store.checkpoint()
        assert pages("freelist_count") == 0
        assert pages("page_count") < before - 1000
        assert (tmp_path / "syncd.db").stat().st_size < 200 * 4096
    finally:
        store.close()


def test_a_base_keeps_no_blank_values(world: World) -> None:
    world.hubspot.seed_contacts(5)
    world.cycle()
    with world.store.engine.connect() as connection:
        stored = connection.scalars(select(bases.c.fields)).all()
    assert len(stored) == 5
    assert all(None not in orjson.loads(text).values() for text in stored)


def _index_sql(connection: Connection) -> str:
    if connection.dialect.name == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE name = 'ix_journal_action_record'"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_journal_action_record'"
    return str(connection.exec_driver_sql(query).scalar_one())


def _plan(connection: Connection, statement: Any) -> str:
    sql = str(statement.compile(connection, compile_kwargs={"literal_binds": True}))
    if connection.dialect.name == "sqlite":
        return str(connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all())
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table: force it
    return str(connection.exec_driver_sql(f"EXPLAIN {sql}").all())


def test_the_journal_index_by_record_holds_only_the_actions_looked_up(store_url: str) -> None:
    engine = create_engine(store_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010_assoc")
        assert "closed_loop" not in _index_sql(connection)  # every action, before
        connection.execute(
            insert(journal),
            [
                {**_entry(NOW, "create", 1), "record_id": "006A"},
                {**_entry(NOW, "converted_deal", 2), "record_id": "006A"},
                {**_entry(NOW, "converted_deal", 3), "record_id": "006B"},
            ],
        )
    engine.dispose()
    store = Store.open(store_url)
    try:
        assert store.converted_from("006A") == [2]  # not the create of the same id
        with store.engine.begin() as connection:
            assert "closed_loop" in _index_sql(connection)
            assert "converted_deal" in _index_sql(connection)
            lookup = select(journal.c.link_id).where(
                journal_action("converted_deal"), journal.c.record_id == "006A"
            )
            assert "ix_journal_action_record" in _plan(connection, lookup)
            assert "ix_journal_action_record" in _plan(
                connection,
                select(journal.c.link_id).where(
                    journal_action(*CONVERSIONS), journal.c.record_id == "006A"
                ),
            )
    finally:
        store.close()
    with pytest.raises(ValueError, match="create"):
        journal_action("create")


def test_the_log_is_cut_back_while_readers_never_stop(tmp_path: Path) -> None:
    """Readers in other threads always holding a snapshot (as a backfill's pulls, merge
    and committer do) keep SQLite's passive checkpoints from starting the log over; the
    store's own checkpoint, past its bound, waits them out and empties the log."""
    store = Store.open(f"sqlite:///{tmp_path / 'syncd.db'}")
    bound = log_bound(store.engine)
    assert bound is not None
    bound.bound = 512 * 1024
    wal = tmp_path / "syncd.db-wal"
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            with store.engine.connect() as connection:
                connection.exec_driver_sql("BEGIN")
                connection.exec_driver_sql("SELECT count(*) FROM inbox").scalar()
                time.sleep(0.003)  # a snapshot held a while, as a chunk's reads do
                connection.exec_driver_sql("COMMIT")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    sizes = []
    try:
        for n in range(60):  # 60 transactions of about 160 KiB: 10 MB in all
            with store.engine.begin() as connection:
                connection.execute(insert(inbox), _queued([f"{n}-{i}" for i in range(80)]))
            sizes.append(wal.stat().st_size)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        store.close()
    assert bound.truncated > 0
    # Past the bound by a few transactions at most: the checkpoint may have to wait for
    # the writer between two of them. Unbounded, the passive checkpoints would let the
    # log reach 16 MiB (wal_autocheckpoint) before even trying.
    assert max(sizes) < 8 * 1024 * 1024, max(sizes)


def test_only_a_sqlite_file_store_bounds_its_log(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        bound = log_bound(store.engine)
        assert (bound is not None) == store_url.startswith("sqlite")
    finally:
        store.close()
