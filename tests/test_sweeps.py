"""The sweeps' pacing and budget, on both stores, with a purpose-built fake connector."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from syncd.model import Record
from syncd.state.store import Store
from syncd.state.tables import links
from syncd.sync import sweeps
from syncd.sync.cycle import CycleReport
from syncd.sync.reconcile import Rules
from syncd.sync.sweeps import SweepPeriods
from tests.factories import T0, rules

CADENCE = timedelta(seconds=60)


class Deletions:
    """A system whose linked contacts are checked for deletions, 100 ids a call."""

    def __init__(self, system: str, gone: Sequence[str] = ()) -> None:
        self.system = system
        self.asked: list[list[str]] = []
        self.gone = set(gone)
        self.calls: Counter[str] = Counter()

    def kinds(self, obj: str) -> Sequence[str]:
        return ["contacts"] if self.system == "hubspot" else []

    def sweep_slice(self, kind: str, sweep: str) -> int:
        return 100 if sweep == "deletions" else 0

    def deletions(self, kind: str, ids: Sequence[str]) -> list[Record]:
        self.calls["batch/read"] += 1
        self.asked.append(list(ids))
        return []

    def api_calls(self) -> Mapping[str, int]:
        return dict(self.calls)


@dataclass
class Engine:
    store: Store
    marketing: Deletions
    crm: Deletions
    sweeps: Mapping[str, SweepPeriods]
    rules: Mapping[str, Rules] = field(default_factory=lambda: {"person": rules()})
    stopping: threading.Event = field(default_factory=threading.Event)
    sweep_budget: dict[tuple[str, str], float] = field(default_factory=dict)
    now: list[datetime] = field(default_factory=lambda: [T0])

    @property
    def clock(self) -> Callable[[], datetime]:
        return lambda: self.now[0]


def _linked(store: Store, n: int) -> None:
    rows = [
        {
            "object": "person",
            "marketing_kind": "contacts",
            "marketing_id": str(1000 + i),
            "crm_kind": "Lead",
            "crm_id": f"00Q{i:015d}",
            "created_at": T0,
            "updated_at": T0,
        }
        for i in range(n)
    ]
    with store.engine.begin() as connection:
        connection.execute(links.insert(), rows)


def _cycles(engine: Engine, n: int) -> None:
    for _ in range(n):
        engine.now[0] += CADENCE
        sweeps.run(engine, "person", CycleReport("test"))  # type: ignore[arg-type]


def test_a_pass_is_spread_over_its_period_in_slices_and_wraps(store: Store) -> None:
    _linked(store, 250)
    hubspot = Deletions("hubspot")
    engine = Engine(store, hubspot, Deletions("salesforce"), {"hubspot": SweepPeriods()})
    _cycles(engine, 70)
    # 250 linked in 3 slices over 60 minutes: one every 24 minutes (a short one 12).
    assert [len(ids) for ids in hubspot.asked] == [100, 100, 50, 100]
    assert hubspot.asked[0][0] == "1000" and hubspot.asked[3][0] == "1000"  # wrapped
    assert engine.store.cursors() == []  # sweep positions are no scan cursors


def test_with_no_period_the_budget_keeps_sweeps_under_one_call_a_cycle(store: Store) -> None:
    _linked(store, 5000)
    hubspot = Deletions("hubspot")
    every = SweepPeriods(timedelta(0), timedelta(0))
    engine = Engine(store, hubspot, Deletions("salesforce"), {"hubspot": every})
    _cycles(engine, 40)
    assert 0.85 * 40 <= len(hubspot.asked) <= 0.9 * 40 + 1
    assert len({ids[0] for ids in hubspot.asked}) == len(hubspot.asked)  # a new slice each


class Folding(Deletions):
    """A system that folds its deletion slices into its scans (``prefetch``): a slice it
    was handed costs no call; one it was not is a batch read."""

    def __init__(self, system: str) -> None:
        super().__init__(system)
        self.handed: list[list[str]] = []

    def prefetch(self, kind: str, sweep: str, ids: Sequence[str]) -> bool:
        self.handed.append(list(ids))
        return sweep == "deletions"

    def deletions(self, kind: str, ids: Sequence[str]) -> list[Record]:
        self.asked.append(list(ids))
        if not self.handed or self.handed[-1] != list(ids):
            self.calls["batch/read"] += 1
        return []


def _folded_cycles(engine: Engine, n: int) -> None:
    for _ in range(n):
        engine.now[0] += CADENCE
        folded = sweeps.prepare(engine, "person")  # type: ignore[arg-type]
        sweeps.run(engine, "person", CycleReport("test"), folded)  # type: ignore[arg-type]


def test_a_slice_folded_into_the_scan_runs_every_cycle_at_no_call(store: Store) -> None:
    _linked(store, 250)
    hubspot = Folding("hubspot")
    every = SweepPeriods(timedelta(0), timedelta(0))
    engine = Engine(store, hubspot, Deletions("salesforce"), {"hubspot": every})
    engine.sweep_budget[("hubspot", "person")] = -5.0  # overdrawn by other sweeps
    _folded_cycles(engine, 6)
    # a slice each cycle whatever the budget (overdrawn, it would allow none for 6
    # cycles), each the one handed to the scan, the pass wrapping after 3
    assert hubspot.asked == hubspot.handed
    assert [len(ids) for ids in hubspot.asked] == [100, 100, 50] * 2
    assert hubspot.calls["batch/read"] == 0


def test_a_slice_not_yet_due_is_not_handed_to_the_scan(store: Store) -> None:
    _linked(store, 250)
    hubspot = Folding("hubspot")
    engine = Engine(store, hubspot, Deletions("salesforce"), {"hubspot": SweepPeriods()})
    _folded_cycles(engine, 30)
    # 60 minutes a pass of 3 slices: one every 24 minutes (the short one 12), nothing
    # handed in the cycles between
    assert [len(ids) for ids in hubspot.handed] == [100, 100]
    assert hubspot.asked == hubspot.handed and hubspot.calls["batch/read"] == 0
