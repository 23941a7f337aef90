"""Manual resyncs: the records are read again, whatever the cursors say, and merged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from syncd import resync
from syncd.cli import app
from syncd.model import Cursor
from syncd.state.tables import stage_history
from tests.world import World


def _blind(world: World) -> None:
    """Every cursor a day ahead: the scans now miss whatever changes (a lost webhook, a
    clock gone wrong); only a resync can find it."""
    ahead = Cursor(datetime.now(UTC) + timedelta(days=1))
    kinds = {"hubspot": ["contacts", "companies", "deals"]}
    kinds["salesforce"] = ["Lead", "Contact", "Account", "Opportunity"]
    with world.store.engine.begin() as connection:
        for system, names in kinds.items():
            for kind in names:
                world.store.save_cursor(connection, system, kind, ahead)


def _ada(world: World) -> str:
    contact = world.hubspot.add_contact(
        {"email": "ada@example.com", "lastname": "Lovelace", "company": "Engines"}
    )
    world.cycle()
    world.cycle()  # the Salesforce lead's default status comes back as HubSpot's stage
    return contact


def test_a_missed_change_is_found_by_email_and_merged(world: World) -> None:
    contact = _ada(world)
    _blind(world)
    world.hubspot.update_contact(contact, {"jobtitle": "Countess"})
    assert world.cycle().updated == {}  # the scan does not see it
    assert world.person("ada@example.com").get("Title") in (None, "")
    request = resync.enqueue(
        world.store, "person", {"emails": ["ADA@example.com"]}, datetime.now(UTC)
    )
    assert resync.drain(world.engine) == 1
    assert world.person("ada@example.com")["Title"] == "Countess"
    (done,) = resync.requests(world.store)
    assert (done["id"], done["state"]) == (request, "done")
    assert done["result"]["read"] == {"hubspot": 1, "salesforce": 1}
    assert done["result"]["updated"] == {"salesforce": 1}
    assert resync.drain(world.engine) == 0  # nothing left queued


def test_a_record_by_either_systems_id_and_one_not_linked_yet(world: World) -> None:
    _ada(world)
    lead = world.person("ada@example.com")["Id"]
    _blind(world)
    world.salesforce.update("Lead", lead, {"Phone": "+44 20 7946 0000"})
    stray = world.hubspot.add_contact(
        {"email": "grace@example.com", "lastname": "Hopper", "company": "Navy"}
    )
    world.cycle()
    assert world.contact("ada@example.com").get("phone") in (None, "")
    selector = {"ids": [lead, f"hubspot:contacts:{stray}"]}
    resync.enqueue(world.store, "person", selector, datetime.now(UTC))
    resync.drain(world.engine)
    assert world.contact("ada@example.com")["phone"] == "+44 20 7946 0000"
    assert world.person("grace@example.com")["LastName"] == "Hopper"  # created once
    resync.enqueue(world.store, "person", selector, datetime.now(UTC))
    resync.drain(world.engine)
    assert (
        len([r for r in world.salesforce.records("Lead") if r["Email"] == "grace@example.com"]) == 1
    )


def test_everything_again_writes_nothing_and_adds_no_history(world: World) -> None:
    _ada(world)
    world.salesforce.add("Lead", {"Email": "kat@example.com", "LastName": "J", "Company": "N"})
    world.cycle()
    world.cycle()
    with world.store.engine.connect() as connection:
        history = list(connection.execute(select(stage_history)))
    runner = CliRunner()
    config = str(world.box.config_path)
    answer = runner.invoke(app, ["resync", "--all", "--now", "--json", "-c", config])
    assert answer.exit_code == 0, answer.output
    done = json.loads(answer.output)
    assert done["state"] == "done" and done["result"]["read"] == {"hubspot": 2, "salesforce": 2}
    assert done["result"]["created"] == {} and done["result"]["updated"] == {}
    with world.store.engine.connect() as connection:
        assert list(connection.execute(select(stage_history))) == history
    listed = runner.invoke(app, ["resync", "--list", "--json", "-c", config])
    assert [r["state"] for r in json.loads(listed.output)] == ["done"]
    empty = runner.invoke(app, ["resync", "-c", config])
    assert empty.exit_code == 2 and "--email" in empty.output
