"""Storing what one chunk of a cycle did, in one transaction, with batched statements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, select, update

from syncd.abc import Fence
from syncd.model import Change, Outcome, email_key
from syncd.state import gated
from syncd.state.links import base_text, company_of
from syncd.state.refusals import put_dead_letter
from syncd.state.store import Store
from syncd.state.tables import (
    bases,
    dead_letters,
    inbox,
    journal,
    links,
    stage_history,
)
from syncd.sync import killpoints
from syncd.sync.gate import PREFIX as GATE_PREFIX
from syncd.sync.intake import column_length, printable
from syncd.sync.reconcile import HELD_BACK, Conflict, PairPlan, same_base

CODE_LENGTH = column_length(dead_letters.c.code)
RECOVERED = "a write that landed before a crash, found by its partner id: linked, not created again"
"""What the journal says of a link found again by the partner ids syncd wrote."""


def _text(value: Any) -> str:
    """JSON text of a plain value (orjson: the commit of a chunk encodes every base)."""
    return orjson.dumps(value, default=str).decode()


def retry_delay(attempts: int) -> timedelta:
    """Growing delay before a dead-lettered record is tried again (1 min .. 6 h)."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 6 * 3600))


def change_json(change: Change) -> dict[str, Any]:
    return {
        "op": change.op,
        "kind": change.kind,
        "id": change.id,
        "fields": dict(change.fields),
        "stage": dict(change.stage),
        "partner_id": change.partner_id,
    }


def _conflict(conflict: Conflict) -> dict[str, Any]:
    return {
        "field": conflict.field,
        "rule": conflict.rule,
        "marketing": conflict.marketing,
        "crm": conflict.crm,
        "winner": conflict.winner,
    }


@dataclass
class _Landed:
    """A pair whose writes all landed, waiting for its link id."""

    plan: PairPlan
    ids: dict[str, str | None]
    kinds: dict[str, str | None]
    source: str
    link_id: int | None = None


@dataclass
class _Batch:
    cycle_id: str
    now: datetime
    match: str | None
    journal: list[dict[str, Any]] = field(default_factory=list)
    done_rows: list[int] = field(default_factory=list)
    landed: list[_Landed] = field(default_factory=list)

    def key(self, base: Mapping[str, Any]) -> str | None:
        """The matching key of a link with ``base``."""
        return email_key(base.get(self.match)) if self.match else None

    def note(
        self,
        link_id: int | None,
        system: str | None,
        record_id: str | None,
        action: str,
        detail: dict[str, Any],
    ) -> None:
        self.journal.append(
            {
                "at": self.now,
                "cycle_id": self.cycle_id,
                "link_id": link_id,
                "system": system,
                "record_id": record_id,
                "action": action,
                "detail": _text(detail),
            }
        )


def commit_chunk(
    store: Store,
    obj: str,
    cycle_id: str,
    items: list[tuple[PairPlan, list[Any]]],
    outcomes: Mapping[tuple[str, str], Outcome],
    marketing: str,
    crm: str,
    now: datetime,
    match: str | None = "email",
    fence: Fence | None = None,
) -> None:
    """Links, bases, stage history, journal and dead letters; the inbox rows done.

    ``match`` names the base field whose value is the link's matching key. ``fence``
    (the daemon's lease) is checked first in the transaction: a daemon that lost its
    lease commits nothing (``LeaseLostError``).
    """
    batch = _Batch(cycle_id, now, match)
    with store.engine.begin() as connection:
        if fence is not None:
            fence.check_in(connection)
        for plan, rows in items:
            source = plan.marketing or plan.crm
            label = str(source.ref) if source else plan.key
            if plan.skip:
                _skip(connection, batch, plan, label)
                batch.done_rows.extend(row.id for row in rows)
            elif _land_or_fail(connection, batch, obj, plan, rows, outcomes, marketing, crm, label):
                batch.done_rows.extend(row.id for row in rows)
        _gate(connection, batch, obj, items)
        _store_landed(connection, batch, obj, marketing, crm)
        if batch.journal:
            connection.execute(journal.insert(), batch.journal)
        for start in range(0, len(batch.done_rows), 500):
            chunk = batch.done_rows[start : start + 500]
            connection.execute(delete(inbox).where(inbox.c.id.in_(chunk)))
    killpoints.reached("commit.done")


def _gate(
    connection: Connection, batch: _Batch, obj: str, items: list[tuple[PairPlan, list[Any]]]
) -> None:
    """Who the gate held back in this chunk (``gate_held``); the chunk's other unlinked
    marketing records are held no longer (they crossed, were paired with a CRM record, or
    are held for another reason). Chunks of linked pairs, the steady state, cost nothing."""
    held = [
        (plan.marketing, plan.skip)
        for plan, _ in items
        if plan.skip and plan.skip.startswith(GATE_PREFIX) and plan.marketing is not None
    ]
    crossed = [
        plan.marketing.ref
        for plan, _ in items
        if plan.marketing is not None
        and plan.link.id is None
        and not (plan.skip or "").startswith(GATE_PREFIX)
    ]
    if crossed:
        gated.release(connection, [r.system for r in crossed], [r.id for r in crossed])
    gated.hold(connection, obj, [(record, reason) for record, reason in held if reason], batch.now)


def _skip(connection: Connection, batch: _Batch, plan: PairPlan, label: str) -> None:
    if plan.link.id is not None and plan.skip and plan.skip.startswith("deleted"):
        connection.execute(
            update(links)
            .where(links.c.id == plan.link.id, links.c.tombstoned_at.is_(None))
            .values(tombstoned_at=batch.now, tombstone_reason=plan.skip, updated_at=batch.now)
        )
    # A record held back by its stage is journaled as "ignored", once per change of it.
    held = plan.skip and plan.skip.startswith((*HELD_BACK, GATE_PREFIX))
    action = "ignored" if held else "skip"
    batch.note(plan.link.id, None, None, action, {"reason": plan.skip, "record": label})


def _land_or_fail(
    connection: Connection,
    batch: _Batch,
    obj: str,
    plan: PairPlan,
    rows: list[Any],
    outcomes: Mapping[tuple[str, str], Outcome],
    marketing: str,
    crm: str,
    label: str,
) -> bool:
    """Queue a landed pair for storing, or dead-letter its failures; False keeps its rows."""
    ids: dict[str, str | None] = {
        marketing: plan.link.marketing.id if plan.link.marketing else None,
        crm: plan.link.crm.id if plan.link.crm else None,
    }
    kinds: dict[str, str | None] = {
        marketing: plan.link.marketing.kind if plan.link.marketing else None,
        crm: plan.link.crm.kind if plan.link.crm else None,
    }
    failures = []
    for system, change in ((marketing, plan.marketing_change), (crm, plan.crm_change)):
        if change is None:
            continue
        outcome = outcomes.get((system, change.key))
        if outcome is None or not outcome.ok:
            failures.append((system, change, outcome))
        elif change.op == "create":
            ids[system], kinds[system] = outcome.id, change.kind
    if not failures:
        batch.landed.append(_Landed(plan, ids, kinds, label, plan.link.id))
        return True
    attempts = max((row.attempts for row in rows), default=0) + 1
    for system, change, outcome in failures:
        message = outcome.error if outcome and outcome.error else "no outcome reported"
        code = outcome.code if outcome else None
        _dead_letter(connection, obj, system, label, change, message, code, batch.now)
        batch.note(
            plan.link.id,
            system,
            change.id,
            "rejected",
            {"message": message, "code": code, "change": change_json(change)},
        )
    connection.execute(
        update(inbox)
        .where(inbox.c.id.in_([row.id for row in rows]))
        .values(attempts=attempts, not_before=batch.now + retry_delay(attempts))
    )
    return False


def _store_landed(
    connection: Connection, batch: _Batch, obj: str, marketing: str, crm: str
) -> None:
    if not batch.landed:
        return
    now = batch.now
    new = [item for item in batch.landed if item.link_id is None]
    # A replayed commit finds the links it stored before instead of failing on them.
    _find_links(connection, obj, new, marketing, crm)
    fresh = [item for item in new if item.link_id is None]
    if fresh:
        # No RETURNING: SQLite would then insert one row per statement. The ids are
        # read back by the partner ids, which are unique per object.
        connection.execute(
            links.insert(),
            [
                {
                    "object": obj,
                    "marketing_kind": i.kinds[marketing],
                    "marketing_id": i.ids[marketing],
                    "crm_kind": i.kinds[crm],
                    "crm_id": i.ids[crm],
                    "email_key": batch.key(i.plan.base),
                    "created_at": now,
                    "updated_at": now,
                }
                for i in fresh
            ],
        )
        _find_links(connection, obj, fresh, marketing, crm)
        connection.execute(
            bases.insert(),
            [
                {
                    "link_id": i.link_id,
                    "fields": base_text(i.plan.base),
                    "stage": i.plan.stage,
                    "synced_at": now,
                    "company_link": company_of(obj, i.plan.base),
                }
                for i in fresh
            ],
        )
    for item in fresh:
        _note_linked(batch, item)
    fresh_ids = {id(item) for item in fresh}
    # Most pairs of a cycle are echoes of syncd's own writes: nothing to store for them.
    existing = [
        item
        for item in batch.landed
        if id(item) not in fresh_ids
        and not (
            same_base(item.plan.base, item.plan.link.base)
            and item.plan.stage == item.plan.link.stage
        )
    ]
    if existing:
        connection.execute(
            update(bases)
            .where(bases.c.link_id == bindparam("b_link"))
            .values(
                fields=bindparam("b_fields"),
                stage=bindparam("b_stage"),
                synced_at=now,
                company_link=bindparam("b_company"),
            ),
            [
                {
                    "b_link": i.link_id,
                    "b_fields": base_text(i.plan.base),
                    "b_stage": i.plan.stage,
                    "b_company": company_of(obj, i.plan.base),
                }
                for i in existing
            ],
        )
        connection.execute(
            update(links)
            .where(links.c.id == bindparam("l_link"))
            .values(email_key=bindparam("l_email"), updated_at=now),
            [{"l_link": i.link_id, "l_email": batch.key(i.plan.base)} for i in existing],
        )
    _store_history(connection, batch, obj)
    for item in batch.landed:
        for system, change in (
            (marketing, item.plan.marketing_change),
            (crm, item.plan.crm_change),
        ):
            if change is not None:
                batch.note(
                    item.link_id, system, item.ids[system], change.op, _written(change, item)
                )
        if item.plan.conflicts or item.plan.notes:
            batch.note(
                item.link_id,
                None,
                None,
                "decision",
                {
                    "conflicts": [_conflict(c) for c in item.plan.conflicts],
                    "notes": list(item.plan.notes),
                },
            )
    sources = [item.source for item in batch.landed]
    for start in range(0, len(sources), 500):
        connection.execute(
            update(dead_letters)
            .where(
                dead_letters.c.source.in_(sources[start : start + 500]),
                dead_letters.c.resolved_at.is_(None),
            )
            .values(resolved_at=now)
        )


def _written(change: Change, item: _Landed) -> dict[str, Any]:
    """The journal's detail of a write. An update keeps what it wrote; a create keeps
    where it came from and its stage: what it wrote is the link's first base, and a
    backfill journals one create per record (the store's largest share)."""
    if change.op == "create":
        stage = {k: v for k, v in change.stage.items() if v}
        return {"from": item.source, "stage": stage} if stage else {"from": item.source}
    return {"fields": dict(change.fields), "stage": dict(change.stage), "from": item.source}


def _note_linked(batch: _Batch, item: _Landed) -> None:
    """Journal a new link that no create made: two records found to belong together.

    A record naming the other by partner id was paired with it by syncd before: a write
    that landed before a crash (or a store older than the systems), found again and
    linked, not created twice.
    """
    plan = item.plan
    if any(c is not None and c.op == "create" for c in (plan.marketing_change, plan.crm_change)):
        return
    m, c = plan.marketing, plan.crm
    by_partner = bool(m and c and (m.partner_id == c.ref.id or c.partner_id == m.ref.id))
    detail: dict[str, Any] = {
        "record": item.source,
        "marketing": str(m.ref) if m else None,
        "crm": str(c.ref) if c else None,
        "matched_by": "partner id" if by_partner else batch.match,
    }
    if by_partner:
        detail["recovered"] = RECOVERED
    batch.note(item.link_id, None, None, "linked", detail)


def _find_links(
    connection: Connection, obj: str, items: list[_Landed], marketing: str, crm: str
) -> None:
    """Set ``link_id`` on the items whose link exists, found by either side's id."""
    by_marketing = {i.ids[marketing]: i for i in items if i.ids[marketing]}
    by_crm = {i.ids[crm]: i for i in items if i.ids[crm]}
    for column, wanted in ((links.c.marketing_id, by_marketing), (links.c.crm_id, by_crm)):
        keys = list(wanted)
        for start in range(0, len(keys), 500):
            found = connection.execute(
                select(links.c.id, column).where(
                    links.c.object == obj, column.in_(keys[start : start + 500])
                )
            )
            for link_id, key in found:
                wanted[key].link_id = link_id


def _store_history(connection: Connection, batch: _Batch, obj: str) -> None:
    """Append the stage transitions not already recorded (a replay adds none)."""
    wanted = [(i.link_id, t) for i in batch.landed for t in i.plan.transitions]
    if not wanted:
        return
    link_ids = sorted({link_id for link_id, _ in wanted if link_id is not None})
    seen: set[tuple[int | None, str, datetime]] = set()
    for start in range(0, len(link_ids), 500):
        for row in connection.execute(
            select(stage_history.c.link_id, stage_history.c.to_stage, stage_history.c.at).where(
                stage_history.c.link_id.in_(link_ids[start : start + 500])
            )
        ):
            at = row.at if row.at.tzinfo else row.at.replace(tzinfo=batch.now.tzinfo)
            seen.add((row.link_id, row.to_stage, at))
    rows = []
    for link_id, t in wanted:
        key = (link_id, t.to_stage, t.at)
        if link_id is None or key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "link_id": link_id,
                "object": obj,
                "from_stage": t.from_stage,
                "to_stage": t.to_stage,
                "at": t.at,
                "source_system": t.source.system,
                "source_record": str(t.source),
                "reason": t.reason,
                "snapshot": _text(dict(t.snapshot)) if t.snapshot is not None else None,
            }
        )
    if rows:
        connection.execute(stage_history.insert(), rows)


def _dead_letter(
    connection: Connection,
    obj: str,
    system: str,
    source: str,
    change: Change,
    message: str,
    code: str | None,
    now: datetime,
) -> None:
    values: dict[str, object] = {
        "change": _text(change_json(change)),
        # A system's message may quote the refused value (NUL included; PostgreSQL text
        # refuses NUL) and its code is the system's too: stored as the columns hold them.
        "message": printable(message),
        "code": printable(code)[:CODE_LENGTH] if code else None,
        "target_id": change.id,
    }
    put_dead_letter(connection, obj, system, source, values, now)
