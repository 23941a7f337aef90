"""End to end, refusals: a refused record costs only itself, in the same cycle.

A batch refused as a whole (HubSpot batch upsert and update, a Salesforce collection it
cannot read) is split until the refused record stands alone; the org's rules (validation
and duplicate rules, read-only and required fields) refuse one record with Salesforce's
own code and message; a contact-role insert whose answer is lost creates no duplicate.
"""

from __future__ import annotations

import math
from typing import Any

from ruamel.yaml import YAML

from syncd import registry
from syncd.config.load import load_config
from syncd.retry import RetryPolicy
from tests.world import World

SPLIT_BOUND = 2 * math.ceil(math.log2(100))
"""Extra calls one bad record in a batch of 100 may cost (both halves at every level)."""
BAD_SOURCE = "Purchased List"  # a Salesforce lead source HubSpot's picklist does not have


def _letters(world: World) -> list[dict[str, Any]]:
    return world.store.dead_letters()


def _leads(world: World, n: int, **bad: Any) -> list[str]:
    """``n`` Salesforce leads; the 43rd carries ``bad`` (so it sits inside a half)."""
    ids = []
    for i in range(n):
        fields = {
            "Email": f"lead{i}@example.com",
            "LastName": f"Lead {i}",
            "Company": "Acme",
            "LeadSource": "Web",
        }
        ids.append(world.salesforce.add("Lead", {**fields, **(bad if i == 42 else {})}))
    return ids


def test_a_bad_record_in_a_hubspot_batch_upsert_costs_only_itself(world: World) -> None:
    _leads(world, 100, LeadSource=BAD_SOURCE)
    report = world.cycle()
    assert report.created == {"hubspot": 99}
    assert len(world.hubspot.contacts()) == 99
    (letter,) = _letters(world)
    assert letter["system"] == "hubspot"
    assert f"{BAD_SOURCE} was not one of the allowed options" in letter["message"]
    assert 0 < world.engine.marketing.split_calls() <= SPLIT_BOUND  # type: ignore[attr-defined]


def test_a_bad_record_in_a_hubspot_batch_update_costs_only_itself(world: World) -> None:
    ids = _leads(world, 100)
    world.cycle()
    world.cycle()  # reads back what the first cycle wrote
    assert _letters(world) == [] and len(world.hubspot.contacts()) == 100
    before = world.engine.marketing.split_calls()  # type: ignore[attr-defined]
    for i, lead in enumerate(ids):
        edit = {"Title": f"Title {i}"}
        world.salesforce.update(
            "Lead", lead, {**edit, "LeadSource": BAD_SOURCE} if i == 42 else edit
        )
    report = world.cycle()
    assert report.updated.get("hubspot") == 99
    titles = {c["properties"].get("jobtitle") for c in world.hubspot.contacts()}
    assert {f"Title {i}" for i in range(100) if i != 42} <= titles and "Title 42" not in titles
    (letter,) = _letters(world)
    assert letter["system"] == "hubspot" and BAD_SOURCE in letter["message"]
    extra = world.engine.marketing.split_calls() - before  # type: ignore[attr-defined]
    assert 0 < extra <= SPLIT_BOUND


def test_a_salesforce_collection_refused_as_a_whole_costs_only_its_bad_record(
    world: World,
) -> None:
    for i in range(100):
        # a close date typed with a five-digit year: HubSpot keeps it, Salesforce's JSON
        # parser cannot read it and refuses the whole collection
        close = 317_000_000_000_000 if i == 42 else 1_796_083_200_000
        world.hubspot.add_deal(
            {
                "dealname": f"Deal {i}",
                "closedate": str(close),
                "pipeline": "default",
                "dealstage": "appointmentscheduled",
            }
        )
    report = world.cycle()
    assert report.objects["deal"].created == {"salesforce": 99}
    assert len([o for o in world.salesforce.records("Opportunity") if not o["IsDeleted"]]) == 99
    (letter,) = _letters(world)
    assert letter["system"] == "salesforce"
    assert "JSON_PARSER_ERROR" in letter["message"] and "Cannot deserialize" in letter["message"]
    assert 0 < world.engine.crm.split_calls() <= SPLIT_BOUND  # type: ignore[attr-defined]


def _contacts(world: World, people: list[dict[str, str]]) -> None:
    for n, person in enumerate(people):
        fields = {"email": f"p{n}@example.com", "lastname": f"P{n}", "company": "Acme"}
        world.hubspot.add_contact({**fields, **person})


def test_a_validation_rule_refuses_only_its_record_with_its_message(world: World) -> None:
    world.salesforce.add_validation_rule(
        "Lead", "Title", "(?i)intern", "Interns are not sales leads"
    )
    _contacts(world, [{"jobtitle": "Intern"}, {"jobtitle": "CTO"}, {}])
    report = world.cycle()
    assert report.created == {"salesforce": 2}
    (letter,) = _letters(world)
    assert letter["message"] == "Interns are not sales leads"
    assert letter["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"


def _allow_save(world: World) -> None:
    """Rebuild the Salesforce connector from syncd.yaml with duplicate_rule_allow_save."""
    yaml = YAML(typ="rt")
    path = world.box.config_path
    settings = yaml.load(path.read_text("utf-8"))
    settings["systems"]["salesforce"]["duplicate_rule_allow_save"] = True
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(settings, out)
    policy = RetryPolicy(attempts=4, initial=0.01, maximum=5, sleep=world.sleeps.append)
    crm = registry.connector(load_config(path), "salesforce", policy)
    world.engine.crm.close()
    world.engine.crm = crm


def test_a_duplicate_rule_blocks_without_allow_save_and_lets_it_land_with_it(
    world: World,
) -> None:
    world.salesforce.add("Lead", {"LastName": "Old", "Company": "Acme", "Phone": "+1 555 0100"})
    world.salesforce.add_duplicate_rule("Lead", ["Phone"])  # an alert rule
    world.hubspot.add_contact(
        {"email": "new@example.com", "lastname": "New", "company": "Acme", "phone": "+1 555 0100"}
    )
    world.cycle()
    (letter,) = _letters(world)
    assert letter["code"] == "DUPLICATES_DETECTED"
    assert letter["message"] == "Use one of these records?"
    assert [r["LastName"] for r in world.salesforce.records("Lead")] == ["Old"]
    _allow_save(world)
    (new,) = [c for c in world.hubspot.contacts() if c["properties"].get("lastname") == "New"]
    world.hubspot.update_contact(new["id"], {"jobtitle": "Buyer"})  # planned again
    world.cycle()
    assert sorted(r["LastName"] for r in world.salesforce.records("Lead")) == ["New", "Old"]
    assert _letters(world) == []


def test_a_read_only_and_a_required_field_refuse_their_records_with_their_codes(
    world: World,
) -> None:
    world.salesforce.set_read_only("Lead", "Recycle_Reason__c")
    world.salesforce.set_required("Lead", "Phone")
    _contacts(
        world,
        [
            {"phone": "1", "syncd_recycle_reason": "Timing"},
            {"jobtitle": "No phone"},
            {"phone": "3"},
        ],
    )
    report = world.cycle()
    assert report.created == {"salesforce": 1}
    codes = {letter["code"] for letter in _letters(world)}
    assert codes == {"INVALID_FIELD_FOR_INSERT_UPDATE", "REQUIRED_FIELD_MISSING"}


def test_a_contact_role_insert_whose_answer_is_lost_creates_no_duplicate(world: World) -> None:
    people = []
    for email in ("ada@example.com", "grace@example.com"):
        hs = world.hubspot.add_contact({"email": email, "lastname": email[:3]})
        people.append(
            (hs, world.salesforce.add("Contact", {"Email": email, "LastName": email[:3]}))
        )
    deal = world.hubspot.add_deal(
        {
            "dealname": "Platform",
            "closedate": "2026-12-15T00:00:00.000Z",
            "pipeline": "default",
            "dealstage": "contractsent",
        }
    )
    for hs, _ in people:
        world.hubspot.associate("deals", deal, "contacts", hs)
    world.salesforce.land_then_drop("composite/sobjects", method="POST")
    world.cycle()
    (opportunity,) = [o for o in world.salesforce.records("Opportunity") if not o["IsDeleted"]]
    roles = [
        r["ContactId"]
        for r in world.salesforce.records("OpportunityContactRole")
        if r["OpportunityId"] == opportunity["Id"] and not r["IsDeleted"]
    ]
    assert sorted(roles) == sorted(sf for _, sf in people)  # each once
    assert _letters(world) == []
    assert len(world.sleeps) == 1  # one attempt more: it read what landed, inserted nothing
