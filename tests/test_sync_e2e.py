"""End to end: the real clients over real HTTP(S) against both emulators, one store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from syncd.cli.operator_view import describe
from syncd.state.explain import explain
from tests.world import World


def test_people_created_on_each_side_appear_on_the_other(world: World) -> None:
    world.hubspot.add_contact(
        {
            "email": "ada@example.com",
            "firstname": "Ada",
            "lastname": "Lovelace",
            "company": "Engines",
            "lifecyclestage": "marketingqualifiedlead",
        }
    )
    world.salesforce.add(
        "Lead",
        {
            "Email": "Kat@Example.com",
            "FirstName": "Katherine",
            "LastName": "Johnson",
            "Company": "NASA",
            "Status": "Working - Contacted",
        },
    )
    world.salesforce.add("Contact", {"Email": "edsger@example.com", "LastName": "Dijkstra"})
    report = world.cycle()
    assert report.created == {"salesforce": 1, "hubspot": 2}
    lead = world.person("ada@example.com")
    assert (lead["LastName"], lead["Company"], lead["Status"]) == (
        "Lovelace",
        "Engines",
        "Marketing Qualified",
    )
    kat = world.contact("kat@example.com")
    assert kat["lastname"] == "Johnson"
    assert (kat["lifecyclestage"], kat["hs_lead_status"]) == ("salesqualifiedlead", "IN_PROGRESS")
    edsger = world.contact("edsger@example.com")
    assert edsger["syncd_salesforce_id"] == world.person("edsger@example.com", "Contact")["Id"]
    # partner ids written both ways
    assert lead["Syncd_HubSpot_Id__c"] == world.contact("ada@example.com")["id"]
    assert world.person("kat@example.com")["Syncd_HubSpot_Id__c"] == kat["id"]
    assert world.link_count() == 3


def test_a_person_on_both_sides_is_matched_by_email_not_duplicated(world: World) -> None:
    world.hubspot.add_contact(
        {"email": "alan@example.com", "lastname": "Turing", "lifecyclestage": "lead"}
    )
    world.salesforce.add(
        "Lead",
        {"Email": "ALAN@Example.com", "LastName": "Turing", "Company": "Bletchley", "Phone": "123"},
    )
    report = world.cycle()
    assert report.created == {}
    assert world.contact("alan@example.com")["phone"] == "123"
    assert world.person("alan@example.com")["Syncd_HubSpot_Id__c"] is not None
    assert len(world.hubspot.contacts()) == 1 and len(world.salesforce.records("Lead")) == 1


def test_edits_flow_and_the_second_cycle_echoes_nothing(world: World) -> None:
    ada = world.hubspot.add_contact(
        {
            "email": "ada@example.com",
            "lastname": "Lovelace",
            "company": "Engines",
            "lifecyclestage": "lead",
        }
    )
    world.cycle()
    world.cycle()  # reads back what the first cycle wrote
    lead_id = world.person("ada@example.com")["Id"]
    world.hubspot.update_contact(_id(ada), {"jobtitle": "CTO"})
    world.salesforce.update("Lead", lead_id, {"Phone": "+44 20 7946 0000"})
    report = world.cycle()
    assert report.updated == {"salesforce": 1, "hubspot": 1}
    assert world.person("ada@example.com")["Title"] == "CTO"
    assert world.contact("ada@example.com")["phone"] == "+44 20 7946 0000"
    for _ in range(2):
        quiet = world.cycle()
        assert quiet.created == {} and quiet.updated == {} and quiet.conflicts == 0


def test_same_field_conflicts_follow_each_rule(world: World) -> None:
    hs = world.hubspot.add_contact(
        {
            "email": "c@example.com",
            "lastname": "Conflict",
            "company": "Acme",
            "phone": "1",
            "lead_source": "Web",
            "jobtitle": "Old",
        }
    )
    world.cycle()
    world.cycle()
    lead_id = world.person("c@example.com")["Id"]
    # marketing edits first, sales later: title (latest) goes to sales' value
    world.hubspot.update_contact(
        _id(hs), {"phone": "hs-phone", "lead_source": "Webinar", "jobtitle": "HS title"}
    )
    world.salesforce.update(
        "Lead", lead_id, {"Phone": "sf-phone", "LeadSource": "Partner", "Title": "SF title"}
    )
    report = world.cycle()
    assert report.conflicts == 3
    contact, lead = world.contact("c@example.com"), world.person("c@example.com")
    assert contact["phone"] == lead["Phone"] == "sf-phone"  # crm wins
    assert contact["lead_source"] == lead["LeadSource"] == "Webinar"  # marketing wins
    assert contact["jobtitle"] == lead["Title"] == "SF title"  # latest change wins
    decisions = [j for j in world.store.journal() if j["action"] == "decision"]
    assert decisions and "crm_wins" in decisions[0]["detail"]


def test_a_blank_does_not_overwrite_the_other_side(world: World) -> None:
    hs = world.hubspot.add_contact(
        {"email": "b@example.com", "lastname": "Blank", "company": "Acme", "phone": "555"}
    )
    world.cycle()
    world.hubspot.update_contact(_id(hs), {"phone": ""})
    world.cycle()
    assert world.person("b@example.com")["Phone"] == "555"


def test_a_crash_before_the_commit_leaves_no_duplicate(world: World) -> None:
    for n in range(3):
        world.hubspot.add_contact(
            {"email": f"p{n}@example.com", "lastname": f"P{n}", "company": "Acme"}
        )
    world.engine.before_commit = _crash
    with pytest.raises(Crash):
        world.cycle()
    assert len(world.salesforce.records("Lead")) == 3  # written, not committed
    assert world.link_count() == 0
    world.engine.before_commit = None
    world.cycle()
    world.cycle()
    assert len(world.salesforce.records("Lead")) == 3
    assert len(world.hubspot.contacts()) == 3
    assert world.link_count() == 3


def test_links_recovered_after_a_crash_before_the_commit_are_journaled(world: World) -> None:
    for n in range(3):
        world.hubspot.add_contact(
            {
                "email": f"r{n}@example.com",
                "lastname": f"R{n}",
                "company": "Acme",
                "lifecyclestage": "marketingqualifiedlead",
            }
        )
    world.engine.before_commit = _crash
    with pytest.raises(Crash):
        world.cycle()
    world.engine.before_commit = None
    world.cycle()
    links = world.store.links_by_object()
    assert links == {"person": 3}
    by_link: dict[int, list[dict[str, Any]]] = {}
    for entry in world.store.journal():
        by_link.setdefault(entry["link_id"], []).append(entry)
    assert len([k for k in by_link if k is not None]) == 3  # every link has its story
    for entries in (v for k, v in by_link.items() if k is not None):
        (linked,) = [e for e in entries if e["action"] == "linked"]
        detail = json.loads(linked["detail"])
        assert detail["matched_by"] == "partner id"
        assert "before a crash" in detail["recovered"]
    (story,) = explain(world.store, "r0@example.com", marketing="hubspot", crm="salesforce").links
    told = [describe(e, {"marketing": "hubspot", "crm": "salesforce"}) for e in story.journal]
    assert any("matched by partner id; recovered: a write that landed" in t for t in told), told


def test_a_rejected_record_is_dead_lettered_and_the_rest_land(world: World) -> None:
    world.hubspot.add_contact({"email": "nolast@example.com", "firstname": "No", "company": "Acme"})
    world.hubspot.add_contact({"email": "ok@example.com", "lastname": "Fine", "company": "Acme"})
    report = world.cycle()
    assert report.rejected == {"salesforce": 1} and report.created == {"salesforce": 1}
    (letter,) = world.store.dead_letters()
    assert letter["system"] == "salesforce" and "LastName" in letter["message"]
    assert world.person("ok@example.com")["LastName"] == "Fine"
    assert world.store.counts()["inbox"] >= 1  # kept for the retry, not dropped


def test_a_dead_letter_is_retried_after_its_delay_and_resolved_when_it_lands(
    world: World,
) -> None:
    bad = world.hubspot.add_contact({"email": "fix@example.com", "company": "Acme"})
    world.cycle()
    (letter,) = world.store.dead_letters()
    assert letter["attempts"] == 1
    real_clock = world.engine.clock
    # Not due yet: the next cycle leaves it alone (no second rejection).
    world.cycle()
    assert world.store.dead_letters()[0]["attempts"] == 1
    # Due again after its delay, still refused: attempts grow, nothing is dropped.
    world.engine.clock = lambda: real_clock() + timedelta(minutes=2)
    world.cycle()
    assert world.store.dead_letters()[0]["attempts"] == 2
    assert world.store.counts()["inbox"] == 1
    # Marketing fixes the record: the new version replaces the queued one and lands.
    world.hubspot.update_contact(_id(bad), {"lastname": "Fixed"})
    world.engine.clock = real_clock
    world.cycle()
    assert world.person("fix@example.com")["LastName"] == "Fixed"
    assert world.store.dead_letters() == []
    assert world.store.dead_letters(open_only=False)[0]["resolved_at"] is not None


def test_an_expired_token_is_renewed_without_error(world: World) -> None:
    world.hubspot.add_contact({"email": "t@example.com", "lastname": "Token", "company": "X"})
    world.cycle()
    world.salesforce.expire_tokens()
    world.salesforce.add(
        "Lead", {"Email": "after@example.com", "LastName": "After", "Company": "X"}
    )
    report = world.cycle()
    assert report.created == {"hubspot": 1}
    assert world.contact("after@example.com")["lastname"] == "After"


def test_429_and_5xx_are_retried_with_backoff(world: World) -> None:
    world.hubspot.add_contact({"email": "r@example.com", "lastname": "Retry", "company": "X"})
    world.hubspot.fail_next(429, count=1)
    world.salesforce.fail_next(503, count=2)
    report = world.cycle()
    assert report.created == {"salesforce": 1}
    assert len(world.sleeps) == 3
    assert max(world.sleeps) >= 1.0  # the 429's Retry-After was honoured


def test_hostile_values_are_stored_verbatim(world: World) -> None:
    hostile = "O'Brien \\' OR Name != '' -- \"quoted\" \\\\ end"
    world.hubspot.add_contact(
        {"email": "o'brien@example.com", "lastname": hostile, "company": "Acme'; DELETE"}
    )
    world.cycle()
    lead = world.person("o'brien@example.com")
    assert lead["LastName"] == hostile and lead["Company"] == "Acme'; DELETE"
    assert len(world.salesforce.records("Lead")) == 1


def test_a_dry_run_writes_nothing(world: World) -> None:
    world.hubspot.add_contact({"email": "d@example.com", "lastname": "Dry", "company": "X"})
    report = world.cycle(dry_run=True)
    assert report.created == {"salesforce": 1}
    assert [p.crm_change.op for p in report.plans if p.crm_change] == ["create"]
    assert world.salesforce.records("Lead") == [] and world.link_count() == 0
    assert world.cycle().created == {"salesforce": 1}  # the cursor did not move


def test_a_deleted_record_tombstones_its_link_and_is_not_recreated(world: World) -> None:
    world.hubspot.add_contact({"email": "gone@example.com", "lastname": "Gone", "company": "X"})
    world.cycle()
    lead_id = world.person("gone@example.com")["Id"]
    world.salesforce.delete("Lead", lead_id)
    world.cycle()
    assert world.store.counts()["tombstoned"] == 1
    world.hubspot.update_contact(world.contact("gone@example.com")["id"], {"jobtitle": "Still"})
    report = world.cycle()
    assert report.read["hubspot"] == 1 and report.created == {} and report.updated == {}
    assert world.store.counts()["inbox"] == 0  # nothing left pending for it either
    assert [r for r in world.salesforce.records("Lead") if not r.get("IsDeleted")] == []


class Crash(RuntimeError):
    """The process dying between the remote writes and the local commit."""


def _crash() -> None:
    raise Crash("killed after the remote writes")


def _id(created: Any) -> str:
    if isinstance(created, dict):
        return str(created.get("id") or created.get("Id"))
    return str(created)
