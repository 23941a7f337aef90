"""A backfill's merges overlap its marketing scan (``Engine._merge_early``): once the
CRM's scan is over, unlinked groups holding a marketing record are merged while the
marketing scan goes on. Nothing is created twice: a CRM record waits for its marketing
partner read on a later page (HubSpot itself refuses two contacts with one email).
Real clients and emulators, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.world import World

CHUNK = 50  # an early merge each time a chunk more is stored


def _emails(world: World, kind: str = "Lead") -> list[str]:
    return [str(r.get("Email") or "").lower() for r in world.salesforce.records(kind)]


def _contact_emails(world: World) -> list[str]:
    return [str(c["properties"].get("email") or "").lower() for c in world.hubspot.contacts()]


def test_people_are_written_while_the_marketing_scan_goes_on(world: World) -> None:
    world.engine.chunk = CHUNK
    world.hubspot.seed_contacts(1200)
    # a HubSpot scan slower than Salesforce's (six pages, 0.3 s each at least), as a
    # rate-limited one is: early merges have pages still to come
    world.hubspot.set_latency(300)
    at_first_commit: list[Any] = []

    def first_commit() -> None:
        if not at_first_commit:
            at_first_commit.append(world.store.cursor("hubspot", "contacts"))

    world.engine.before_commit = first_commit
    report = world.cycle()
    # the scan's cursor moves with its last page: the first commit came before it
    assert at_first_commit and at_first_commit[0].since is None
    assert world.store.cursor("hubspot", "contacts").since is not None
    assert report.objects["person"].created["salesforce"] == 1200
    assert sorted(_emails(world)) == sorted(_contact_emails(world))
    assert world.link_count() == 1200 and world.store.counts()["inbox"] == 0
    world.engine.before_commit = None
    again = world.cycle()
    assert sum(again.objects["person"].created.values()) == 0
    assert len(world.salesforce.records("Lead")) == 1200


def test_a_crm_record_waits_for_its_marketing_partner_on_a_later_page(world: World) -> None:
    world.engine.chunk = CHUNK
    world.hubspot.seed_contacts(1200)
    # a lead alone in the CRM whose contact comes late in the scan (far past the first early merges)
    late = sorted(world.hubspot.contacts(), key=lambda c: int(c["id"]))[900]
    email = str(late["properties"]["email"]).lower()
    world.salesforce.add("Lead", {"LastName": "Early", "Company": "X", "Email": email})
    world.cycle()
    assert _emails(world).count(email) == 1
    assert _contact_emails(world).count(email) == 1
    assert len(world.hubspot.contacts()) == 1200
    assert world.link_count() == 1200
