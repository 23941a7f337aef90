"""One store test suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, insert, select, update

from syncd.model import Change, Cursor, Outcome
from syncd.state.commit import commit_chunk
from syncd.state.store import MIGRATIONS, Store, record_from_row, record_payload
from syncd.state.tables import inbox
from syncd.sync.reconcile import LinkState, plan_pair
from tests.factories import T0, hubspot, rules, salesforce

HS_MQL = {"lifecyclestage": "marketingqualifiedlead"}


def test_open_migrates_to_the_newest_schema(store: Store) -> None:
    current, newest = store.schema_version()
    assert current == newest == "0011_journal_index"
    assert store.counts()["links"] == 0


def test_a_store_of_the_first_schema_upgrades_keeping_its_rows(store_url: str) -> None:
    engine = create_engine(store_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    record = hubspot("7", 1, HS_MQL, email="kept@x.com")
    old = Store(engine)
    old_columns = [c for c in inbox.c if c.name != "converted"]
    with engine.begin() as connection:
        connection.execute(
            insert(inbox).values(
                object="person",
                system="hubspot",
                kind="contacts",
                record_id="7",
                modified_at=record.modified_at,
                payload=record_payload(record),
                attempts=0,
            )
        )
        assert connection.execute(select(*old_columns)).one().record_id == "7"
    old.close()
    store = Store.open(store_url)
    try:
        assert store.schema_version()[0] == "0011_journal_index"
        with store.engine.connect() as connection:
            (row,) = connection.execute(select(inbox)).all()
        assert record_from_row(row) == record and row.converted is None
    finally:
        store.close()


def test_a_page_is_kept_with_its_cursor(store: Store) -> None:
    records = [hubspot(str(i), i, HS_MQL, email=f"p{i}@x.com") for i in range(3)]
    cursor = Cursor().advance(records)
    store.stage("person", "hubspot", "contacts", records, cursor, links={})
    assert store.cursor("hubspot", "contacts") == cursor
    assert store.counts()["inbox"] == 3
    # the same records again replace, not add
    store.stage("person", "hubspot", "contacts", records[:1], cursor, links={})
    assert store.counts()["inbox"] == 3
    # a record standing at its base takes its older copy out and leaves nothing
    store.stage("person", "hubspot", "contacts", records[:1], cursor, links={}, settled={"0"})
    assert store.counts()["inbox"] == 2


def test_pairs_form_by_partner_id_then_email(store: Store) -> None:
    store.stage(
        "person",
        "hubspot",
        "contacts",
        [
            hubspot("1", 0, email="a@x.com"),
            hubspot("2", 0, email="b@x.com"),
            hubspot("3", 0, email=None),
            hubspot("4", 0, partner="00Q0-not-read", email="d@x.com"),
            hubspot("5", 0, partner="00Q6", email="e@x.com"),
        ],
        Cursor(),
        links={},
    )
    store.stage(
        "person",
        "salesforce",
        "Lead",
        [
            salesforce("00Q9", 0, partner="1", email="other@x.com"),
            salesforce("00Q8", 0, email="B@X.com"),
            salesforce("00Q7", 0, email="d@x.com"),
            salesforce("00Q6", 0, email="changed@x.com"),
        ],
        Cursor(),
        links={},
    )
    store.assign_pairs("person", "hubspot", "salesforce")
    groups = [
        g for chunk in store.inbox_groups("person", linked=False, now=T0, size=2) for g in chunk
    ]
    as_ids = sorted(sorted(row.record_id for row in group) for group in groups)
    # a partner id wins over email; one naming a record not read falls back to email
    assert as_ids == [["00Q6", "5"], ["00Q7", "4"], ["00Q8", "2"], ["00Q9", "1"], ["3"]]


def _groups(store: Store) -> list[list[str]]:
    chunks = store.inbox_groups("person", linked=False, now=T0, size=10)
    return sorted(sorted(row.record_id for row in group) for chunk in chunks for group in chunk)


def test_a_pair_by_partner_id_falls_back_when_the_partner_leaves_the_inbox(
    store: Store,
) -> None:
    store.stage(
        "person", "hubspot", "contacts", [hubspot("1", 0, email="a@x.com")], Cursor(), links={}
    )
    lead = salesforce("00Q1", 0, partner="1", email="other@x.com")
    store.stage("person", "salesforce", "Lead", [lead], Cursor(), links={})
    store.assign_pairs("person", "hubspot", "salesforce")
    assert _groups(store) == [["00Q1", "1"]]
    # the lead no longer names the contact (read again): each is keyed by its own email
    moved = salesforce("00Q1", 1, email="a@x.com")
    store.stage("person", "salesforce", "Lead", [moved], Cursor(), links={})
    store.assign_pairs("person", "hubspot", "salesforce")
    assert _groups(store) == [["00Q1", "1"]]  # by email now
    other = salesforce("00Q1", 2, email="z@x.com")
    store.stage("person", "salesforce", "Lead", [other], Cursor(), links={})
    store.assign_pairs("person", "hubspot", "salesforce")
    assert _groups(store) == [["00Q1"], ["1"]]
    # a row queued without a key (by an older syncd) gets one
    with store.engine.begin() as connection:
        connection.execute(update(inbox).values(pair_key=None))
    store.assign_pairs("person", "hubspot", "salesforce")
    assert _groups(store) == [["00Q1"], ["1"]]


def test_a_committed_pair_becomes_a_link_with_base_and_history(store: Store) -> None:
    m = hubspot("1", 0, HS_MQL, email="a@x.com", first_name="Ann")
    store.stage("person", "hubspot", "contacts", [m], Cursor(), links={})
    store.assign_pairs("person", "hubspot", "salesforce")
    rows = next(iter(store.inbox_groups("person", linked=False, now=T0, size=10)))[0]
    plan = plan_pair("new:1", LinkState(None, m.ref, None), m, None, rules())
    outcomes = {("salesforce", "new:1"): Outcome("new:1", True, "00Q1", created=True)}
    for _ in range(2):  # a replay must not duplicate the history
        commit_chunk(store, "person", "c1", [(plan, rows)], outcomes, "hubspot", "salesforce", T0)
    link = store.find_link("person", "crm", "00Q1")
    assert link is not None and link.marketing is not None and link.marketing.id == "1"
    assert link.base["first_name"] == "Ann" and link.stage == "mql"
    assert [h["to_stage"] for h in store.stage_history()] == ["mql"]
    assert store.counts()["inbox"] == 0


def test_a_rejected_write_is_dead_lettered_and_kept_for_retry(store: Store) -> None:
    m = hubspot("1", 0, HS_MQL, email="bad@x.com")
    store.stage("person", "hubspot", "contacts", [m], Cursor(), links={})
    store.assign_pairs("person", "hubspot", "salesforce")
    rows = next(iter(store.inbox_groups("person", linked=False, now=T0, size=10)))[0]
    plan = plan_pair("new:1", LinkState(None, m.ref, None), m, None, rules())
    assert plan.crm_change == Change(
        "create",
        "Lead",
        "new:1",
        None,
        {"email": "bad@x.com"},
        {"Status": "Marketing Qualified"},
        "1",
    )
    rejected = Outcome(
        "new:1",
        False,
        error="Required fields are missing: [LastName]",
        code="REQUIRED_FIELD_MISSING",
    )
    commit_chunk(
        store,
        "person",
        "c1",
        [(plan, rows)],
        {("salesforce", "new:1"): rejected},
        "hubspot",
        "salesforce",
        T0,
    )
    (letter,) = store.dead_letters()
    assert letter["message"] == "Required fields are missing: [LastName]"
    assert letter["attempts"] == 1 and letter["system"] == "salesforce"
    assert store.counts()["inbox"] == 1
    # not due again until its delay has passed
    assert list(store.inbox_groups("person", linked=False, now=T0, size=10)) == []
    later = T0 + timedelta(hours=1)
    assert len(list(store.inbox_groups("person", linked=False, now=later, size=10))) == 1


def test_the_early_merge_checks_each_group_through_the_index(tmp_path: Path) -> None:
    """Groups holding a record of one system are found group by group through the
    (object, pair key) index, not by building the list of every such key for each chunk
    (quadratic in the inbox: minutes at 1,000,000 people)."""
    store = Store.open(f"sqlite:///{tmp_path / 'syncd.db'}")  # a SQLite query plan
    plans: list[str] = []

    def explain(_conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "held" in statement:
            found = cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            plans.append(str(found.fetchall()))

    store.stage(
        "person", "hubspot", "contacts", [hubspot("1", 0, email="a@x.com")], Cursor(), links={}
    )
    event.listen(store.engine, "before_cursor_execute", explain)
    try:
        chunks = store.inbox_groups("person", linked=False, now=T0, size=10, holding="hubspot")
        assert [len(chunk) for chunk in chunks] == [1]
    finally:
        event.remove(store.engine, "before_cursor_execute", explain)
        store.close()
    assert plans and all("LIST SUBQUERY" not in plan for plan in plans)
    assert all("ix_inbox_pair (object=? AND pair_key=?)" in plan for plan in plans)
