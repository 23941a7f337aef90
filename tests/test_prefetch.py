"""The next object's scan begins while this object's merges and writes finish
(``syncd.sync.engine._Prefetch``): its pages are stored only once this object is committed,
are read once, and a cycle that stops drops them. Real clients and emulators, on SQLite
and PostgreSQL."""

from __future__ import annotations

import threading
import time

from syncd.model import Cursor
from tests.world import World

CONTACT_SEARCH = "POST /crm/v3/objects/contacts/search"


def _prefetching() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "prefetch"]


def _searches(world: World) -> int:
    return world.hubspot.calls().get(CONTACT_SEARCH, 0)


def test_the_people_scan_begins_while_the_companies_commit(world: World) -> None:
    world.hubspot.seed_sales(300, 30, 30)
    seen: list[int] = []
    people_cursor: list[object] = []

    def at_commit() -> None:
        if seen:
            return
        deadline = time.monotonic() + 10
        while _searches(world) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        seen.append(_searches(world))
        people_cursor.append(world.store.cursor("hubspot", "contacts"))

    world.engine.before_commit = at_commit  # the companies' first chunk, writes done
    world.cycle()
    assert seen and seen[0] >= 1  # people were being read before the companies committed
    assert people_cursor[0].since is None  # ... but nothing of them stored yet
    assert world.link_count() == 360
    assert len(world.salesforce.records("Lead")) == 300
    assert not _prefetching()


def test_prefetched_pages_are_read_once(world: World) -> None:
    world.hubspot.seed_sales(450, 10, 10)
    world.cycle()
    prefetched = _searches(world)
    world.hubspot.reset_calls()
    # the same contacts scanned again from the start, at once: the pages one scan takes
    pages = list(world.engine.marketing.changes("contacts", Cursor()))
    assert sum(len(p.records) for p in pages) == 450
    assert prefetched == _searches(world) >= 2
    assert world.link_count() == 470


def test_a_cycle_stopped_before_the_next_object_drops_its_prefetch(world: World) -> None:
    world.hubspot.seed_sales(300, 30, 30)

    def stop() -> None:
        world.engine.stopping.set()

    world.engine.before_commit = stop  # during the companies' merge: people prefetched
    world.cycle()
    assert not _prefetching()
    assert world.store.cursor("hubspot", "contacts").since is None
    world.engine.stopping.clear()
    world.engine.before_commit = None
    world.cycle()
    world.cycle()
    assert world.link_count() == 360
    assert len(world.salesforce.records("Lead")) == 300
