"""Hostile values: whatever a user types into either system, one record costs only itself.

Each value arrives intact on the other side or is dead-lettered with a reason that names
the field; every other record of the cycle lands. Runs on both stores.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from syncd.state.tables import links
from syncd.sync import resync
from tests import hostile
from tests.world import World

TO_SF, TO_HS = hostile.DIRECTIONS
LONG_EMAIL = "a" * 309 + "@example.com"  # 321 characters
assert len(LONG_EMAIL) == 321


def _bystanders(world: World, n: int = 3) -> None:
    for i in range(n):
        world.hubspot.add_contact(
            {"email": f"calm{i}@example.com", "lastname": f"Calm {i}", "company": "Acme"}
        )


def _landed(world: World, n: int = 3) -> None:
    for i in range(n):
        assert world.person(f"calm{i}@example.com")["LastName"] == f"Calm {i}"


def _letter(world: World) -> dict[str, Any]:
    (letter,) = world.store.dead_letters()
    return letter


def test_a_321_character_email_stops_no_one(world: World) -> None:
    _bystanders(world)
    bad = world.hubspot.add_contact({"email": LONG_EMAIL, "lastname": "Long", "company": "X"})
    world.cycle()
    _landed(world)
    letter = _letter(world)
    assert letter["source"] == f"hubspot:contacts:{bad}"
    assert "email" in letter["message"] and "320" in letter["message"]
    world.cycle()  # and the next cycle runs too
    _landed(world)


def test_a_typed_partner_id_that_is_no_id_stops_no_one(world: World) -> None:
    _bystanders(world)
    typed = "x" * 70
    bad = world.hubspot.add_contact(
        {
            "email": "typed@example.com",
            "lastname": "Typed",
            "company": "X",
            "syncd_salesforce_id": typed,
        }
    )
    world.cycle()
    _landed(world)
    letter = _letter(world)
    assert letter["source"] == f"hubspot:contacts:{bad}"
    assert "partner id" in letter["message"] and "70 characters" in letter["message"]


EXPECTED = {
    # (value, direction): "intact", or the start of the outcome
    **{(name, way): "intact" for name in hostile.VALUES for way in hostile.DIRECTIONS},
    ("100,000 characters", TO_SF): "dead-lettered by salesforce: STRING_TOO_LONG: Title",
    ("100,000 characters", TO_HS): "cannot be entered in Salesforce: STRING_TOO_LONG",
    ("NUL in a value too long", TO_SF): "dead-lettered by salesforce: STRING_TOO_LONG: Title",
    ("NUL in a value too long", TO_HS): "cannot be entered in Salesforce: STRING_TOO_LONG",
    ("email of 321 characters", TO_SF): "dead-lettered by syncd: SYNCD_KEY_TOO_LONG: email"
    " longer than 320 characters cannot be matched",
    ("email of 321 characters", TO_HS): "cannot be entered in Salesforce: STRING_TOO_LONG",
    ("email with quote, % and _", TO_SF): "intact",
    ("email with quote, % and _", TO_HS): "intact",
    ("email with NUL", TO_SF): "dead-lettered by syncd: SYNCD_KEY_NUL: email",
    ("email with NUL", TO_HS): "cannot be entered in Salesforce: INVALID_EMAIL_ADDRESS",
    (hostile.PARTNER, TO_SF): "dead-lettered by syncd: SYNCD_BAD_PARTNER_ID: partner id"
    " 'xxxxxxxxxxxxxxxxxxxxxxxx…' is not a salesforce id: 70 characters, ids have 15 or 18",
    (hostile.PARTNER, TO_HS): "dead-lettered by syncd: SYNCD_BAD_PARTNER_ID: partner id"
    " \"' OR Name != '\" is not a hubspot id: ids are digits only",
}


def test_hostile_values_arrive_intact_or_are_dead_lettered_alone(world: World) -> None:
    rows = hostile.run(world)  # bystanders of the same cycles land (asserted inside)
    outcomes = {(r.value, r.direction): r.outcome for r in rows}
    assert set(outcomes) == set(EXPECTED)
    wrong = {
        key: outcome
        for key, outcome in outcomes.items()
        if not outcome.startswith(EXPECTED[key]) or (EXPECTED[key] == "intact" != outcome)
    }
    assert wrong == {}
    letters = world.store.dead_letters()
    assert all("\x00" not in x["message"] for x in letters)  # both stores say the same
    world.cycle()  # and the cycles after go on


def _cli(world: World, *args: str) -> Any:
    from typer.testing import CliRunner

    from syncd.cli.app import app

    return CliRunner().invoke(app, [*args, "--config", str(world.box.config_path)])


def test_explain_with_a_very_long_argument_is_one_clear_line(world: World) -> None:
    _bystanders(world, 1)
    world.cycle()
    for argument in ("x" * 100_000, "a" * 100_000 + "@example.com"):
        answer = _cli(world, "explain", argument)
        assert answer.exit_code == 2, answer.output
        assert answer.exception is None or isinstance(answer.exception, SystemExit)
        (line,) = answer.output.strip().splitlines()
        assert line.startswith("syncd explain: ") and "too long to name a record" in line


def test_explain_finds_a_record_refused_for_its_321_character_email(world: World) -> None:
    bad = world.hubspot.add_contact({"email": LONG_EMAIL, "lastname": "Long", "company": "X"})
    world.cycle()
    answer = _cli(world, "explain", LONG_EMAIL.upper(), "--json")
    assert answer.exit_code == 0, answer.output
    assert f"hubspot:contacts:{bad}" in answer.output and "SYNCD_KEY_TOO_LONG" in answer.output


def test_a_failed_resync_now_is_one_clear_line(world: World) -> None:
    _bystanders(world, 1)
    world.cycle()
    world.hubspot.fail_next(401, count=1000)
    # A process of its own: the logging a command sets up writes to the real stderr.
    syncd = Path(sys.executable).parent / "syncd"
    command = [str(syncd), "resync", "--email", "calm0@example.com", "--now"]
    answer = subprocess.run(
        [*command, "--config", str(world.box.config_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 1
    output = answer.stdout + answer.stderr
    assert "Traceback" not in output, output
    # one line of what happened, then what to check and what HubSpot said (syncd.errors)
    line, check, said = output.strip().splitlines()
    assert "resync 1 failed" in line and "hubspot" in line
    assert check.strip().startswith("check HUBSPOT_ACCESS_TOKEN")
    assert said.strip().startswith("hubspot said: ")


def test_the_daemon_logs_a_failed_resync_in_one_line(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    _bystanders(world, 1)
    world.cycle()
    world.hubspot.fail_next(401, count=1000)
    resync.enqueue(world.store, "person", {"emails": ["calm0@example.com"]}, datetime.now(UTC))
    with caplog.at_level(logging.INFO, logger="syncd.resync"):
        assert resync.drain(world.engine) == 1
    (record,) = caplog.records
    assert record.exc_info is None and "resync 1 failed: hubspot:" in record.getMessage()
    (request,) = resync.requests(world.store)
    assert request["state"] == "failed" and "401" in request["result"]["error"]


def test_a_converted_lead_whose_contact_holds_no_id_waits_alone(world: World) -> None:
    contact = world.hubspot.add_contact(
        {"email": "conv@example.com", "lastname": "Conv", "company": "Acme"}
    )
    world.cycle()
    lead = world.person("conv@example.com")["Id"]
    ids = world.salesforce.convert_lead(lead, create_opportunity=False)
    typed = "y" * 70  # a user types over the partner id the contact got from the lead
    world.salesforce.update("Contact", ids["contactId"], {"Syncd_HubSpot_Id__c": typed})
    _bystanders(world)
    world.cycle()
    _landed(world)
    letter = _letter(world)
    assert letter["source"] == f"salesforce:Contact:{ids['contactId']}"
    assert letter["code"] == "SYNCD_BAD_PARTNER_ID" and "not a hubspot id" in letter["message"]
    world.salesforce.update("Contact", ids["contactId"], {"Syncd_HubSpot_Id__c": contact})
    world.cycle()
    assert world.store.dead_letters() == []  # read again, taken in: the letter is resolved
    with world.store.engine.connect() as connection:
        crm_ids = set(connection.scalars(select(links.c.crm_id)))
    assert ids["contactId"] in crm_ids and lead not in crm_ids  # the link moved at last


def test_hubspot_takes_65536_characters_through_the_api_and_any_length_from_a_form() -> None:
    from connectors.hubspot.emulator.schema import VALUE_LIMIT, check_values

    assert VALUE_LIMIT == 65_536
    assert check_values({"jobtitle": "x" * VALUE_LIMIT})[1] is None
    problem = check_values({"jobtitle": "x" * (VALUE_LIMIT + 1)})[1]
    assert problem is not None and "at most 65536" in problem.message
    assert check_values({"jobtitle": "x" * 100_000}, limit=None)[1] is None
