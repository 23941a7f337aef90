"""End to end: what an idle cycle costs, counted by the emulators, and that the sweeps
folded into the scans (HubSpot's deletion check in its search, Salesforce's contact-role
query in its /composite) still find what they are for within their pass."""

from __future__ import annotations

from datetime import timedelta

from syncd.sync.sweeps import SweepPeriods
from tests.test_reads_e2e import EVERY_CYCLE, _contact_and_person, _link, _spent
from tests.world import World

DELETIONS_EVERY_CYCLE = SweepPeriods(deletions=timedelta(0), associations=timedelta(days=1))
"""A deletion slice every cycle; associations once a day (not within these tests)."""


def test_an_idle_cycle_costs_one_call_per_object_and_system(world: World) -> None:
    world.hubspot.seed_archived_contacts(2000)
    # Deletion slices every cycle in HubSpot, a contact-role slice every cycle in
    # Salesforce: the busiest the shipped sweeps get, each folded into its scan.
    world.engine.sweeps = {"hubspot": DELETIONS_EVERY_CYCLE, "salesforce": EVERY_CYCLE}
    for i in range(5):
        world.hubspot.add_contact(
            {"email": f"m{i}@example.com", "lastname": f"M{i}", "company": "Acme"}
        )
        world.salesforce.add(
            "Lead", {"Email": f"s{i}@example.com", "LastName": f"S{i}", "Company": "Acme"}
        )
    _, grace_sf = _contact_and_person(world, "grace@example.com")
    opportunity = world.salesforce.add(
        "Opportunity", {"Name": "Compilers", "StageName": "Prospecting", "CloseDate": "2026-12-01"}
    )
    world.salesforce.add(
        "OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": grace_sf}
    )
    for _ in range(4):  # the backfill, its writes read back, the first association slices
        world.cycle()
    composites = world.salesforce.calls().get("POST composite", 0)
    cycles = 6
    for _ in range(cycles):
        for obj in ("company", "person", "deal"):
            assert _spent(world, obj) == {"hubspot": 1, "salesforce": 1}, obj
    # people (Lead + Contact) and deals (the scan and a contact-role slice) by composite
    assert world.salesforce.calls()["POST composite"] - composites == 2 * cycles
    # the deletion sweep did run: its position moved on each cycle
    state = world.store.sweep_state("hubspot", "contacts", "deletions")
    assert state.due is not None


def test_an_archived_contact_is_found_by_the_search_within_its_pass(world: World) -> None:
    world.hubspot.seed_archived_contacts(500)
    world.engine.sweeps = {"hubspot": DELETIONS_EVERY_CYCLE}
    people = [
        world.hubspot.add_contact(
            {"email": f"p{i}@example.com", "lastname": f"P{i}", "company": "Acme"}
        )
        for i in range(150)
    ]
    for _ in range(3):
        world.cycle()
    world.hubspot.archive_contact(people[120])  # in the second slice of 100
    # The pass: ceil(150 / 100) = 2 cycles, one slice of 100 ids each in the scan's search.
    spent = 0
    for _ in range(2):
        if _link(world, "person", marketing_id=people[120]).tombstoned_at is None:
            spent += _spent(world, "person")["hubspot"]
    assert _link(world, "person", marketing_id=people[120]).tombstoned_at is not None
    assert _link(world, "person", marketing_id=people[119]).tombstoned_at is None
    # a search a cycle, and one batch read of the one it did not find, read as archived
    assert spent <= 2 + 1


def test_on_a_busy_cycle_the_deletion_check_falls_back_to_a_batch_read(world: World) -> None:
    world.engine.sweeps = {"hubspot": DELETIONS_EVERY_CYCLE}
    people = [
        world.hubspot.add_contact(
            {"email": f"b{i}@example.com", "lastname": f"B{i}", "company": "Acme"}
        )
        for i in range(3)
    ]
    for _ in range(3):
        world.cycle()
    world.engine.marketing.page_size = 1  # type: ignore[attr-defined]
    for contact in people[:2]:  # two changes: more than the first page holds
        world.hubspot.update_contact(contact, {"jobtitle": "Engineer"})
    world.hubspot.archive_contact(people[2])
    reads = world.hubspot.calls().get("POST /crm/v3/objects/contacts/batch/read", 0)
    world.cycle(obj="person")
    assert _link(world, "person", marketing_id=people[2]).tombstoned_at is not None
    # the live check by batch read (the search could not answer), then the archived read
    assert world.hubspot.calls()["POST /crm/v3/objects/contacts/batch/read"] - reads == 2


def test_a_contact_role_is_found_by_the_folded_sweep_within_its_pass(world: World) -> None:
    world.engine.sweeps = {"hubspot": EVERY_CYCLE, "salesforce": EVERY_CYCLE}
    grace, grace_sf = _contact_and_person(world, "grace@example.com")
    opportunity = world.salesforce.add(
        "Opportunity", {"Name": "Compilers", "StageName": "Prospecting", "CloseDate": "2026-12-01"}
    )
    world.cycle()
    world.cycle()
    deal = _link(world, "deal", crm_id=opportunity).marketing_id
    world.salesforce.add(
        "OpportunityContactRole", {"OpportunityId": opportunity, "ContactId": grace_sf}
    )
    before = world.salesforce.calls()
    world.cycle(obj="deal")  # one opportunity: the pass is one slice, this cycle
    after = world.salesforce.calls()
    assert world.hubspot.associations("deals", deal, "contacts") == [grace]
    # the role query rode in the scan's composite; the only queries are the changed
    # opportunity read whole and its roles, as for any change found
    assert after["POST composite"] - before.get("POST composite", 0) == 1
    assert after["GET queryAll"] - before["GET queryAll"] == 2
    assert _spent(world, "deal")["salesforce"] == 1  # and the next slice costs nothing more
