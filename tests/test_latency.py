"""Propagation figures held compact (issue 11, memory at a million people): 4 bytes a
change, and a cycle's total shares its objects' figures instead of copying them."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta

from syncd.model import Change, Outcome, Record, RecordRef
from syncd.sync.cycle import CycleReport, propagated, summary
from syncd.sync.latency import MOST_MS, Latencies
from syncd.sync.reconcile import LinkState, PairPlan

CHANGES = 100_000


def _traced(build: object) -> tuple[object, int]:
    """What ``build()`` returns and the bytes it left allocated."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = build()  # type: ignore[operator]
        return built, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _part(changes: int) -> CycleReport:
    part = CycleReport("c1")
    part.propagation["hubspot_to_salesforce"] = Latencies(i / 7 for i in range(changes))
    return part


def test_a_figure_takes_four_bytes() -> None:
    held, size = _traced(lambda: Latencies(i / 7 for i in range(CHANGES)))
    assert len(held) == CHANGES  # type: ignore[arg-type]
    assert size < 4.5 * CHANGES  # 8 as doubles, 32 as a list of floats


def test_a_total_shares_its_objects_figures() -> None:
    parts = {obj: _part(CHANGES) for obj in ("company", "person", "deal")}
    total = CycleReport("c1")

    def add() -> CycleReport:
        for obj, part in parts.items():
            total.add(obj, part)
        return total

    _, size = _traced(add)
    assert size < 0.1 * CHANGES  # a copy of the figures took 12 bytes a change and more
    way = total.propagation["hubspot_to_salesforce"]
    assert len(way) == 3 * CHANGES
    assert list(way)[CHANGES : CHANGES + 3] == [0.0, 0.143, 0.286]
    parts["person"].propagation["hubspot_to_salesforce"].append(1.0)  # a part stays its own
    total.propagation["hubspot_to_salesforce"].append(2.0)
    assert len(way) == 3 * CHANGES + 1 and list(way)[-1] == 2.0


def test_figures_are_whole_milliseconds_and_summarised_as_before() -> None:
    seconds = Latencies([0.0004, 1.2346, -3.0, 42.5, 10.0**8])
    assert list(seconds) == [0.0, 1.235, 0.0, 42.5, MOST_MS / 1000]
    assert summary(Latencies([3.0, 1.0, 2.0])) == {
        "changes": 3,
        "p50_s": 2,
        "p95_s": 3,
        "max_s": 3,
    }


def test_propagated_measures_each_landed_write() -> None:
    landed = datetime(2026, 12, 4, 12, tzinfo=UTC)
    source = Record(RecordRef("hubspot", "contacts", "1"), {}, landed - timedelta(seconds=1.5))
    change = Change("create", "Lead", "k1", None)
    plan = PairPlan("k1", LinkState(None, None, None), source, None, crm_change=change)
    report = CycleReport("c1")
    propagated(report, [plan], {("salesforce", "k1"): Outcome("k1", True)}, *_systems(), landed)
    propagated(report, [plan], {("salesforce", "k1"): Outcome("k1", False)}, *_systems(), landed)
    assert report.as_dict()["propagation"] == {
        "hubspot_to_salesforce": {"changes": 1, "p50_s": 1.5, "p95_s": 1.5, "max_s": 1.5}
    }


def _systems() -> tuple[str, str]:
    return "hubspot", "salesforce"
