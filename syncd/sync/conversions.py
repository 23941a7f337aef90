"""Records the system converted: a Salesforce lead that became a contact.

The link moves from the converted record to the one it became, so that the person
keeps their one HubSpot contact (none is ever created for the new contact). The new
record enters the merge under the moved link carrying the converted record's stage
("Closed - Converted"): the conversion is a stage transition like any other, in the
stage history. Its partner on the other side is read too, so that it learns the new
record's id in the same cycle.

A converted record is never merged itself (it takes no writes): its inbox row goes once
its link has moved, or at once when it has no link.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

import orjson

from syncd.abc import Connector
from syncd.model import Record, RecordRef
from syncd.state.store import Store, record_from_row
from syncd.sync.cycle import CycleReport
from syncd.sync.intake import Refusal
from syncd.sync.reconcile import CRM, MARKETING, LinkState, Rules


class Converting(Protocol):
    """What the conversions need of the engine (``syncd.sync.engine.Engine`` has it);
    a protocol, so that this module does not import the engine that calls it."""

    @property
    def store(self) -> Store: ...
    @property
    def marketing(self) -> Connector: ...
    @property
    def crm(self) -> Connector: ...
    @property
    def rules(self) -> Mapping[str, Rules]: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...

    def admit(
        self, obj: str, connector: Connector, records: Sequence[Record]
    ) -> tuple[list[Record], list[Refusal]]: ...


def apply(engine: Converting, obj: str, report: CycleReport) -> None:
    """Move the links of converted records in the inbox (one store transaction)."""
    store = engine.store
    rows = store.converted_rows(obj)
    if not rows:
        return
    now = engine.clock()
    drop: list[int] = []
    moves: list[tuple[LinkState, str, Record, RecordRef]] = []
    journal: list[dict[str, Any]] = []
    claimed: set[str] = set()
    row_of: dict[RecordRef, int] = {}
    for row in rows:
        record = record_from_row(row)
        drop.append(row.id)
        target = record.converted.get(obj)
        role = MARKETING if row.system == engine.marketing.system else CRM
        link = store.find_link(obj, role, record.ref.id)
        if target is None or link is None or link.tombstoned:
            continue
        holder = store.find_link(obj, role, target.id)
        if (holder is not None and holder.id != link.id) or target.id in claimed:
            journal.append(
                _note(report, now, link.id, record, "conversion left alone", target, holder)
            )
            continue
        claimed.add(target.id)
        moves.append((link, role, record, target))
        row_of[target] = row.id
    staged: list[tuple[Record, LinkState]] = []
    for role, connector, other in (
        (CRM, engine.crm, engine.marketing),
        (MARKETING, engine.marketing, engine.crm),
    ):
        mine = [m for m in moves if m[1] == role]
        if not mine:
            continue
        became = {r.ref.id: r for r in connector.fetch([target for *_, target in mine])}
        partners = {p.id: (p, link) for link, *_ in mine if (p := _partner(link, role))}
        refs = [RecordRef(other.system, p.kind, p.id) for p, _ in partners.values()]
        for partner in other.fetch(refs):
            staged.append((partner, partners[partner.ref.id][1]))
        for link, _, record, target in mine:
            new = became.get(target.id)
            if new is None:  # not readable (deleted since): leave the link where it is
                continue
            stage = {**new.stage, **record.stage}
            staged.append((replace(new, stage=stage), link))
            report.converted += 1
            journal.append(_note(report, now, link.id, record, "converted", target, None))
            deal = record.converted.get("deal")
            if deal is not None:  # who the opportunity came from, for its attribution
                journal.append(_note(report, now, link.id, record, "converted_deal", deal, None))
    staged, refused = _admit(engine, obj, staged)
    # A conversion into a refused record is tried again each cycle until that record is
    # fixed; its row is held out of the merge meanwhile (merged, it would be dropped).
    held = [row_of[r.record.ref] for r in refused if r.record.ref in row_of]
    drop = [row_id for row_id in drop if row_id not in held]
    moved = [(link.id, role, target) for link, role, _, target in moves if link.id is not None]
    done = {r.ref.id for r, _ in staged}
    moved = [m for m in moved if m[2].id in done]
    store.convert(
        obj,
        moved,
        staged,
        drop,
        journal,
        now=now,
        match=engine.rules[obj].match_field,
        refused=refused,
        held=held,
    )


def _admit(
    engine: Converting, obj: str, staged: list[tuple[Record, LinkState]]
) -> tuple[list[tuple[Record, LinkState]], list[Refusal]]:
    """The records the inbox can take (``syncd.sync.intake``); a link does not move to a
    refused one."""
    refused: list[Refusal] = []
    for connector in (engine.marketing, engine.crm):
        mine = [record for record, _ in staged if record.ref.system == connector.system]
        refused += engine.admit(obj, connector, mine)[1]
    out = {r.record.ref for r in refused}
    return [(record, link) for record, link in staged if record.ref not in out], refused


def _partner(link: LinkState, role: str) -> RecordRef | None:
    """The other side of a link whose ``role`` side was converted."""
    return link.marketing if role == CRM else link.crm


def _note(
    report: CycleReport,
    now: Any,
    link_id: int | None,
    record: Record,
    action: str,
    target: RecordRef,
    holder: LinkState | None,
) -> dict[str, Any]:
    detail: dict[str, Any] = {"from": str(record.ref), "into": str(target)}
    if holder is not None:
        detail["reason"] = f"{target} already belongs to link {holder.id}"
    return {
        "at": now,
        "cycle_id": report.cycle_id,
        "link_id": link_id,
        "system": record.ref.system,
        "record_id": target.id if action == "converted_deal" else record.ref.id,
        "action": action,
        "detail": orjson.dumps(detail).decode(),
    }
