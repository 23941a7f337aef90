"""Manual resyncs: the records are read again, whatever the cursors say, and merged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from typer.testing import CliRunner, Result

from syncd.cli.app import app
from syncd.daemon.lease import lease_for
from syncd.model import Cursor
from syncd.state.tables import stage_history
from syncd.sync import resync
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


def _cli(world: World, *args: str) -> Result:
    return CliRunner().invoke(app, ["resync", *args, "-c", str(world.box.config_path)])


def test_conflicting_selectors_are_refused_and_nothing_is_queued(world: World) -> None:
    _ada(world)
    for args, said in (
        (("--email", "ada@example.com", "--all"), "--email name records, --all select"),
        (("--id", "1001", "--since", "2026-01-01"), "--id name records, --since select"),
        (("--all", "--until", "2026-01-01"), "--all reads every record and --until"),
        (("--since", "2026-02-01", "--until", "2026-01-01"), "is not before --until"),
        (("--email", "ada@example.com", "--now", "--wait"), "give one"),
        (("--list", "--email", "ada@example.com"), "--list shows the requests"),
    ):
        answer = _cli(world, *args)
        assert answer.exit_code == 2, (args, answer.output)
        assert said in " ".join(answer.output.replace("│", " ").split()), answer.output
    assert resync.requests(world.store) == []


def test_a_selector_naming_nothing_says_so(world: World) -> None:
    _ada(world)
    nobody = _cli(world, "--email", "nobody@example.com")
    assert nobody.exit_code == 1, nobody.output
    assert "no person linked with email nobody@example.com" in nobody.output
    assert "matches nothing" in nobody.output
    unknown = _cli(world, "--id", "pipedrive:person:7")
    assert unknown.exit_code == 1 and "no system 'pipedrive'" in unknown.output
    assert resync.requests(world.store) == []  # nothing queued
    # one of two named: the other is said, the request goes ahead
    some = _cli(world, "--email", "nobody@example.com", "--email", "ada@example.com", "--now")
    assert some.exit_code == 0, some.output
    assert "no person linked with email nobody@example.com" in some.output
    # a range is read from the systems: one holding no change matches nothing, after the run
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    empty = _cli(world, "--since", future, "--now")
    assert empty.exit_code == 1, empty.output
    assert "matched nothing: no person was read for changed" in empty.output


def test_without_a_daemon_the_request_is_said_to_wait(world: World) -> None:
    _ada(world)
    queued = _cli(world, "--email", "ada@example.com")
    assert queued.exit_code == 0, queued.output
    said = " ".join(queued.output.split())
    assert "no daemon holds the lease" in said and "--now" in said and "queued" in said
    lease = lease_for(world.store, timedelta(seconds=30))
    assert lease.acquire()  # a daemon now holds it: no warning
    held = _cli(world, "--email", "ada@example.com")
    assert held.exit_code == 0 and "no daemon holds the lease" not in held.output
    lease.release()
    here = _cli(world, "--email", "ada@example.com", "--now")
    assert here.exit_code == 0 and "no daemon holds the lease" not in here.output
