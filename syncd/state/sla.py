"""SLA breaches in the store: which hand-offs are due, what was written about each, and
the journal of it (``syncd.sync.sla`` has the rules)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update

from syncd.state.refusals import put_dead_letter
from syncd.state.tables import bases, first_touches, journal, links, sla_breaches, stage_history
from syncd.state.touches import Touch

OFF, INTENT, WRITTEN, REFUSED, SKIPPED, CLEARED = (
    "off",
    "intent",
    "written",
    "refused",
    "skipped",
    "cleared",
)


@dataclass(frozen=True, slots=True)
class Breach:
    """One row of ``sla_breaches`` with the ids of its person."""

    link_id: int
    handoff_at: datetime
    crm_kind: str | None
    crm_id: str | None
    marketing_id: str | None
    owner_id: str | None
    task_state: str
    flag_state: str
    touched: bool

    @property
    def key(self) -> str:
        """The hand-off's name in markers and journal entries: ``link@epoch seconds``."""
        return f"{self.link_id}@{int(self.handoff_at.timestamp())}"


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def open_new(
    connection: Connection,
    stage: str,
    sla: timedelta,
    look_back: timedelta,
    now: datetime,
    *,
    task: bool,
    flag: bool,
) -> int:
    """Store an intent for every hand-off newly past its SLA: the person's latest
    transition into ``stage``, at most ``look_back`` old, with no touch, the person still
    at that stage and linked to both systems; how many."""
    latest = (
        select(stage_history.c.link_id, func.max(stage_history.c.at).label("at"))
        .where(stage_history.c.object == "person", stage_history.c.to_stage == stage)
        .group_by(stage_history.c.link_id)
        .subquery()
    )
    rows = connection.execute(
        select(latest.c.link_id, latest.c.at, links.c.crm_id, links.c.marketing_id)
        .join(links, links.c.id == latest.c.link_id)
        .join(bases, bases.c.link_id == latest.c.link_id)
        .where(
            latest.c.at <= now - sla,
            latest.c.at >= now - look_back,
            links.c.tombstoned_at.is_(None),
            bases.c.stage == stage,
        )
    ).all()
    if not rows:
        return 0
    ids = [int(r.link_id) for r in rows]
    taken = {
        (int(r.link_id), _utc(r.handoff_at))
        for table in (first_touches, sla_breaches)
        for r in connection.execute(
            select(table.c.link_id, table.c.handoff_at).where(table.c.link_id.in_(ids))
        )
    }
    new = [r for r in rows if (int(r.link_id), _utc(r.at)) not in taken]
    for r in new:
        connection.execute(
            sla_breaches.insert(),
            {
                "link_id": r.link_id,
                "handoff_at": _utc(r.at),
                "breached_at": now,
                "crm_id": r.crm_id,
                "marketing_id": r.marketing_id,
                "task_state": INTENT if task and r.crm_id else OFF,
                "flag_state": INTENT if flag and r.marketing_id else OFF,
                "updated_at": now,
            },
        )
    return len(new)


def pending(connection: Connection) -> list[Breach]:
    """Breaches with something still to write: an intent, or a flag to clear."""
    rows = connection.execute(
        select(sla_breaches, links.c.crm_kind)
        .join(links, links.c.id == sla_breaches.c.link_id)
        .where(
            (sla_breaches.c.task_state == INTENT)
            | (sla_breaches.c.flag_state == INTENT)
            | (sla_breaches.c.touched_at.is_not(None) & (sla_breaches.c.flag_state == WRITTEN))
        )
        .order_by(sla_breaches.c.link_id)
    )
    return [
        Breach(
            int(r.link_id),
            _utc(r.handoff_at),
            r.crm_kind,
            r.crm_id,
            r.marketing_id,
            r.owner_id,
            r.task_state,
            r.flag_state,
            r.touched_at is not None,
        )
        for r in rows
    ]


def touched(connection: Connection, touches: Iterable[Touch]) -> None:
    """Note the first touch on the breaches it answers (their flags are then cleared)."""
    for touch in touches:
        connection.execute(
            update(sla_breaches)
            .where(
                sla_breaches.c.link_id == touch.link_id,
                sla_breaches.c.handoff_at == touch.handoff_at,
            )
            .values(touched_at=touch.touched_at)
        )


def settle(
    connection: Connection,
    breach: Breach,
    now: datetime,
    cycle_id: str,
    **values: Any,
) -> None:
    """Store what became of a breach's writes (``task_state``, ``flag_state``, ...)."""
    connection.execute(
        update(sla_breaches)
        .where(
            sla_breaches.c.link_id == breach.link_id,
            sla_breaches.c.handoff_at == breach.handoff_at,
        )
        .values(updated_at=now, **values)
    )


def journal_entry(
    connection: Connection,
    breach: Breach,
    system: str,
    record_id: str | None,
    action: str,
    detail: Mapping[str, Any],
    now: datetime,
    cycle_id: str,
) -> None:
    connection.execute(
        journal.insert(),
        {
            "at": now,
            "cycle_id": cycle_id,
            "link_id": breach.link_id,
            "system": system,
            "record_id": record_id,
            "action": action,
            "detail": orjson.dumps({"handoff": breach.key, **detail}).decode(),
        },
    )


def refused(
    connection: Connection,
    breach: Breach,
    system: str,
    target: str | None,
    message: str,
    code: str | None,
    change: Mapping[str, Any],
    now: datetime,
) -> None:
    """A write the system refused: a dead letter with its own message."""
    put_dead_letter(
        connection,
        "person",
        system,
        f"sla:{breach.key}",
        {
            "change": orjson.dumps(dict(change)).decode(),
            "message": message,
            "code": (code or "")[:100] or None,
            "target_id": target,
        },
        now,
    )


def breaches(connection: Connection) -> Sequence[Any]:
    """Every breach row (for tests and ``syncd explain``)."""
    return connection.execute(select(sla_breaches).order_by(sla_breaches.c.link_id)).all()
