"""The gate on the CRM end to end: the real clients over HTTP(S) against both emulators,
on SQLite and PostgreSQL. Held back, counted, explained, then let through by a change
the incremental scan reads, or by a resync; linked people sync whatever the gate says."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from syncd import registry
from syncd.cli.app import app
from syncd.config.load import load_config
from syncd.harness import sandbox
from syncd.model import Cursor
from syncd.retry import RetryPolicy
from syncd.state.store import Store
from syncd.sync import resync
from syncd.sync.engine import Engine
from tests.factories import syncd_cli
from tests.world import World

STAGE_AND_SCORE = {"min_stage": "mql", "min_score": 40}
FLAG = {"property_equals": {"sync_to_crm": "true"}}


def _world(tmp_path: Path, store_url: str, gate: dict[str, Any]) -> Iterator[World]:
    box = sandbox.start(
        tmp_path / "config", sample=False, store=store_url, overrides={"gate": gate}
    )
    config = load_config(box.config_path)
    store = Store.open(config.store_url)
    policy = RetryPolicy(attempts=4, initial=0.01, maximum=5, sleep=lambda _: None)
    marketing = registry.connector(config, "hubspot", policy)
    crm = registry.connector(config, "salesforce", policy)
    engine = Engine.for_config(config, store, marketing, crm)
    try:
        yield World(box, config, store, engine, [])
    finally:
        marketing.close()
        crm.close()
        store.close()
        box.stop()


@pytest.fixture
def staged(tmp_path: Path, store_url: str) -> Iterator[World]:
    yield from _world(tmp_path, store_url, STAGE_AND_SCORE)


@pytest.fixture
def flagged(tmp_path: Path, store_url: str) -> Iterator[World]:
    yield from _world(tmp_path, store_url, FLAG)


def _leads(world: World, email: str) -> list[dict[str, Any]]:
    return [r for r in world.salesforce.records("Lead") if r.get("Email") == email]


def _cli(world: World, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "-c", str(world.box.config_path)])


def _held(world: World) -> int:
    return int(world.store.counts()["gate_held"])


def test_below_the_gate_stays_in_hubspot_is_counted_and_explained_then_crosses(
    staged: World,
) -> None:
    world = staged
    low = world.hubspot.add_contact(
        {
            "email": "lo@example.com",
            "lastname": "Low",
            "company": "Low Co",
            "lifecyclestage": "lead",
            "hubspotscore": "12",
        }
    )
    world.hubspot.add_contact(
        {
            "email": "hi@example.com",
            "lastname": "High",
            "company": "Hi",
            "lifecyclestage": "marketingqualifiedlead",
            "hubspotscore": "55",
        }
    )
    report = world.cycle()
    assert report.created == {"salesforce": 1} and report.gated == 1
    assert _leads(world, "lo@example.com") == [] and len(_leads(world, "hi@example.com")) == 1
    assert _held(world) == 1 and world.link_count() == 1
    status = _cli(world, "status")
    assert "Held back by the gate: 1" in status.stdout, status.stdout
    told = _cli(world, "explain", "lo@example.com")
    assert told.exit_code == 0, told.stdout
    text = " ".join(told.stdout.split())
    assert "held back by the gate: stage lead is before mql; hubspotscore 12 < 40" in text, text
    machine = json.loads(_cli(world, "explain", "lo@example.com", "--json").stdout)
    assert [g["record_id"] for g in machine["gate"]] == [low]

    world.cycle()  # nothing changed: still held, nothing created
    assert _leads(world, "lo@example.com") == []

    world.hubspot.update_contact(low, {"hubspotscore": "41"})  # the score alone: not enough
    again = world.cycle()
    assert again.gated == 1 and _leads(world, "lo@example.com") == []
    told = " ".join(_cli(world, "explain", "lo@example.com").stdout.split())
    assert "stage lead is before mql" in told and "hubspotscore" not in told

    world.hubspot.update_contact(low, {"lifecyclestage": "marketingqualifiedlead"})
    crossed = world.cycle()  # the incremental scan reads the changed contact
    assert crossed.created == {"salesforce": 1} and crossed.gated == 0
    (lead,) = _leads(world, "lo@example.com")
    assert lead["Status"] == "Marketing Qualified" and lead["Lead_Score__c"] == 41
    assert _held(world) == 0 and world.link_count() == 2
    assert "Held back by the gate" not in _cli(world, "status").stdout


def test_people_already_linked_or_already_in_the_crm_sync_whatever_the_gate_says(
    staged: World,
) -> None:
    world = staged
    ada = world.hubspot.add_contact(
        {
            "email": "ada@example.com",
            "lastname": "Lovelace",
            "company": "Engines",
            "lifecyclestage": "marketingqualifiedlead",
            "hubspotscore": "80",
        }
    )
    # sales has Grace already: a HubSpot subscriber with her email is linked, not held
    world.salesforce.add(
        "Lead", {"Email": "grace@example.com", "LastName": "Hopper", "Company": "Navy"}
    )
    world.hubspot.add_contact(
        {"email": "grace@example.com", "lastname": "Hopper", "lifecyclestage": "subscriber"}
    )
    first = world.cycle()
    assert first.gated == 0 and world.link_count() == 2 and _held(world) == 0
    world.hubspot.update_contact(ada, {"hubspotscore": "5", "jobtitle": "Countess"})
    report = world.cycle()
    assert report.gated == 0
    (lead,) = _leads(world, "ada@example.com")
    assert lead["Title"] == "Countess" and lead["Lead_Score__c"] == 5


def test_a_property_gate_crosses_on_the_scan_and_on_a_resync(flagged: World) -> None:
    world = flagged
    ada = world.hubspot.add_contact(
        {
            "email": "ada@example.com",
            "lastname": "Lovelace",
            "company": "E",
            "lifecyclestage": "lead",
        }
    )
    kat = world.hubspot.add_contact(
        {"email": "kat@example.com", "lastname": "Johnson", "company": "N", "sync_to_crm": "false"}
    )
    assert world.cycle().gated == 2
    assert _leads(world, "ada@example.com") == _leads(world, "kat@example.com") == []
    told = " ".join(_cli(world, "explain", "kat@example.com").stdout.split())
    assert "held back by the gate: sync_to_crm is 'false', not 'true'" in told, told

    world.hubspot.update_contact(ada, {"sync_to_crm": "true"})
    assert world.cycle().created == {"salesforce": 1}
    assert len(_leads(world, "ada@example.com")) == 1

    # Kat's change is missed by the scans (cursors ahead): a resync re-asks the gate.
    ahead = Cursor(datetime.now(UTC) + timedelta(days=1))
    with world.store.engine.begin() as connection:
        for system, kind in (("hubspot", "contacts"), ("salesforce", "Lead")):
            world.store.save_cursor(connection, system, kind, ahead)
    world.hubspot.update_contact(kat, {"sync_to_crm": "true"})
    assert world.cycle().created == {}
    ran = _cli(world, "resync", "--email", "KAT@example.com", "--now", "--json")
    assert ran.exit_code == 0, ran.stdout
    (request,) = resync.requests(world.store)
    assert request["state"] == "done" and request["result"]["created"] == {"salesforce": 1}
    assert len(_leads(world, "kat@example.com")) == 1 and _held(world) == 0


@pytest.mark.parametrize(
    ("gate", "key", "message"),
    [
        (
            {"property_equals": {"sync_to_crn": "true"}},
            "gate.property_equals.sync_to_crn",
            "HubSpot contacts have no property 'sync_to_crn'",
        ),
        (
            {"min_score": 10, "score_property": "hs_lead_status"},
            "gate.score_property",
            "property 'hs_lead_status' is of type enumeration, which cannot hold a number field",
        ),
        (
            {"min_score": 10, "score_property": "lastname"},
            "gate.score_property",
            "lastname is mapped in fields.yaml as person field last_name of type string",
        ),
        ({"min_stage": "marketing_qualified"}, "gate.min_stage", "no person stage"),
    ],
)
def test_validate_names_the_gates_unknown_property_or_stage(
    tmp_path: Path, gate: dict[str, Any], key: str, message: str
) -> None:
    with sandbox.start(tmp_path, sample=False, overrides={"gate": gate}) as box:
        checked = syncd_cli("validate", "--json", "--config", str(box.config_path))
    assert checked.returncode != 0, checked.stdout
    text = checked.stdout + checked.stderr
    if "mapped" in message or key == "gate.min_stage":  # refused loading: file:line: key: ...
        assert re.search(rf"syncd\.yaml:\d+: {re.escape(key)}: {re.escape(message)}", text), text
        return
    answer = json.loads(checked.stdout)
    (problem,) = [p for p in answer["problems"] if p["key"] == key]
    assert message in problem["message"] and problem["file"].endswith("syncd.yaml")
    lines = (tmp_path / "syncd.yaml").read_text("utf-8").splitlines()
    assert key.split(".")[-1] in lines[problem["line"] - 1]


def test_after_the_gate_is_loosened_a_resync_of_the_held_lets_them_cross(staged: World) -> None:
    world = staged
    for email, stage in (("lo@example.com", "lead"), ("sub@example.com", "subscriber")):
        world.hubspot.add_contact(
            {"email": email, "lastname": "Held", "company": "E", "lifecyclestage": stage}
        )
    assert world.cycle().gated == 2 and _held(world) == 2
    # the admin loosens the gate to lead; nobody changed in HubSpot, so no scan reads them
    path = world.box.config_path
    yaml = YAML()
    document = yaml.load(path.read_text(encoding="utf-8"))
    document["gate"] = {"min_stage": "lead"}
    with path.open("w", encoding="utf-8") as file:
        yaml.dump(document, file)
    assert world.cycle().created == {}
    ran = _cli(world, "resync", "--held", "--now", "--json")
    assert ran.exit_code == 0, ran.stdout
    (request,) = resync.requests(world.store)
    assert request["selector"]["held"] is True
    assert request["result"]["created"] == {"salesforce": 1}  # lo crosses, sub stays held
    assert len(_leads(world, "lo@example.com")) == 1 and _leads(world, "sub@example.com") == []
    assert _held(world) == 1
    # with nobody held back, --held names nothing: said, nothing queued
    document["gate"] = {"min_stage": "subscriber"}
    with path.open("w", encoding="utf-8") as file:
        yaml.dump(document, file)
    assert _cli(world, "resync", "--held", "--now").exit_code == 0
    assert _held(world) == 0
    refused = _cli(world, "resync", "--held", "--now")
    assert refused.exit_code == 1 and "the gate holds no person back" in refused.stderr
