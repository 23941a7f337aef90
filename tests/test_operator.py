"""The operator's commands: syncd errors, errors dismiss, retry and explain.

End to end on a real history (both emulators, the real engine) where the commands'
claims can be checked against what the next cycle does; store-level cases (closed-loop
letters, rows of a pair, filters) on rows inserted directly. SQLite and PostgreSQL both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from connectors.salesforce.emulator.schema import OBJECTS
from syncd.cli import common as cli_common
from syncd.cli.app import app
from syncd.state import operator
from syncd.state.store import Store, aware
from syncd.state.tables import dead_letters, inbox, links
from tests.world import World

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tables as wide as an operator's terminal, so that a value is not folded mid-word."""
    monkeypatch.setattr(cli_common.console, "width", 220)
    monkeypatch.setattr(cli_common.err, "width", 220)
    yield


def syncd(world: World, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(world.box.config_path)])


def answer(world: World, *args: str) -> Any:
    """The JSON of a command that must succeed."""
    result = syncd(world, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def inbox_rows(store: Store, record_id: str) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(inbox).where(inbox.c.record_id == record_id)))


# -- end to end ------------------------------------------------------------------------


def test_errors_lists_a_refused_record_with_its_message_and_next_retry(world: World) -> None:
    bad = world.hubspot.add_contact({"email": "NoLast@example.com", "company": "Acme"})
    world.hubspot.add_contact({"email": "ok@example.com", "lastname": "Fine", "company": "Acme"})
    world.cycle()
    (letter,) = answer(world, "errors")
    assert letter["source"] == f"hubspot:contacts:{bad}" and letter["system"] == "salesforce"
    assert letter["message"] == "Required fields are missing: [LastName]"
    assert (letter["code"], letter["attempts"], letter["state"]) == (
        "REQUIRED_FIELD_MISSING",
        1,
        "open",
    )
    (row,) = inbox_rows(world.store, bad)
    assert letter["next_retry_at"] == str(aware(row.not_before))
    assert letter["change"]["fields"]["email"] == "NoLast@example.com"

    today = datetime.now(UTC).date()
    for option, value, count in (
        ("--system", "hubspot", 0),
        ("--system", "salesforce", 1),
        ("--object", "deal", 0),
        ("--code", "REQUIRED_FIELD_MISSING", 1),
        ("--code", "DUPLICATE_VALUE", 0),
        ("--since", str(today + timedelta(days=1)), 0),
        ("--since", str(today - timedelta(days=1)), 1),
    ):
        assert len(answer(world, "errors", option, value)) == count, (option, value)

    table = syncd(world, "errors")
    assert table.exit_code == 0
    assert "Required fields are missing: [LastName]" in table.output  # brackets kept
    assert f"hubspot:contacts:{bad}" in table.output
    for option, value in (
        ("--since", "last tuesday"),
        ("--system", "hubspt"),
        ("--object", "lead"),
    ):
        assert syncd(world, "errors", option, value).exit_code == 2, (option, value)

    # explain finds a record that never got linked by its email, with what waits for it
    story = answer(world, "explain", "nolast@example.com")
    assert story["links"] == []
    assert [x["id"] for x in story["dead_letters"]] == [letter["id"]]
    (waiting,) = story["inbox"]
    assert (waiting["record_id"], waiting["attempts"]) == (bad, 1)
    assert waiting["not_before"] is not None


def test_retry_requeues_a_dead_letter_and_the_next_cycle_lands_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    title = "Vice President of Developer Relations, " * 4  # 156 characters
    hs = world.hubspot.add_contact({"email": "vp@example.com", "lastname": "Long", "company": "A"})
    world.cycle()
    world.cycle()
    world.hubspot.update_contact(hs, {"jobtitle": title})
    world.cycle()
    (letter,) = answer(world, "errors")
    assert letter["code"] == "STRING_TOO_LONG"
    # The Salesforce admin widens the field; the HubSpot record does not change.
    lead = OBJECTS["Lead"]
    widened = replace(lead.fields["Title"], length=255)
    monkeypatch.setitem(lead.fields, "Title", widened)
    world.cycle()  # not due yet: its delay has not passed
    assert world.person("vp@example.com")["Title"] is None
    assert answer(world, "errors")[0]["attempts"] == 1

    queued = answer(world, "retry", str(letter["id"]))
    assert [x["id"] for x in queued["queued"]] == [letter["id"]]
    (row,) = inbox_rows(world.store, hs)
    assert row.not_before is None and row.attempts == 1  # due now, attempts kept

    world.cycle()
    assert world.person("vp@example.com")["Title"] == title
    assert answer(world, "errors") == []
    (resolved,) = answer(world, "errors", "--all")
    assert resolved["state"] == "resolved" and resolved["resolved_at"] is not None
    again = answer(world, "retry", str(letter["id"]))
    assert again["queued"] == [] and again["skipped"][0]["why"] == "already resolved"


def test_a_dismissed_dead_letter_is_kept_and_not_retried(world: World) -> None:
    first = world.hubspot.add_contact({"email": "a@example.com", "company": "Acme"})
    second = world.hubspot.add_contact({"email": "b@example.com", "company": "Acme"})
    world.cycle()
    ids = {x["source"]: x["id"] for x in answer(world, "errors")}
    one, two = ids[f"hubspot:contacts:{first}"], ids[f"hubspot:contacts:{second}"]

    unknown = syncd(world, "errors", "dismiss", str(one), "999")
    assert unknown.exit_code == 1
    assert len(answer(world, "errors")) == 2  # nothing dismissed
    assert len(inbox_rows(world.store, first)) == 1

    done = syncd(world, "errors", "dismiss", str(one), "--reason", "marketing test data")
    assert done.exit_code == 0, done.output
    assert f"Dismissed {one}" in done.output and "1 inbox row(s)" in done.output
    assert inbox_rows(world.store, first) == []

    # Long after any retry delay (6 h at most), only the other record is tried again.
    real_clock = world.engine.clock
    world.engine.clock = lambda: real_clock() + timedelta(hours=7)
    report = world.cycle()
    assert report.rejected == {"salesforce": 1}
    assert [x["id"] for x in answer(world, "errors")] == [two]
    kept = {x["id"]: x for x in answer(world, "errors", "--all")}
    assert kept[one]["state"] == "dismissed" and kept[one]["attempts"] == 1
    assert kept[one]["dismissed_reason"] == "marketing test data"
    assert kept[two]["attempts"] == 2
    assert "dismissed: marketing test data" in syncd(world, "errors", "--all").output

    skipped = answer(world, "retry", str(one))
    assert skipped["queued"] == [] and "dismissed" in skipped["skipped"][0]["why"]
    every = answer(world, "retry", "--all")
    assert [x["id"] for x in every["queued"]] == [two]
    assert syncd(world, "retry").exit_code == 2
    assert syncd(world, "retry", str(two), "--all").exit_code == 2

    # Options given before the subcommand count (-c names the store to change).
    config = str(world.box.config_path)
    runner = CliRunner()
    before = runner.invoke(app, ["errors", "-c", config, "--json", "dismiss", str(two)])
    assert before.exit_code == 0, before.output
    assert [x["id"] for x in json.loads(before.output)["dismissed"]] == [two]
    filtered = runner.invoke(app, ["errors", "-c", config, "--all", "dismiss", str(two)])
    assert filtered.exit_code == 2


def test_a_dismissed_record_refused_again_is_shown_again(world: World) -> None:
    contact = world.hubspot.add_contact({"email": "c@example.com", "company": "Acme"})
    world.cycle()
    (letter,) = answer(world, "errors")
    assert syncd(world, "errors", "dismiss", str(letter["id"])).exit_code == 0
    assert answer(world, "errors") == [] and world.store.counts()["dead_letters"] == 0
    world.hubspot.update_contact(contact, {"jobtitle": "still no last name"})
    world.cycle()  # read again, refused again: a new problem
    (again,) = answer(world, "errors")
    assert again["id"] == letter["id"] and again["attempts"] == 2
    assert world.store.counts()["dead_letters"] == 1


def test_explain_shows_the_link_base_history_and_the_rule_that_decided(world: World) -> None:
    hs = world.hubspot.add_contact(
        {
            "email": "c@example.com",
            "lastname": "Conflict",
            "company": "Acme",
            "phone": "1",
            "lifecyclestage": "lead",
        }
    )
    world.cycle()
    world.cycle()
    lead_id = world.person("c@example.com")["Id"]
    world.hubspot.update_contact(hs, {"phone": "hs-phone"})
    world.salesforce.update("Lead", lead_id, {"Phone": "sf-phone", "Status": "Working - Contacted"})
    world.cycle()

    story = answer(world, "explain", "C@Example.com")
    (told,) = story["links"]
    link = told["link"]
    assert (link["marketing_id"], link["crm_kind"], link["crm_id"]) == (hs, "Lead", lead_id)
    assert told["base"]["phone"] == "sf-phone" and told["stage"] == "sal"
    moves = [(h["from_stage"], h["to_stage"], h["source_system"]) for h in told["stage_history"]]
    assert moves == [(None, "lead", "hubspot"), ("lead", "sal", "salesforce")]
    (decision,) = [j for j in told["journal"] if j["action"] == "decision"]
    (conflict,) = decision["detail"]["conflicts"]
    assert (conflict["field"], conflict["rule"], conflict["winner"]) == ("phone", "crm_wins", "crm")
    assert "crm_wins kept salesforce's" in decision["text"]
    (to_hubspot,) = [
        j for j in told["journal"] if j["action"] == "update" and j["system"] == "hubspot"
    ]
    assert to_hubspot["text"].startswith("from salesforce: phone = 'sf-phone'")

    for name in (f"salesforce:Lead:{lead_id}", lead_id, f"hubspot:contacts:{hs}", hs):
        assert [x["link"]["id"] for x in answer(world, "explain", name)["links"]] == [link["id"]]
    (newest,) = answer(world, "explain", lead_id, "--journal", "1")["links"][0]["journal"]
    assert newest["id"] == max(j["id"] for j in told["journal"])

    text = syncd(world, "explain", "c@example.com").output
    for shown in ("lead -> sal", f"salesforce:Lead:{lead_id}", "crm_wins kept salesforce's"):
        assert shown in text
    missing = syncd(world, "explain", "nobody@example.com")
    assert missing.exit_code == 1 and "Nothing in the store matches" in missing.output
    assert syncd(world, "explain", "x", "--journal", "0").exit_code == 2


def test_explain_finds_a_converted_lead_by_its_old_id(world: World) -> None:
    world.hubspot.add_contact({"email": "lin@example.com", "lastname": "Ng", "company": "Vandelay"})
    world.cycle()
    lead = world.person("lin@example.com")["Id"]
    ids = world.salesforce.convert_lead(lead, create_opportunity=False)
    world.cycle()
    (told,) = answer(world, "explain", f"salesforce:Lead:{lead}")["links"]
    assert (told["link"]["crm_kind"], told["link"]["crm_id"]) == ("Contact", ids["contactId"])
    (converted,) = [j for j in told["journal"] if j["action"] == "converted"]
    assert (
        converted["text"]
        == f"converted: salesforce:Lead:{lead} -> salesforce:Contact:{ids['contactId']}"
    )


# -- the store alone --------------------------------------------------------------------


def _link(store: Store, marketing_id: str, crm_id: str) -> int:
    with store.engine.begin() as connection:
        connection.execute(
            links.insert(),
            {
                "object": "person",
                "marketing_kind": "contacts",
                "marketing_id": marketing_id,
                "crm_kind": "Lead",
                "crm_id": crm_id,
                "created_at": T0,
                "updated_at": T0,
            },
        )
        return int(connection.scalar(select(links.c.id).where(links.c.crm_id == crm_id)))


def _letter(store: Store, **values: Any) -> int:
    row = {
        "object": "person",
        "system": "salesforce",
        "source": "hubspot:contacts:1",
        "change": orjson.dumps({"op": "update", "fields": {}}).decode(),
        "message": "refused",
        "code": "X",
        "attempts": 1,
        "first_at": T0,
        "last_at": T0,
        **values,
    }
    with store.engine.begin() as connection:
        connection.execute(dead_letters.insert(), row)
        return int(
            connection.scalar(
                select(dead_letters.c.id).where(
                    dead_letters.c.system == row["system"], dead_letters.c.source == row["source"]
                )
            )
        )


def _queued(store: Store, system: str, kind: str, record_id: str, **values: Any) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            inbox.insert(),
            {
                "object": "person",
                "system": system,
                "kind": kind,
                "record_id": record_id,
                "modified_at": T0,
                "payload": "{}",
                "attempts": 2,
                "not_before": T0 + timedelta(hours=1),
                **values,
            },
        )


def test_a_closed_loop_letter_is_retried_by_the_loop_not_queued(store: Store) -> None:
    link = _link(store, "1", "00Q1")
    letter = _letter(store, source=f"loop:{link}", target_id="00Q1")
    (listed,) = operator.letters(store)
    assert listed.by_closed_loop and listed.next_retry(T0) == "each cycle (closed loop)"
    done = operator.retry(store, [letter])
    assert done.queued == [] and [x.id for x in done.not_queued] == [letter]


def test_retry_and_dismiss_act_on_the_rows_of_the_pair(store: Store) -> None:
    link = _link(store, "1", "00Q1")
    _queued(store, "hubspot", "contacts", "1", link_id=link)
    _queued(store, "salesforce", "Lead", "00Q1", link_id=link)
    _queued(store, "hubspot", "contacts", "2", pair_key="e:x@example.com")
    _queued(store, "salesforce", "Lead", "00Q2", pair_key="e:x@example.com")
    to_crm = _letter(store, source="hubspot:contacts:1", system="salesforce")
    to_marketing = _letter(store, source="hubspot:contacts:1", system="hubspot")
    unlinked = _letter(store, source="hubspot:contacts:2", system="salesforce")
    listed = {x.id: x for x in operator.letters(store)}
    assert listed[to_crm].queued == 2 and listed[unlinked].queued == 2
    assert listed[to_crm].next_retry_at == T0 + timedelta(hours=1)

    done = operator.retry(store, [to_crm])
    assert [x.id for x in done.queued] == [to_crm]
    with store.engine.connect() as connection:
        rows = {r.record_id: r for r in connection.execute(select(inbox))}
    assert rows["1"].not_before is None and rows["00Q1"].not_before is None
    assert rows["2"].not_before is not None  # another pair: untouched
    assert rows["1"].attempts == 2

    # Dismissed: the record whose values were refused leaves the queue; the refusing
    # system's own record of a linked pair stays, so that its edits still flow.
    assert operator.dismiss(store, [to_crm], "no", T0).unqueued == 1
    assert inbox_rows(store, "1") == [] and len(inbox_rows(store, "00Q1")) == 1
    # The source row is gone: the pair is found through the link.
    assert operator.dismiss(store, [to_marketing], None, T0).unqueued == 1
    assert inbox_rows(store, "00Q1") == []
    # An unlinked pair leaves whole: one side alone would be created anew.
    assert operator.dismiss(store, [unlinked], None, T0).unqueued == 2
    assert inbox_rows(store, "2") == inbox_rows(store, "00Q2") == []
    again = operator.dismiss(store, [to_crm], "twice", T0)
    assert again.dismissed == [] and again.skipped[0][1] == "already dismissed"
    reasons = {x.id: x.dismissed_reason for x in operator.letters(store, everything=True)}
    assert reasons == {to_crm: "no", to_marketing: None, unlinked: None}


def test_letters_are_newest_first_filtered_and_open_unless_all(store: Store) -> None:
    old = _letter(store, source="hubspot:contacts:1", last_at=T0)
    new = _letter(store, source="hubspot:contacts:2", last_at=T0 + timedelta(days=2))
    other = _letter(
        store, source="salesforce:Lead:00Q3", system="hubspot", code="Y", last_at=T0 + timedelta(1)
    )
    done = _letter(store, source="hubspot:contacts:4", resolved_at=T0)
    assert [x.id for x in operator.letters(store)] == [new, other, old]
    assert [x.id for x in operator.letters(store, system="hubspot")] == [other]
    assert [x.id for x in operator.letters(store, code="X")] == [new, old]
    assert [x.id for x in operator.letters(store, since=T0 + timedelta(hours=1))] == [new, other]
    assert {x.id for x in operator.letters(store, everything=True)} == {old, new, other, done}
    assert operator.retry(store, [old, 99]).missing == [99]
    assert operator.dismiss(store, [99], None, T0).missing == [99]
    assert all(x.state == "open" for x in operator.letters(store))
