"""Partner ids written back (``partner_id_write_back``), end to end through the real
clients: HubSpot's default waits for the next update, so a backfill costs HubSpot no
batch of its own and the cycle after it reads nothing back."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd import registry
from syncd.config.load import load_config
from syncd.errors import ConfigError
from tests.world import World, make_world

CONFIG = Path(__file__).resolve().parents[1] / "config"
WAIT = "with_next_update"
TYPES = ("companies", "contacts", "deals")
N = 250
"""More than a search page (200) and more than a HubSpot batch (100)."""


@pytest.fixture
def eager(tmp_path: Path, store_url: str) -> Iterator[World]:
    """The world with HubSpot told each partner's id at once (the old behaviour)."""
    yield from make_world(tmp_path, store_url, {"partner_id_write_back": "immediate"})


def _hubspot_calls(world: World) -> dict[str, int]:
    """HubSpot API calls since the last reset, the token grant left out."""
    return {k: v for k, v in world.hubspot.calls().items() if "oauth" not in k}


def _writes(calls: dict[str, int]) -> int:
    """HubSpot calls that write: batch updates and creates (searches are POSTs too)."""
    return sum(n for label, n in calls.items() if "/batch/" in label and "read" not in label)


def _backfill(world: World) -> Any:
    world.hubspot.seed_contacts(N)
    world.hubspot.reset_calls()
    world.salesforce.reset_calls()
    report = world.cycle()
    assert report.created == {"salesforce": N}
    return report


def _leads(world: World) -> list[dict[str, Any]]:
    return [r for r in world.salesforce.records("Lead") if not r.get("IsDeleted")]


def test_a_backfill_writes_nothing_to_hubspot_and_the_next_cycle_reads_nothing_back(
    world: World,
) -> None:
    _backfill(world)
    assert _writes(_hubspot_calls(world)) == 0  # no partner ids batch
    leads = _leads(world)
    assert {r["Syncd_HubSpot_Id__c"] for r in leads} == {c["id"] for c in world.hubspot.contacts()}
    assert not any(c["properties"].get("syncd_salesforce_id") for c in world.hubspot.contacts())
    world.hubspot.reset_calls()
    world.salesforce.reset_calls()
    echo = world.cycle()
    assert echo.read.get("hubspot", 0) == 0
    calls = _hubspot_calls(world)
    # only the scans: one search per object, and at most one sweep slice per object
    # (syncd.sync.sweeps); no record read, no association read for a page
    searches = {label: n for label, n in calls.items() if label.endswith("/search")}
    assert searches == {f"POST /crm/v3/objects/{t}/search": 1 for t in TYPES}, calls
    assert sum(calls.values()) - len(TYPES) <= len(TYPES), calls
    assert not any(label.endswith("/objects/contacts/batch/read") for label in calls), calls
    # the leads created come back from Salesforce (one query page) and settle there
    assert echo.read["salesforce"] == N and echo.unchanged == N
    assert echo.created == {} and echo.updated == {}
    assert world.link_count() == N


def test_immediate_write_back_keeps_the_old_calls(eager: World) -> None:
    _backfill(eager)
    assert _writes(_hubspot_calls(eager)) == math.ceil(N / 100)  # partner ids, 100 a batch
    contacts = eager.hubspot.contacts()
    leads = {r["Syncd_HubSpot_Id__c"]: r["Id"] for r in _leads(eager)}
    assert {c["id"]: c["properties"]["syncd_salesforce_id"] for c in contacts} == leads
    eager.hubspot.reset_calls()
    echo = eager.cycle()
    assert echo.read["hubspot"] == N  # its own writes read back, with their associations
    assert echo.unchanged == 2 * N and echo.updated == {}
    assert any("/batch/read" in label for label in _hubspot_calls(eager))


def test_the_salesforce_id_rides_on_the_next_update_to_the_contact(world: World) -> None:
    _backfill(world)
    world.cycle()
    lead = _leads(world)[7]
    world.salesforce.update("Lead", lead["Id"], {"Title": "Astronomer"})
    world.hubspot.reset_calls()
    report = world.cycle()
    assert report.updated == {"hubspot": 1}
    contact = world.hubspot.get_contact(lead["Syncd_HubSpot_Id__c"])["properties"]
    assert (contact["jobtitle"], contact["syncd_salesforce_id"]) == ("Astronomer", lead["Id"])
    # folded: one batch update, no batch of its own for the partner id
    assert _writes(_hubspot_calls(world)) == 1
    # and the contact read back settles
    again = world.cycle()
    assert again.read["hubspot"] == 1 and again.unchanged >= 1 and again.updated == {}


def test_a_contact_edited_in_hubspot_is_not_written_back_for_its_partner_id(
    world: World,
) -> None:
    _backfill(world)
    world.cycle()
    contact = world.hubspot.contacts()[3]
    world.hubspot.update_contact(str(contact["id"]), {"jobtitle": "Engineer"})
    world.hubspot.reset_calls()
    report = world.cycle()
    assert report.updated == {"salesforce": 1}
    assert _writes(_hubspot_calls(world)) == 0
    assert world.hubspot.get_contact(str(contact["id"]))["properties"].get(
        "syncd_salesforce_id"
    ) in (None, "")
    assert world.cycle().read.get("hubspot", 0) == 0


def test_salesforce_can_wait_for_the_next_update_too(tmp_path: Path, store_url: str) -> None:
    for world in make_world(tmp_path, store_url, salesforce={"partner_id_write_back": WAIT}):
        for n in range(3):
            world.salesforce.add(
                "Lead", {"Email": f"l{n}@example.com", "LastName": f"L{n}", "Company": "Acme"}
            )
        world.salesforce.reset_calls()
        assert world.cycle().created == {"hubspot": 3}
        # no sObject Collections write (the scans' ``POST composite`` holds queries only)
        assert not any("composite/sobjects" in label for label in world.salesforce.calls())
        leads = {r["Id"]: r for r in _leads(world)}
        named = {c["properties"]["syncd_salesforce_id"] for c in world.hubspot.contacts()}
        assert named == set(leads) and not any(r.get("Syncd_HubSpot_Id__c") for r in leads.values())
        echo = world.cycle()
        assert echo.read.get("salesforce", 0) == 0 and echo.updated == {}
        # an edit in HubSpot flows over and carries the contact's id with it
        contact = world.hubspot.contacts()[0]
        world.hubspot.update_contact(str(contact["id"]), {"jobtitle": "Pilot"})
        assert world.cycle().updated == {"salesforce": 1}
        lead = leads[contact["properties"]["syncd_salesforce_id"]]
        lead = world.salesforce.get("Lead", lead["Id"])
        assert (lead["Title"], lead["Syncd_HubSpot_Id__c"]) == ("Pilot", str(contact["id"]))


def test_a_crash_before_the_commit_recovers_the_links_from_the_lead_alone(
    world: World,
) -> None:
    world.hubspot.seed_contacts(30)

    def crash() -> None:
        raise RuntimeError("killed between the writes and the commit")

    world.engine.before_commit = crash
    with pytest.raises(RuntimeError):
        world.cycle()
    assert len(_leads(world)) == 30 and world.link_count() == 0
    world.engine.before_commit = None
    world.cycle()
    world.cycle()
    leads = _leads(world)
    assert len(leads) == 30 and len({r["Email"].lower() for r in leads}) == 30
    assert world.link_count() == 30
    recovered = [e for e in world.store.journal() if e["action"] == "linked"]
    assert len(recovered) == 30 and all("partner id" in e["detail"] for e in recovered)


def test_a_bad_write_back_is_refused_with_its_line(tmp_path: Path) -> None:
    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(CONFIG / name, tmp_path / name)
    path = tmp_path / "syncd.yaml"
    shipped = "partner_id_write_back: with_next_update"
    path.write_text(path.read_text().replace(shipped, "partner_id_write_back: later"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.key == "systems.hubspot.partner_id_write_back"
    assert "'later': one of immediate, with_next_update" in problem.message
    lines = path.read_text().splitlines()
    assert problem.line is not None and "later" in lines[problem.line - 1]


def test_the_shipped_choices_and_the_connectors_defaults(tmp_path: Path) -> None:
    config = load_config(CONFIG / "syncd.yaml")
    assert registry.object_rules(config, "person").deferred == {"hubspot"}
    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(CONFIG / name, tmp_path / name)
    path = tmp_path / "syncd.yaml"
    text = path.read_text().replace("partner_id_write_back: immediate", "")
    path.write_text(text.replace("partner_id_write_back: with_next_update", ""))
    config = load_config(path)
    assert registry.write_back(config, "hubspot") == "with_next_update"
    assert registry.write_back(config, "salesforce") == "immediate"
