"""Slow sweeps over linked records: what incremental scans cannot see.

- ``deletions``: HubSpot search never returns archived records, and its archived list
  is in id order, so reading it whole costs a call per 100 archived records every cycle.
  Instead a slice of linked ids is checked with one batch read (``Connector.deletions``);
  what is gone comes back as deleted records and tombstones its link in this cycle's
  merge. Salesforce needs none: ``queryAll`` scans return deleted rows.
- ``associations``: adding a contact to a HubSpot deal, or a contact role to an
  opportunity, does not move the record's own modified date. A slice of linked ids has
  its associations read (``Connector.associations``); an id whose associations would
  change its link is read whole (``fetch``) into the inbox and merged this cycle.

Folded slices: a connector may read a due slice inside its scan's own calls
(``prefetch``, handed the slice by ``prepare`` before the scan): HubSpot checks a
deletion slice in the scan's first search (``hs_object_id IN ids``), Salesforce sends a
contact-role slice in the scan's ``/composite`` call. Such a slice costs no call (only a
follow-up, such as reading a missing id as archived) and runs whenever it is due.

Pacing (per system in syncd.yaml: ``deletion_sweep_minutes``,
``association_sweep_minutes``): a pass over a kind's N linked records is spread over
that period, in slices of the connector's size (HubSpot: 100 ids a deletion slice;
1,000 ids an association slice, one call per associated type; Salesforce: 200
opportunities a contact-role query), at most one slice of each sweep a cycle. On top of
that, what the sweeps of an object spend in calls of their own is at most 0.9 calls per
cycle and system on average (a budget that is not saved beyond one call; a slice may
overdraw it and the next cycles repay), the longest waiting sweep first; folded slices
run whatever the budget. So an idle cycle costs the scan (one search, or one query or
composite) plus what the unfolded slices cost, at most one call on average; and a sweep
finds a change within about ``max(period, slices x cycles per slice)``, where ``slices =
ceil(N / slice size)`` and a slice takes one cycle when folded, ``cost / share`` cycles
otherwise (``share``: the part of the budget it gets, all of it when it is the only
sweep due).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from syncd.abc import Connector
from syncd.model import Record, RecordRef
from syncd.state.store import Store
from syncd.state.sweeps import SweepState
from syncd.sync import canonical
from syncd.sync.cycle import CycleReport
from syncd.sync.reconcile import CRM, MARKETING, LinkState, Rules, split_ids

SWEEPS = ("deletions", "associations")
CALLS_PER_CYCLE = 0.9
"""What the sweeps of one object may spend per system and cycle on average: under one
call, so that with the scan's one call an idle object stays under 2 calls a cycle even
over a short window that starts with a full budget (a budget is never saved beyond one
call)."""


@dataclass(frozen=True, slots=True)
class SweepPeriods:
    """How long one pass of each sweep over a system's linked records takes at least."""

    deletions: timedelta = timedelta(minutes=60)
    associations: timedelta = timedelta(minutes=360)

    def of(self, sweep: str) -> timedelta:
        return self.deletions if sweep == "deletions" else self.associations


class Sweeping(Protocol):
    """What the sweeps need of the engine (``syncd.sync.engine.Engine`` has it)."""

    store: Store
    marketing: Connector
    crm: Connector
    rules: Mapping[str, Rules]
    stopping: threading.Event
    sweeps: Mapping[str, SweepPeriods]
    sweep_budget: dict[tuple[str, str], float]

    @property
    def clock(self) -> Callable[[], datetime]: ...


class Prefetching(Protocol):
    """What a connector that folds sweep slices into its scans has (optional)."""

    def prefetch(self, kind: str, sweep: str, ids: Sequence[str]) -> bool:
        """Have the next scan of ``kind`` read what ``sweep`` needs of ``ids``, within
        the scan's own calls; True when it will."""
        ...


def prepare(engine: Sweeping, obj: str) -> frozenset[tuple[str, str, str]]:
    """Before the scans of ``obj``: hand each due sweep's next slice to a connector that
    folds it into its scan (``prefetch``); the (system, kind, sweep) it took. Those
    slices then cost no call of their own, so they run whatever the budget."""
    folded: set[tuple[str, str, str]] = set()
    now = engine.clock()
    for role, connector in ((MARKETING, engine.marketing), (CRM, engine.crm)):
        prefetch = getattr(connector, "prefetch", None)
        if prefetch is None:
            continue
        for kind in connector.kinds(obj):
            for sweep in SWEEPS:
                size = connector.sweep_slice(kind, sweep)
                if size <= 0:
                    continue
                state = engine.store.sweep_state(connector.system, kind, sweep)
                if state.due is not None and state.due > now:
                    continue
                pairs, _ = engine.store.linked_slice(obj, role, kind, state.after, size)
                if pairs and prefetch(kind, sweep, [native for _, native in pairs]):
                    folded.add((connector.system, kind, sweep))
    return frozenset(folded)


def run(
    engine: Sweeping,
    obj: str,
    report: CycleReport,
    folded: frozenset[tuple[str, str, str]] = frozenset(),
) -> None:
    """The due sweeps of ``obj``, one slice each, while the system's sweep budget for
    ``obj`` lasts (a slice ``folded`` into the scan by ``prepare`` runs regardless);
    what they find goes to the inbox."""
    for role, connector in ((MARKETING, engine.marketing), (CRM, engine.crm)):
        periods = engine.sweeps.get(connector.system, SweepPeriods())
        key = (connector.system, obj)
        budget = engine.sweep_budget
        budget[key] = min(1.0, budget.get(key, 0.0) + CALLS_PER_CYCLE)
        due: list[tuple[datetime, str, str, int]] = []
        for kind in connector.kinds(obj):
            for sweep in SWEEPS:
                size = connector.sweep_slice(kind, sweep)
                if size > 0:
                    state = engine.store.sweep_state(connector.system, kind, sweep)
                    due.append((state.due or datetime.min.replace(tzinfo=UTC), kind, sweep, size))
        now = engine.clock()
        for at, kind, sweep, size in sorted(due):  # the longest waiting first
            free = (connector.system, kind, sweep) in folded
            if at > now or (budget[key] <= 0 and not free) or engine.stopping.is_set():
                continue
            before = sum(connector.api_calls().values())
            found = _slice(engine, obj, role, connector, kind, sweep, size, periods.of(sweep))
            budget[key] -= sum(connector.api_calls().values()) - before
            report.read[connector.system] += found


def _slice(
    engine: Sweeping,
    obj: str,
    role: str,
    connector: Connector,
    kind: str,
    sweep: str,
    size: int,
    period: timedelta,
) -> int:
    """One slice of one sweep; how many records it put in the inbox."""
    store = engine.store
    now = engine.clock()
    state = store.sweep_state(connector.system, kind, sweep)
    pairs, total = store.linked_slice(obj, role, kind, state.after, size)
    ids = [native for _, native in pairs]
    states = store.links_for(obj, role, ids) if ids else {}
    found: list[Record] = []
    if ids and sweep == "deletions":
        found = connector.deletions(kind, ids)
    elif ids:
        found = _changed_associations(engine, obj, role, connector, kind, ids, states, now)
    share = len(pairs) / total if total else 1.0
    after = pairs[-1][0] if len(pairs) == size else 0  # a short slice ends the pass
    # nothing linked yet (a first cycle): look again next cycle, it costs no call
    position = SweepState(after, now + period * share if pairs else None)
    rules = engine.rules[obj]
    store.save_sweep(obj, connector.system, kind, sweep, position, found, states, rules.match_field)
    return len(found)


def _changed_associations(
    engine: Sweeping,
    obj: str,
    role: str,
    connector: Connector,
    kind: str,
    ids: Sequence[str],
    states: Mapping[str, LinkState],
    now: datetime,
) -> list[Record]:
    """The records among ``ids`` that hold an association their link's base lacks, read
    whole (their other fields may have moved on as well).

    Associations are only ever added, never removed (``syncd.sync.canonical``), so a side
    that holds fewer than the base has nothing to sync; and an association to a record
    syncd does not link is left out by ``resolve``, as in any read.
    """
    rules = engine.rules[obj]
    refs = rules.refs()
    values = connector.associations(kind, ids)
    partial = [
        Record(RecordRef(connector.system, kind, id_), dict(fields), now)
        for id_, fields in values.items()
    ]
    changed = []
    for record in canonical.resolve(engine.store, rules, partial):
        link = states.get(record.ref.id)
        if link is None or link.tombstoned:
            continue
        added = {
            name
            for name, value in record.fields.items()
            if name in refs and set(split_ids(value)) - set(split_ids(link.base.get(name)))
        }
        if added:
            changed.append(record.ref)
    return list(connector.fetch(changed)) if changed else []
