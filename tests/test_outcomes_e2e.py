"""End to end, outcomes visible in HubSpot's own reports (issue 13, section 5): the people
a won opportunity is attributed to become associated with the HubSpot deal, once, never
copied to Salesforce, never removed; their won revenue and last outcome are written to
contact properties in the closed loop's batch. Real clients, both emulators, both stores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from syncd.harness import sandbox
from syncd.state.tables import cursors, derived_refs, journal, links
from syncd.sync import killpoints
from tests.factories import syncd_cli
from tests.world import World

CHILD = ("-c", "from syncd.cli.app import main; main()")
CREATE = "POST /crm/v4/associations/deals/contacts/batch/create"
SWEEP_READ = "POST /crm/v4/associations/deals/contacts/batch/read"
CONTACT_UPDATES = "POST /crm/v3/objects/contacts/batch/update"


def _hs(world: World, object_type: str) -> list[dict[str, Any]]:
    return [
        {**o.get("properties", {}), "id": str(o["id"])} for o in world.hubspot.objects(object_type)
    ]


def _one(items: list[dict[str, Any]], **wanted: Any) -> dict[str, Any]:
    found = [i for i in items if all(str(i.get(k)) == str(v) for k, v in wanted.items())]
    assert len(found) == 1, f"{len(found)} records with {wanted}"
    return found[0]


def _live(world: World, obj: str) -> list[dict[str, Any]]:
    return [r for r in world.salesforce.records(obj) if not r.get("IsDeleted")]


def _link_id(world: World, obj: str, **where: str) -> int:
    query = select(links.c.id).where(links.c.object == obj)
    for column, value in where.items():
        query = query.where(links.c[column] == value)
    with world.store.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _notes(world: World) -> list[dict[str, Any]]:
    with world.store.engine.connect() as connection:
        rows = connection.execute(
            select(journal.c.detail).where(journal.c.action == "closed_loop")
        ).scalars()
        return [json.loads(d) for d in rows]


def _derived(world: World) -> list[tuple[str, str, int]]:
    with world.store.engine.connect() as connection:
        rows = connection.execute(
            select(derived_refs.c.record_id, derived_refs.c.ref_id, derived_refs.c.ref_link)
        )
        return sorted((str(r), str(t), int(p)) for r, t, p in rows)


def _calls(world: World, label: str) -> int:
    return world.hubspot.calls().get(label, 0)


def _deal_contacts(world: World, deal: str) -> list[str]:
    return sorted(world.hubspot.associations("deals", deal, "contacts"))


def _converted_without_roles(world: World) -> tuple[str, str]:
    """Lin: a HubSpot MQL whose Salesforce lead was converted into an opportunity that
    has no contact role (sales deleted it): its outcome goes to her by the converted-lead
    rule. Returns her HubSpot contact id and the opportunity id."""
    contact = world.hubspot.add_contact(
        {
            "email": "lin@example.com",
            "lastname": "Ng",
            "company": "Vandelay",
            "lifecyclestage": "marketingqualifiedlead",
            "lead_source": "Webinar",
        }
    )
    world.cycle()
    lead = _one(_live(world, "Lead"), Email="lin@example.com")["Id"]
    ids = world.salesforce.convert_lead(lead, opportunity_name="Vandelay import")
    for role in _live(world, "OpportunityContactRole"):
        world.salesforce.delete("OpportunityContactRole", role["Id"])
    world.cycle()
    opportunity = ids["opportunityId"]
    assert opportunity is not None
    return contact, opportunity


def _hooli(world: World, people: int = 2) -> tuple[str, list[str]]:
    """An account with ``people`` contacts and no lead conversions: an opportunity of it
    goes to its people by the account-contacts rule. Returns the account and contacts."""
    account = world.salesforce.add("Account", {"Name": "Hooli", "Website": "hooli.com"})
    contacts = [
        world.salesforce.add(
            "Contact", {"Email": f"p{n}@hooli.com", "LastName": f"P{n}", "AccountId": account}
        )
        for n in range(people)
    ]
    return account, contacts


def _opportunity(world: World, account: str, name: str) -> str:
    return str(
        world.salesforce.add(
            "Opportunity",
            {"Name": name, "AccountId": account, "StageName": "Prospecting"}
            | {"CloseDate": "2027-03-01"},
        )
    )


def _sweep_associations(world: World) -> None:
    """Make the association sweep over HubSpot deals due now and run cycles until it read
    (an idle cycle's scans read no association: what reads them here is the sweep)."""
    with world.store.engine.begin() as connection:
        connection.execute(delete(cursors).where(cursors.c.kind == "deals#associations"))
    before = _calls(world, SWEEP_READ)
    for _ in range(4):
        world.cycle()
        if _calls(world, SWEEP_READ) > before:
            return
    raise AssertionError("the association sweep over deals did not run")


def test_a_converted_leads_contact_is_associated_with_the_won_deal_once(world: World) -> None:
    contact, opportunity = _converted_without_roles(world)
    deal = _one(_hs(world, "deals"), syncd_salesforce_id=opportunity)["id"]
    assert _deal_contacts(world, deal) == []
    world.salesforce.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    world.cycle()
    assert _deal_contacts(world, deal) == [contact]
    person = _link_id(world, "person", marketing_id=contact)
    (note,) = _notes(world)
    assert note["rule"] == "converted_lead"
    assert note["people"] == note["associated"] == [person]
    assert _derived(world) == [(deal, contact, person)]
    created = _calls(world, CREATE)
    assert created == 1
    for _ in range(2):
        world.cycle()
    assert _calls(world, CREATE) == created  # remembered: not sent again
    # the association is syncd's, not sales': no contact role appears in Salesforce
    assert _live(world, "OpportunityContactRole") == []
    _sweep_associations(world)
    assert _live(world, "OpportunityContactRole") == []
    assert _deal_contacts(world, deal) == [contact] and _calls(world, CREATE) == created
    assert len(_notes(world)) == 1


def test_an_accounts_contacts_are_associated_in_one_batch_and_hand_made_ones_stay(
    world: World,
) -> None:
    account, people = _hooli(world, 2)
    opportunity = _opportunity(world, account, "Hooli XYZ")
    # a HubSpot contact of another company, whom marketing associates with the deal by hand
    world.salesforce.add("Contact", {"Email": "erlich@aviato.com", "LastName": "Bachman"})
    world.cycle()
    deal = _one(_hs(world, "deals"), syncd_salesforce_id=opportunity)["id"]
    contacts = sorted(world.contact(f"p{n}@hooli.com")["id"] for n in range(2))
    assert _deal_contacts(world, deal) == []
    world.salesforce.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    before = _calls(world, CREATE)
    world.cycle()
    assert _calls(world, CREATE) == before + 1  # both people in one batch
    assert _deal_contacts(world, deal) == contacts
    links_ = sorted(_link_id(world, "person", crm_id=p) for p in people)
    assert [n["rule"] for n in _notes(world)] == ["account_contacts"]
    assert sorted(_notes(world)[0]["associated"]) == links_
    erlich = world.contact("erlich@aviato.com")["id"]
    world.hubspot.associate("deals", deal, "contacts", erlich)
    _sweep_associations(world)
    world.cycle()
    # nothing syncd made or a user made is taken away; the hand-made one is a real
    # association and reaches Salesforce as a contact role, syncd's own stay in HubSpot
    assert _deal_contacts(world, deal) == sorted([*contacts, erlich])
    roles = _live(world, "OpportunityContactRole")
    erlich_sf = _one(_live(world, "Contact"), Email="erlich@aviato.com")["Id"]
    assert [(r["OpportunityId"], r["ContactId"]) for r in roles] == [(opportunity, erlich_sf)]
    assert _calls(world, CREATE) == before + 1


def test_a_refused_association_is_dead_lettered_and_its_deal_looped_again(world: World) -> None:
    contact, opportunity = _converted_without_roles(world)
    deal = _one(_hs(world, "deals"), syncd_salesforce_id=opportunity)["id"]
    world.salesforce.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    world.hubspot.fail_next(400, 1, "associations/deals/contacts/batch/create")
    world.cycle()
    assert _deal_contacts(world, deal) == [] and _notes(world) == [] and _derived(world) == []
    (letter,) = world.store.dead_letters()
    assert letter["system"] == "hubspot" and letter["source"].startswith("assoc:")
    assert letter["target_id"] == deal and letter["message"]
    world.cycle()
    assert _deal_contacts(world, deal) == [contact]
    assert len(_notes(world)) == 1 and world.store.dead_letters() == []
    assert world.contact("lin@example.com")["lifecyclestage"] == "customer"


def test_a_kill_between_the_association_and_its_commit_sends_it_again_harmlessly(
    world: World,
) -> None:
    contact, opportunity = _converted_without_roles(world)
    deal = _one(_hs(world, "deals"), syncd_salesforce_id=opportunity)["id"]
    world.salesforce.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCD_STORE_URL", killpoints.ENV)}
    env[killpoints.ENV] = "loop.associated"
    child = subprocess.run(
        [sys.executable, *CHILD, "once", "-c", str(world.box.config_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr  # killed at the point, not before
    assert _deal_contacts(world, deal) == [contact]  # written to HubSpot, kept as
    person = _link_id(world, "person", marketing_id=contact)  # syncd's, not journaled
    assert _derived(world) == [(deal, contact, person)] and _notes(world) == []
    created = _calls(world, CREATE)
    world.cycle()
    assert _calls(world, CREATE) == created + 1  # sent again: HubSpot keeps one
    assert _deal_contacts(world, deal) == [contact]
    assert _derived(world) == [(deal, contact, person)] and len(_notes(world)) == 1
    world.cycle()
    assert _calls(world, CREATE) == created + 1 and len(_notes(world)) == 1
    assert _live(world, "OpportunityContactRole") == []


def test_won_revenue_and_last_outcome_are_written_in_one_batch_and_sum(world: World) -> None:
    account, _ = _hooli(world, 2)
    first = _opportunity(world, account, "Hooli XYZ")
    second = _opportunity(world, account, "Hooli Box")
    third = _opportunity(world, account, "Hooli Phone")
    world.cycle()
    people = [f"p{n}@hooli.com" for n in range(2)]
    assert all(world.contact(p).get("syncd_won_revenue") in (None, "") for p in people)

    def close(opportunity: str, values: dict[str, Any]) -> int:
        """Close one opportunity; the contact batch updates the cycle made."""
        world.salesforce.update("Opportunity", opportunity, values)
        before = _calls(world, CONTACT_UPDATES)
        world.cycle()
        return _calls(world, CONTACT_UPDATES) - before

    assert close(first, {"StageName": "Closed Won", "Amount": 1000}) == 1
    for person in people:
        contact = world.contact(person)
        assert (contact["syncd_won_revenue"], contact["syncd_last_outcome"]) == ("1000", "won")
        assert contact["lifecyclestage"] == "customer"
    # already customers: the second deal writes the revenue alone, one batch for both
    assert close(second, {"StageName": "Closed Won", "Amount": 2500.5}) == 1
    for person in people:
        contact = world.contact(person)
        assert (contact["syncd_won_revenue"], contact["syncd_last_outcome"]) == ("3500.5", "won")
    assert close(third, {"StageName": "Closed Lost", "Amount": 9999}) == 1
    for person in people:
        contact = world.contact(person)
        assert (contact["syncd_won_revenue"], contact["syncd_last_outcome"]) == ("3500.5", "lost")
    before = _calls(world, CONTACT_UPDATES)
    world.cycle()
    assert _calls(world, CONTACT_UPDATES) == before  # written once, not every cycle


@pytest.mark.parametrize(
    ("deals", "key", "message"),
    [
        (
            {"person_revenue_property": "syncd_won_revenu"},
            "deals.person_revenue_property",
            "HubSpot contacts have no property 'syncd_won_revenu'",
        ),
        (
            {"person_revenue_property": "syncd_last_outcome"},
            "deals.person_revenue_property",
            "property 'syncd_last_outcome' is of type string, which cannot hold a number field",
        ),
        (
            {"person_last_outcome_property": "createdate"},
            "deals.person_last_outcome_property",
            "property 'createdate' is read-only",
        ),
    ],
)
def test_validate_names_an_outcome_property_hubspot_cannot_hold(
    tmp_path: Path, deals: dict[str, Any], key: str, message: str
) -> None:
    shipped = {"attribution": ["contact_roles", "converted_lead", "account_contacts"]}
    with sandbox.start(tmp_path, sample=False, overrides={"deals": shipped | deals}) as box:
        checked = syncd_cli("validate", "--json", "--config", str(box.config_path))
    assert checked.returncode != 0, checked.stdout
    answer = json.loads(checked.stdout)
    (problem,) = [p for p in answer["problems"] if p["key"] == key and message in p["message"]]
    assert problem["file"].endswith("syncd.yaml")
    lines = (tmp_path / "syncd.yaml").read_text("utf-8").splitlines()
    assert key.split(".")[-1] in lines[problem["line"] - 1]


def test_the_shipped_outcome_properties_validate(tmp_path: Path) -> None:
    with sandbox.start(tmp_path, sample=False) as box:
        checked = syncd_cli("validate", "--json", "--config", str(box.config_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
