"""Storing what one chunk of a cycle did, in one transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update

from syncd.model import Change, Outcome, email_key
from syncd.reconcile import PairPlan
from syncd.state.store import Store
from syncd.state.tables import bases, dead_letters, inbox, journal, links, stage_history


def _retry_delay(attempts: int) -> timedelta:
    """Growing delay before a dead-lettered record is tried again (1 min .. 6 h)."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 6 * 3600))


def _change_json(change: Change) -> str:
    return json.dumps(
        {
            "op": change.op,
            "kind": change.kind,
            "id": change.id,
            "fields": dict(change.fields),
            "stage": dict(change.stage),
            "partner_id": change.partner_id,
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
) -> None:
    """Links, bases, stage history, journal and dead letters; the inbox rows done."""
    with store.engine.begin() as connection:
        done_rows: list[int] = []
        for plan, rows in items:
            if _commit_pair(connection, obj, cycle_id, plan, rows, outcomes, marketing, crm, now):
                done_rows.extend(row.id for row in rows)
        for start in range(0, len(done_rows), 500):
            connection.execute(delete(inbox).where(inbox.c.id.in_(done_rows[start : start + 500])))


def _journal(
    connection: Connection,
    cycle_id: str,
    now: datetime,
    link_id: int | None,
    system: str | None,
    record_id: str | None,
    action: str,
    detail: dict[str, Any],
) -> None:
    connection.execute(
        journal.insert(),
        {
            "at": now,
            "cycle_id": cycle_id,
            "link_id": link_id,
            "system": system,
            "record_id": record_id,
            "action": action,
            "detail": json.dumps(detail, default=str),
        },
    )


def _commit_pair(
    connection: Connection,
    obj: str,
    cycle_id: str,
    plan: PairPlan,
    rows: list[Any],
    outcomes: Mapping[tuple[str, str], Outcome],
    marketing: str,
    crm: str,
    now: datetime,
) -> bool:
    """Store one pair's result; False when it stays in the inbox to be retried."""
    source = plan.marketing or plan.crm
    if plan.skip:
        if plan.link.id is not None and plan.skip.startswith("deleted"):
            connection.execute(
                update(links)
                .where(links.c.id == plan.link.id, links.c.tombstoned_at.is_(None))
                .values(tombstoned_at=now, tombstone_reason=plan.skip, updated_at=now)
            )
        _journal(
            connection,
            cycle_id,
            now,
            plan.link.id,
            source.ref.system if source else None,
            source.ref.id if source else None,
            "skip",
            {"reason": plan.skip},
        )
        return True

    failures = []
    ids: dict[str, str | None] = {
        marketing: plan.link.marketing.id if plan.link.marketing else None,
        crm: plan.link.crm.id if plan.link.crm else None,
    }
    kinds: dict[str, str | None] = {
        marketing: plan.link.marketing.kind if plan.link.marketing else None,
        crm: plan.link.crm.kind if plan.link.crm else None,
    }
    for system, change in ((marketing, plan.marketing_change), (crm, plan.crm_change)):
        if change is None:
            continue
        outcome = outcomes.get((system, change.key))
        if outcome is None or not outcome.ok:
            failures.append((system, change, outcome))
        elif change.op == "create":
            ids[system], kinds[system] = outcome.id, change.kind

    source_label = str(source.ref) if source else plan.key
    if failures:
        attempts = max((row.attempts for row in rows), default=0) + 1
        for system, change, outcome in failures:
            message = outcome.error if outcome and outcome.error else "no outcome reported"
            _dead_letter(
                connection,
                obj,
                system,
                source_label,
                change,
                message,
                outcome.code if outcome else None,
                now,
            )
            _journal(
                connection,
                cycle_id,
                now,
                plan.link.id,
                system,
                change.id,
                "rejected",
                {"message": message, "change": json.loads(_change_json(change))},
            )
        connection.execute(
            update(inbox)
            .where(inbox.c.id.in_([row.id for row in rows]))
            .values(attempts=attempts, not_before=now + _retry_delay(attempts))
        )
        return False

    link_id = plan.link.id
    email = email_key(plan.base.get("email"))
    if link_id is None:
        # A replayed commit finds the link it stored before instead of failing on it.
        link_id = connection.scalar(
            select(links.c.id).where(
                links.c.object == obj,
                (links.c.marketing_id == ids[marketing]) | (links.c.crm_id == ids[crm]),
            )
        )
    if link_id is None:
        inserted = connection.execute(
            links.insert().values(
                object=obj,
                marketing_kind=kinds[marketing],
                marketing_id=ids[marketing],
                crm_kind=kinds[crm],
                crm_id=ids[crm],
                email_key=email,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None
        link_id = inserted[0]
        connection.execute(
            bases.insert(),
            {
                "link_id": link_id,
                "fields": json.dumps(dict(plan.base)),
                "stage": plan.stage,
                "synced_at": now,
            },
        )
    else:
        connection.execute(
            update(links).where(links.c.id == link_id).values(email_key=email, updated_at=now)
        )
        changed = (
            update(bases)
            .where(bases.c.link_id == link_id)
            .values(fields=json.dumps(dict(plan.base)), stage=plan.stage, synced_at=now)
        )
        if connection.execute(changed).rowcount == 0:
            connection.execute(
                bases.insert(),
                {
                    "link_id": link_id,
                    "fields": json.dumps(dict(plan.base)),
                    "stage": plan.stage,
                    "synced_at": now,
                },
            )
    for transition in plan.transitions:
        exists = connection.scalar(
            select(stage_history.c.id).where(
                stage_history.c.link_id == link_id,
                stage_history.c.to_stage == transition.to_stage,
                stage_history.c.at == transition.at,
            )
        )
        if exists is None:
            connection.execute(
                stage_history.insert(),
                {
                    "link_id": link_id,
                    "object": obj,
                    "from_stage": transition.from_stage,
                    "to_stage": transition.to_stage,
                    "at": transition.at,
                    "source_system": transition.source.system,
                    "source_record": str(transition.source),
                },
            )
    for system, change in ((marketing, plan.marketing_change), (crm, plan.crm_change)):
        if change is not None:
            _journal(
                connection,
                cycle_id,
                now,
                link_id,
                system,
                ids[system],
                change.op,
                {"fields": dict(change.fields), "stage": dict(change.stage), "from": source_label},
            )
    if plan.conflicts or plan.notes:
        _journal(
            connection,
            cycle_id,
            now,
            link_id,
            None,
            None,
            "decision",
            {"conflicts": [_conflict(c) for c in plan.conflicts], "notes": list(plan.notes)},
        )
    connection.execute(
        update(dead_letters)
        .where(dead_letters.c.source == source_label, dead_letters.c.resolved_at.is_(None))
        .values(resolved_at=now)
    )
    return True


def _conflict(conflict: Any) -> dict[str, Any]:
    return {
        "field": conflict.field,
        "rule": conflict.rule,
        "marketing": conflict.marketing,
        "crm": conflict.crm,
        "winner": conflict.winner,
    }


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
    existing = connection.execute(
        select(dead_letters.c.id, dead_letters.c.attempts).where(
            dead_letters.c.system == system, dead_letters.c.source == source
        )
    ).first()
    values = {
        "change": _change_json(change),
        "message": message,
        "code": code,
        "last_at": now,
        "target_id": change.id,
        "resolved_at": None,
    }
    if existing:
        connection.execute(
            update(dead_letters)
            .where(dead_letters.c.id == existing.id)
            .values(attempts=existing.attempts + 1, **values)
        )
    else:
        connection.execute(
            dead_letters.insert(),
            {
                "object": obj,
                "system": system,
                "source": source,
                "attempts": 1,
                "first_at": now,
                **values,
            },
        )
