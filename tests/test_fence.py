"""The engine under a fence: once the lease is gone it writes and commits nothing more,
and the next holder's cycle finds what landed (no duplicate, nothing missing)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Connection

from syncd.errors import LeaseLostError
from tests.world import World


class Lease:
    """A purpose-built fence: held until ``lose()``, counting what it let through."""

    def __init__(self) -> None:
        self.lost = threading.Event()
        self.commits = 0

    def lose(self) -> None:
        self.lost.set()

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLostError("taken by another daemon")

    def check_in(self, connection: Connection) -> None:
        self.check()
        self.commits += 1


def test_a_cycle_that_loses_its_lease_mid_write_writes_nothing_more(world: World) -> None:
    world.hubspot.seed_contacts(500)
    lease = Lease()
    world.engine.fence, world.engine.chunk, world.engine.write_batch = lease, 200, 50
    writes: list[str] = []
    passed_on = world.salesforce.dispatch

    def dispatch(request: Any) -> Any:
        if request.method != "GET" and request.path.startswith("/services/data/"):
            writes.append(request.path)
            lease.lose()  # another daemon takes the lease while this batch is in flight
        return passed_on(request)

    world.salesforce.dispatch = dispatch
    with pytest.raises(LeaseLostError):
        world.cycle()
    assert len(writes) == 1  # the batch in flight when the lease went; no other
    assert lease.commits == 0 and world.link_count() == 0  # nothing committed after
    world.engine.fence = None  # the next holder
    world.cycle()
    world.cycle()
    leads = [r for r in world.salesforce.records("Lead") if not r.get("IsDeleted")]
    emails = [str(r["Email"]).lower() for r in leads]
    assert len(emails) == len(set(emails)) == 500
    assert world.link_count() == 500
    # each lead names its contact (HubSpot learns the lead's id with its next update)
    assert {r["Syncd_HubSpot_Id__c"] for r in leads} == {c["id"] for c in world.hubspot.contacts()}
