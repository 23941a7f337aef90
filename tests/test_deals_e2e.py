"""End to end, companies and deals: the real clients against both emulators, one store.

Lead conversion, the closed loop (won and lost written back to marketing), recycled
leads and the attribution of an opportunity without contact roles.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select

from syncd.state.tables import bases, cursors, journal, links, stage_history
from tests.world import World


def _hs(world: World, object_type: str) -> list[dict[str, Any]]:
    return [
        {**o.get("properties", {}), "id": str(o["id"])} for o in world.hubspot.objects(object_type)
    ]


def _only(items: list[dict[str, Any]], **wanted: Any) -> dict[str, Any]:
    found = [i for i in items if all(str(i.get(k)) == str(v) for k, v in wanted.items())]
    assert len(found) == 1, f"{len(found)} records with {wanted}"
    return found[0]


def _live(world: World, obj: str) -> list[dict[str, Any]]:
    return [r for r in world.salesforce.records(obj) if not r.get("IsDeleted")]


def _link(world: World, obj: str, **where: str) -> Any:
    query = select(links).where(links.c.object == obj)
    for column, value in where.items():
        query = query.where(links.c[column] == value)
    with world.store.engine.connect() as connection:
        return connection.execute(query).one()


def _history(world: World, link_id: int) -> list[Any]:
    with world.store.engine.connect() as connection:
        return list(
            connection.execute(
                select(stage_history)
                .where(stage_history.c.link_id == link_id)
                .order_by(stage_history.c.id)
            )
        )


def _contact_and_person(world: World, email: str, stage: str = "opportunity") -> tuple[str, str]:
    """A person who is a HubSpot contact and a Salesforce contact (roles need contacts)."""
    hs = world.hubspot.add_contact({"email": email, "lastname": email[:3], "lifecyclestage": stage})
    sf = world.salesforce.add("Contact", {"Email": email, "LastName": email[:3]})
    return hs, sf


def test_companies_match_by_domain_and_the_rest_are_created(world: World) -> None:
    world.hubspot.add_company({"name": "Acme", "domain": "acme.com", "numberofemployees": "50"})
    world.hubspot.add_company({"name": "Globex", "domain": "globex.com"})
    world.salesforce.add("Account", {"Name": "Acme Corp", "Website": "https://www.Acme.com/about"})
    world.salesforce.add("Account", {"Name": "Initech", "Website": "initech.com"})
    report = world.cycle()
    assert report.objects["company"].created == {"hubspot": 1, "salesforce": 1}
    accounts = _live(world, "Account")
    assert len(accounts) == 3 and len(_hs(world, "companies")) == 3
    acme = _only(_hs(world, "companies"), domain="acme.com")
    # both sides named it at once: the CRM wins the conflict; employees flow to Salesforce
    assert acme["name"] == "Acme Corp"
    account = _only(accounts, Name="Acme Corp")
    assert account["NumberOfEmployees"] == 50 and account["Syncd_HubSpot_Id__c"] == acme["id"]
    assert _only(accounts, Name="Globex")["Website"] == "globex.com"
    assert _only(_hs(world, "companies"), name="Initech")["domain"] == "initech.com"
    assert world.cycle().objects["company"].updated == {}


def test_a_deal_created_in_hubspot_flows_across_with_its_associations(world: World) -> None:
    company = world.hubspot.add_company({"name": "Acme", "domain": "acme.com"})
    ada, ada_sf = _contact_and_person(world, "ada@example.com")
    grace, grace_sf = _contact_and_person(world, "grace@example.com")
    deal = world.hubspot.add_deal(
        {
            "dealname": "Acme platform",
            "amount": "12000",
            "closedate": "2026-12-15T00:00:00.000Z",
            "pipeline": "default",
            "dealstage": "contractsent",
        }
    )
    for to_type, to_id in (("companies", company), ("contacts", ada), ("contacts", grace)):
        world.hubspot.associate("deals", deal, to_type, to_id)
    world.cycle()
    opportunity = _only(_live(world, "Opportunity"), Name="Acme platform")
    account = _only(_live(world, "Account"), Name="Acme")
    assert (opportunity["Amount"], opportunity["CloseDate"]) == (12000, "2026-12-15")
    assert opportunity["StageName"] == "Negotiation/Review"
    assert opportunity["AccountId"] == account["Id"]
    assert opportunity["Syncd_HubSpot_Id__c"] == deal
    roles = {
        r["ContactId"]
        for r in _live(world, "OpportunityContactRole")
        if r["OpportunityId"] == opportunity["Id"]
    }
    assert roles == {ada_sf, grace_sf}
    # HubSpot learns the opportunity's id with the next update syncd makes to the deal
    # (partner_id_write_back: with_next_update, HubSpot's default): none yet
    assert world.hubspot.get_deal(deal)["properties"].get("syncd_salesforce_id") is None
    second = world.cycle()
    assert second.objects["deal"].created == {} and second.objects["deal"].updated == {}
    assert len(_live(world, "OpportunityContactRole")) == 2


def test_an_opportunity_created_in_salesforce_flows_to_hubspot(world: World) -> None:
    account = world.salesforce.add("Account", {"Name": "Initech", "Website": "initech.com"})
    peter_hs, peter_sf = _contact_and_person(world, "peter@example.com")
    opportunity = world.salesforce.add(
        "Opportunity",
        {
            "Name": "Initech TPS",
            "AccountId": account,
            "StageName": "Qualification",
            "CloseDate": "2027-01-31",
            "Amount": 4500.5,
        },
    )
    world.salesforce.add(
        "OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": peter_sf}
    )
    world.cycle()
    deal = _only(_hs(world, "deals"), dealname="Initech TPS")
    assert (deal["dealstage"], deal["pipeline"]) == ("qualifiedtobuy", "default")
    assert deal["amount"] == "4500.5" and deal["closedate"].startswith("2027-01-31")
    company = _only(_hs(world, "companies"), name="Initech")
    assert world.hubspot.associations("deals", deal["id"], "companies") == [company["id"]]
    assert world.hubspot.associations("deals", deal["id"], "contacts") == [peter_hs]


def test_stage_changes_map_both_ways_and_may_move_back(world: World) -> None:
    opportunity = world.salesforce.add(
        "Opportunity",
        {"Name": "Hooli", "StageName": "Prospecting", "CloseDate": "2027-02-01"},
    )
    world.cycle()
    deal = _only(_hs(world, "deals"), dealname="Hooli")["id"]
    assert world.hubspot.get_deal(deal)["properties"]["dealstage"] == "appointmentscheduled"
    world.salesforce.update("Opportunity", opportunity, {"StageName": "Proposal/Price Quote"})
    world.cycle()
    assert world.hubspot.get_deal(deal)["properties"]["dealstage"] == "decisionmakerboughtin"
    # marketing's side moves it back a step (deals may move back): Salesforce follows
    world.hubspot.update_deal(deal, {"dealstage": "presentationscheduled"})
    world.cycle()
    assert world.salesforce.get("Opportunity", opportunity)["StageName"] == "Needs Analysis"
    link = _link(world, "deal", crm_id=opportunity)
    moves = [(h.from_stage, h.to_stage, h.source_system) for h in _history(world, link.id)]
    assert moves == [
        (None, "discovery", "salesforce"),
        ("discovery", "proposal", "salesforce"),
        ("proposal", "solution", "hubspot"),
    ]


def _converted_person(world: World) -> tuple[str, str, dict[str, str | None]]:
    """A HubSpot MQL synced to a Salesforce lead, then converted in Salesforce."""
    contact = world.hubspot.add_contact(
        {
            "email": "lin@example.com",
            "firstname": "Lin",
            "lastname": "Ng",
            "company": "Vandelay",
            "lifecyclestage": "marketingqualifiedlead",
            "lead_source": "Webinar",
        }
    )
    world.cycle()
    lead = _only(_live(world, "Lead"), Email="lin@example.com")["Id"]
    return contact, lead, world.salesforce.convert_lead(lead, opportunity_name="Vandelay import")


def test_lead_conversion_moves_the_link_and_creates_the_deal_once(world: World) -> None:
    contact, _, ids = _converted_person(world)
    report = world.cycle()
    assert report.converted == 1
    assert report.objects["person"].created == {}
    hs_contacts = [c for c in _hs(world, "contacts") if c.get("email") == "lin@example.com"]
    assert len(hs_contacts) == 1 and hs_contacts[0]["id"] == contact
    assert hs_contacts[0]["syncd_salesforce_id"] == ids["contactId"]
    link = _link(world, "person", marketing_id=contact)
    assert (link.crm_kind, link.crm_id) == ("Contact", ids["contactId"])
    # the conversion is a stage transition ("Closed - Converted" reads as opportunity)
    last = _history(world, link.id)[-1]
    assert (last.from_stage, last.to_stage) == ("mql", "opportunity")
    assert last.source_system == "salesforce"
    assert world.contact("lin@example.com")["lifecyclestage"] == "opportunity"
    company = _only(_hs(world, "companies"), name="Vandelay")
    deal = _only(_hs(world, "deals"), dealname="Vandelay import")
    assert deal["syncd_salesforce_id"] == ids["opportunityId"]
    assert world.hubspot.associations("deals", deal["id"], "contacts") == [contact]
    assert world.hubspot.associations("deals", deal["id"], "companies") == [company["id"]]
    again = world.cycle()
    assert again.converted == 0 and again.created == {} and again.updated == {}
    assert len(_hs(world, "contacts")) == 1 and len(_hs(world, "deals")) == 1


def test_won_writes_back_to_the_deal_and_makes_its_people_customers(world: World) -> None:
    contact, _, ids = _converted_person(world)
    world.cycle()
    opportunity = ids["opportunityId"]
    assert opportunity is not None
    contact_id = ids["contactId"]
    assert contact_id is not None
    touched = world.salesforce.get("Contact", contact_id)["SystemModstamp"]
    world.salesforce.update(
        "Opportunity",
        opportunity,
        {"StageName": "Closed Won", "Amount": 30000, "CloseDate": "2026-11-20"},
    )
    world.cycle()
    # a Salesforce contact has no lead status: the move to customer writes nothing there
    assert world.salesforce.get("Contact", contact_id)["SystemModstamp"] == touched
    deal = _only(_hs(world, "deals"), syncd_salesforce_id=opportunity)
    assert (deal["dealstage"], deal["amount"]) == ("closedwon", "30000")
    assert deal["closedate"].startswith("2026-11-20")
    assert world.contact("lin@example.com")["lifecyclestage"] == "customer"
    person = _link(world, "person", marketing_id=contact)
    last = _history(world, person.id)[-1]
    assert (last.from_stage, last.to_stage) == ("opportunity", "customer")
    assert last.reason == "deal 'Vandelay import' won"
    assert _closed_loop_notes(world) == [("contact_roles", [person.id])]
    assert world.cycle().updated == {}


class Crash(Exception):
    pass


def test_a_crash_between_the_deal_and_its_people_moves_them_next_cycle(world: World) -> None:
    contact, _, ids = _converted_person(world)
    world.cycle()
    opportunity = ids["opportunityId"]
    assert opportunity is not None
    world.salesforce.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    commits: list[str] = []

    def crash_at_the_people() -> None:  # the deal's chunk commits; its people's does not
        commits.append("chunk")
        if len(commits) == 2:
            raise Crash

    world.engine.before_commit = crash_at_the_people
    try:
        world.cycle()
    except Crash:
        pass
    else:
        raise AssertionError("the cycle did not reach the people's commit")
    person = _link(world, "person", marketing_id=contact)
    assert [h.to_stage for h in _history(world, person.id)][-1] == "opportunity"
    world.engine.before_commit = None
    world.cycle()
    assert world.contact("lin@example.com")["lifecyclestage"] == "customer"
    assert [h.to_stage for h in _history(world, person.id)].count("customer") == 1
    assert len(_closed_loop_notes(world)) == 1
    world.cycle()
    assert len(_closed_loop_notes(world)) == 1


def test_a_refused_person_move_is_dead_lettered_and_tried_again(world: World) -> None:
    _, _, ids = _converted_person(world)
    world.cycle()
    opportunity = ids["opportunityId"]
    assert opportunity is not None
    world.salesforce.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    world.hubspot.fail_next(400, 1, "contacts/batch/update")
    world.cycle()
    assert world.contact("lin@example.com")["lifecyclestage"] == "opportunity"
    (letter,) = world.store.dead_letters()
    assert letter["system"] == "hubspot" and letter["source"].startswith("loop:")
    assert _closed_loop_notes(world) == []
    world.cycle()
    assert world.contact("lin@example.com")["lifecyclestage"] == "customer"
    assert len(_closed_loop_notes(world)) == 1 and world.store.dead_letters() == []


def test_lost_records_the_reason_and_recycles_the_people(world: World) -> None:
    contact, _, ids = _converted_person(world)
    world.cycle()
    opportunity = ids["opportunityId"]
    assert opportunity is not None
    world.salesforce.update(
        "Opportunity", opportunity, {"StageName": "Closed Lost", "LossReason__c": "No Budget"}
    )
    world.cycle()
    deal = _only(_hs(world, "deals"), syncd_salesforce_id=opportunity)
    assert (deal["dealstage"], deal["closed_lost_reason"]) == ("closedlost", "No Budget")
    # back from opportunity to lead: HubSpot needs the lifecycle stage cleared first
    lin = world.contact("lin@example.com")
    assert (lin["lifecyclestage"], lin["hs_lead_status"]) == ("lead", "BAD_TIMING")
    person = _link(world, "person", marketing_id=contact)
    last = _history(world, person.id)[-1]
    reason = "deal 'Vandelay import' lost: No Budget"
    assert (last.to_stage, last.reason) == ("nurture", reason)
    # the reason is on the person in both systems: marketing knows why it has them back
    assert lin["syncd_recycle_reason"] == reason
    assert world.salesforce.get("Contact", ids["contactId"] or "")["Recycle_Reason__c"] == reason
    assert world.cycle().updated == {}


def test_a_disqualified_lead_is_recycled_and_later_requalified(world: World) -> None:
    world.hubspot.add_contact(
        {
            "email": "max@example.com",
            "lastname": "Max",
            "company": "Kramerica",
            "lifecyclestage": "marketingqualifiedlead",
        }
    )
    world.cycle()
    lead = _only(_live(world, "Lead"), Email="max@example.com")["Id"]
    reason = "No budget until Q3"
    world.salesforce.update("Lead", lead, {"Status": "Nurture", "Recycle_Reason__c": reason})
    world.cycle()
    recycled = world.contact("max@example.com")
    assert (recycled["lifecyclestage"], recycled["hs_lead_status"]) == ("lead", "BAD_TIMING")
    assert recycled["syncd_recycle_reason"] == reason  # marketing sees why
    world.salesforce.update("Lead", lead, {"Status": "Working - Contacted"})
    world.cycle()
    back = world.contact("max@example.com")
    assert (back["lifecyclestage"], back["hs_lead_status"]) == ("salesqualifiedlead", "IN_PROGRESS")
    person = _link(world, "person", crm_id=lead)
    history = _history(world, person.id)
    assert [h.to_stage for h in history] == ["mql", "nurture", "sal"]
    assert [h.reason for h in history] == [None, reason, None]


def test_an_opportunity_without_contact_roles_is_attributed_to_its_converted_lead(
    world: World,
) -> None:
    contact, _, ids = _converted_person(world)
    for role in _live(world, "OpportunityContactRole"):
        world.salesforce.delete("OpportunityContactRole", role["Id"])
    world.cycle()
    opportunity = ids["opportunityId"]
    assert opportunity is not None
    world.salesforce.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    world.cycle()
    assert world.contact("lin@example.com")["lifecyclestage"] == "customer"
    person = _link(world, "person", marketing_id=contact)
    assert _closed_loop_notes(world) == [("converted_lead", [person.id])]
    deal = _link(world, "deal", crm_id=opportunity)

    def base() -> dict[str, Any]:
        with world.store.engine.connect() as connection:
            raw = connection.scalar(select(bases.c.fields).where(bases.c.link_id == deal.id))
        return dict(json.loads(raw))

    assert base()["attributed_people"] == str(person.id)
    # a later change of the deal keeps what syncd derived for the report
    world.salesforce.update("Opportunity", opportunity, {"Amount": 777})
    world.cycle()
    assert base()["amount"] == "777" and base()["attributed_people"] == str(person.id)


def test_a_full_resync_replays_without_duplicating_history(world: World) -> None:
    _converted_person(world)
    world.cycle()
    with world.store.engine.connect() as connection:
        before = list(connection.execute(select(stage_history).order_by(stage_history.c.id)))
    with world.store.engine.begin() as connection:
        connection.execute(delete(cursors))  # every record is read again, from the start
    report = world.cycle()
    assert sum(report.read.values()) > 0
    assert report.created == {} and report.updated == {}
    with world.store.engine.connect() as connection:
        after = list(connection.execute(select(stage_history).order_by(stage_history.c.id)))
    assert after == before and len(before) >= 3


def test_an_opportunity_without_roles_or_lead_is_attributed_to_its_accounts_people(
    world: World,
) -> None:
    account = world.salesforce.add("Account", {"Name": "Hooli", "Website": "hooli.com"})
    gavin = world.salesforce.add(
        "Contact", {"Email": "gavin@hooli.com", "LastName": "Belson", "AccountId": account}
    )
    opportunity = world.salesforce.add(
        "Opportunity",
        {"Name": "Hooli XYZ", "AccountId": account, "StageName": "Prospecting"}
        | {"CloseDate": "2027-03-01"},
    )
    world.cycle()
    # the contact's account is its HubSpot company (contact -> company association)
    contact = world.contact("gavin@hooli.com")["id"]
    company = _only(_hs(world, "companies"), domain="hooli.com")["id"]
    assert world.hubspot.associations("contacts", contact, "companies") == [company]
    assert world.contact("gavin@hooli.com").get("lifecyclestage") in (None, "")
    world.salesforce.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    world.cycle()
    assert world.contact("gavin@hooli.com")["lifecyclestage"] == "customer"
    person = _link(world, "person", crm_id=gavin)
    assert _closed_loop_notes(world) == [("account_contacts", [person.id])]


def test_industries_sync_through_their_value_pairs_and_others_stay(world: World) -> None:
    world.salesforce.add(
        "Account", {"Name": "Pied Piper", "Website": "piedpiper.com", "Industry": "Technology"}
    )
    world.salesforce.add(
        "Account", {"Name": "Farm", "Website": "farm.example", "Industry": "Agriculture"}
    )
    world.cycle()
    piper = _only(_hs(world, "companies"), domain="piedpiper.com")
    assert piper["industry"] == "COMPUTER_SOFTWARE"
    assert not _only(_hs(world, "companies"), domain="farm.example").get("industry")
    world.hubspot.update_company(piper["id"], {"industry": "RETAIL"})
    world.cycle()
    assert _only(_live(world, "Account"), Name="Pied Piper")["Industry"] == "Retail"
    assert world.cycle().objects["company"].updated == {}


def _closed_loop_notes(world: World) -> list[tuple[str, list[int]]]:
    with world.store.engine.connect() as connection:
        rows = connection.execute(
            select(journal.c.detail).where(journal.c.action == "closed_loop")
        ).scalars()
        details = [json.loads(d) for d in rows]
    return [(d["rule"], d["people"]) for d in details]
