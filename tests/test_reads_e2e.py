"""End to end: reads that miss nothing the real APIs can hide (commit lag, search lag,
association-only changes, deletions among many archived records) and what they cost."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from syncd.state.tables import links
from syncd.sync.sweeps import SweepPeriods
from tests.world import World

EVERY_CYCLE = SweepPeriods(deletions=timedelta(0), associations=timedelta(0))
"""Sweeps with no pacing: a slice every cycle."""


def _calls(world: World) -> dict[str, int]:
    return {
        "hubspot": sum(world.hubspot.calls().values()),
        "salesforce": sum(world.salesforce.calls().values()),
    }


def _spent(world: World, obj: str) -> dict[str, int]:
    """API calls one cycle of ``obj`` makes, per system."""
    before = _calls(world)
    world.cycle(obj=obj)
    return {system: count - before[system] for system, count in _calls(world).items()}


def _contact_and_person(world: World, email: str) -> tuple[str, str]:
    """A person who is a HubSpot contact and a Salesforce contact (roles need contacts)."""
    hs = world.hubspot.add_contact({"email": email, "lastname": email[:3]})
    sf = world.salesforce.add("Contact", {"Email": email, "LastName": email[:3]})
    return hs, sf


def _link(world: World, obj: str, **where: str) -> Any:
    query = select(links).where(links.c.object == obj)
    for column, value in where.items():
        query = query.where(links.c[column] == value)
    with world.store.engine.connect() as connection:
        return connection.execute(query).one()


def test_a_salesforce_change_hidden_by_commit_lag_is_found_by_the_lookback(world: World) -> None:
    world.engine.crm.overlap = timedelta(seconds=3)  # type: ignore[attr-defined]
    lead = world.salesforce.add(
        "Lead", {"Email": "grace@example.com", "LastName": "Hopper", "Company": "Navy"}
    )
    world.cycle()
    world.cycle()  # the partner ids read back
    world.salesforce.add(
        "Lead", {"Email": "alan@example.com", "LastName": "Turing", "Company": "NPL"}
    )
    world.cycle()  # the cursor passes now
    # A long transaction: its edit commits now, stamped 1.5 s ago, behind the cursor.
    world.salesforce.lag_commits(1.5)
    world.salesforce.update("Lead", lead, {"Phone": "+1 555 0142"})
    journal = len(world.store.journal())
    world.cycle()
    assert world.contact("grace@example.com").get("phone") is None  # hidden from the scan
    time.sleep(3.2)  # the lookback reaches it ``overlap`` after its stamp
    report = world.cycle()
    assert world.contact("grace@example.com")["phone"] == "+1 555 0142"
    assert report.objects["person"].updated == {"hubspot": 1}
    # One journal entry for the one change; what was read again unchanged settled.
    assert len(world.store.journal()) - journal == 1
    assert world.cycle().objects["person"].updated == {}


def test_a_hubspot_change_hidden_by_search_lag_is_found_by_the_lookback(world: World) -> None:
    world.engine.marketing.overlap = timedelta(seconds=3)  # type: ignore[attr-defined]
    ada = world.hubspot.add_contact(
        {"email": "ada@example.com", "lastname": "Lovelace", "company": "Engines"}
    )
    for _ in range(3):  # linked, partner ids read back, then nothing left to read
        world.cycle()
    world.hubspot.set_search_lag(1500)  # this edit reaches search 1.5 s late
    world.hubspot.update_contact(ada, {"jobtitle": "CTO"})
    world.hubspot.set_search_lag(0)
    world.hubspot.add_contact({"email": "bob@example.com", "lastname": "Kahn", "company": "Arpa"})
    world.cycle()  # reads the later contact: the cursor passes the hidden edit
    assert world.person("bob@example.com")["LastName"] == "Kahn"
    assert world.person("ada@example.com")["Title"] is None
    time.sleep(3.2)
    report = world.cycle()
    assert world.person("ada@example.com")["Title"] == "CTO"
    assert report.objects["person"].updated["salesforce"] == 1


def test_a_contact_added_to_a_hubspot_deal_is_found_by_the_sweep(world: World) -> None:
    world.engine.sweeps = {"hubspot": EVERY_CYCLE, "salesforce": EVERY_CYCLE}
    ada, ada_sf = _contact_and_person(world, "ada@example.com")
    deal = world.hubspot.add_deal(
        {
            "dealname": "Engines",
            "pipeline": "default",
            "dealstage": "appointmentscheduled",
            "closedate": "2026-12-15T00:00:00.000Z",
        }
    )
    world.cycle()
    world.cycle()
    opportunity = _link(world, "deal", marketing_id=deal).crm_id
    modified = world.hubspot.get_deal(deal)["updatedAt"]
    world.hubspot.associate("deals", deal, "contacts", ada)
    assert world.hubspot.get_deal(deal)["updatedAt"] == modified  # no change to scan for

    def roles() -> list[str]:
        return [
            r["ContactId"]
            for r in world.salesforce.records("OpportunityContactRole")
            if r["OpportunityId"] == opportunity and not r["IsDeleted"]
        ]

    # The sweeps of deals take turns on a budget of one call a cycle: the association
    # slice (two calls: companies, contacts) comes within three cycles.
    for _ in range(3):
        if not roles():
            world.cycle()
    assert roles() == [ada_sf]
    assert world.cycle().objects["deal"].updated == {}  # read again: settled


def test_a_contact_role_added_in_salesforce_is_found_by_the_sweep(world: World) -> None:
    world.engine.sweeps = {"hubspot": EVERY_CYCLE, "salesforce": EVERY_CYCLE}
    grace, grace_sf = _contact_and_person(world, "grace@example.com")
    opportunity = world.salesforce.add(
        "Opportunity", {"Name": "Compilers", "StageName": "Prospecting", "CloseDate": "2026-12-01"}
    )
    world.cycle()
    world.cycle()
    deal = _link(world, "deal", crm_id=opportunity).marketing_id
    before = world.salesforce.get("Opportunity", opportunity)["SystemModstamp"]
    world.salesforce.add(
        "OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": grace_sf}
    )
    assert world.salesforce.get("Opportunity", opportunity)["SystemModstamp"] == before
    world.cycle()
    assert world.hubspot.associations("deals", deal, "contacts") == [grace]


def test_a_deleted_contact_among_many_archived_is_found_within_the_bound(world: World) -> None:
    world.hubspot.seed_archived_contacts(2000)
    world.engine.sweeps = {"hubspot": EVERY_CYCLE}
    people = [
        world.hubspot.add_contact(
            {"email": f"p{i}@example.com", "lastname": f"P{i}", "company": "Acme"}
        )
        for i in range(3)
    ]
    for _ in range(3):
        world.cycle()
    world.hubspot.archive_contact(people[1])
    # The bound: a slice of 100 linked ids at least every other cycle (the deletion and the
    # association sweep take turns on the budget), so within 2 cycles for 3 people.
    spent = {"hubspot": 0, "salesforce": 0}
    for _ in range(2):
        if _link(world, "person", marketing_id=people[1]).tombstoned_at is None:
            for system, count in _spent(world, "person").items():
                spent[system] += count
    assert _link(world, "person", marketing_id=people[1]).tombstoned_at is not None
    assert _link(world, "person", marketing_id=people[0]).tombstoned_at is None
    # A search a cycle, a sweep slice a cycle and the archived one read as archived: not
    # one call per 100 archived.
    assert spent["hubspot"] <= 2 * 2 + 1


def test_an_idle_cycle_with_many_archived_contacts_stays_within_two_calls_an_object(
    world: World,
) -> None:
    world.hubspot.seed_archived_contacts(2000)
    for i in range(5):
        world.hubspot.add_contact(
            {"email": f"m{i}@example.com", "lastname": f"M{i}", "company": "Acme"}
        )
        world.salesforce.add(
            "Lead", {"Email": f"s{i}@example.com", "LastName": f"S{i}", "Company": "Acme"}
        )
    world.cycle()
    for _ in range(2):
        world.cycle()  # what the first cycle wrote, read back
    cycles = 12
    spent = {obj: {"hubspot": 0, "salesforce": 0} for obj in ("company", "person", "deal")}
    for _ in range(cycles):
        for obj, calls in spent.items():
            for system, count in _spent(world, obj).items():
                calls[system] += count
    # An idle scan costs one search per HubSpot object and one query per Salesforce kind;
    # the sweeps (deletions, associations) at most one call more per cycle on average.
    kinds = {"company": 1, "person": 2, "deal": 1}
    for obj, calls in spent.items():
        assert calls["hubspot"] <= 2 * cycles, (obj, calls)
        assert calls["salesforce"] <= (kinds[obj] + 1) * cycles, (obj, calls)
    assert spent["person"]["hubspot"] >= cycles  # the scan ran every cycle
    assert 2000 / 100 > 2  # reading the archived list alone would cost 20 calls a cycle
