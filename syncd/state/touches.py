"""First touches and owners in the store: which hand-off an activity follows, the first
one kept (``syncd.sync.touches`` has the rules)."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select, update

from syncd.model import Activity, Owner
from syncd.state.tables import crm_owners, first_touches, links, sla_breaches, stage_history

ACTIVITY_CURSOR = "activity:"
"""The prefix of the cursor kinds of activity scans (``activity:Task``)."""
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Touch:
    """The first touch kept for one hand-off."""

    link_id: int
    handoff_at: datetime
    touched_at: datetime
    activity_id: str
    channel: str
    owner_id: str | None


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _chunks(items: Sequence[object], size: int = _CHUNK) -> list[list[object]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def person_links(connection: Connection, crm_ids: Sequence[str]) -> dict[str, int]:
    """CRM person id -> link id, for the ids that are linked."""
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(crm_ids))):
        rows = connection.execute(
            select(links.c.id, links.c.crm_id).where(
                links.c.object == "person", links.c.crm_id.in_(chunk)
            )
        )
        found.update({str(row.crm_id): int(row.id) for row in rows})
    return found


def handoffs(
    connection: Connection, link_ids: Sequence[int], stage: str
) -> dict[int, list[datetime]]:
    """Per link, the times of its transitions into the hand-off ``stage``, ascending."""
    found: dict[int, list[datetime]] = defaultdict(list)
    for chunk in _chunks(sorted(set(link_ids))):
        rows = connection.execute(
            select(stage_history.c.link_id, stage_history.c.at).where(
                stage_history.c.object == "person",
                stage_history.c.to_stage == stage,
                stage_history.c.link_id.in_(chunk),
            )
        )
        for row in rows:
            found[int(row.link_id)].append(_utc(row.at))
    return {link: sorted(times) for link, times in found.items()}


def _kept(connection: Connection, link_ids: Sequence[int]) -> dict[tuple[int, datetime], Touch]:
    found: dict[tuple[int, datetime], Touch] = {}
    for chunk in _chunks(sorted(set(link_ids))):
        for row in connection.execute(
            select(first_touches).where(first_touches.c.link_id.in_(chunk))
        ):
            touch = _touch(row)
            found[(touch.link_id, touch.handoff_at)] = touch
    return found


def _touch(row: object) -> Touch:
    return Touch(
        int(row.link_id),  # type: ignore[attr-defined]
        _utc(row.handoff_at),  # type: ignore[attr-defined]
        _utc(row.touched_at),  # type: ignore[attr-defined]
        str(row.activity_id),  # type: ignore[attr-defined]
        str(row.channel),  # type: ignore[attr-defined]
        row.owner_id,  # type: ignore[attr-defined]
    )


def keep(
    connection: Connection,
    activities: Sequence[Activity],
    stage: str,
    now: datetime,
) -> list[Touch]:
    """Keep, for each hand-off, the earliest activity at or after it (and before the
    person's next hand-off): the touches newly kept or made earlier, in the transaction
    of ``connection``. Activities on people syncd has not linked, or before any
    hand-off, are left out."""
    link_of = person_links(connection, [a.person_id for a in activities])
    times = handoffs(connection, list(set(link_of.values())), stage)
    kept = _kept(connection, list(times))
    changed: dict[tuple[int, datetime], Touch] = {}
    for item in sorted(activities, key=lambda a: (a.at, a.ref.id)):
        link = link_of.get(item.person_id)
        if link is None or link not in times:
            continue
        at = _utc(item.at)
        index = bisect_right(times[link], at)
        if index == 0:
            continue  # before the first hand-off: not a follow-up
        key = (link, times[link][index - 1])
        current = changed.get(key) or kept.get(key)
        if current is not None and (current.touched_at, current.activity_id) <= (at, item.ref.id):
            continue
        touch = Touch(link, key[1], at, item.ref.id, item.channel, item.owner_id)
        values = {
            "touched_at": at,
            "system": item.ref.system,
            "activity_kind": item.ref.kind,
            "activity_id": item.ref.id,
            "channel": item.channel,
            "owner_id": item.owner_id,
            "read_at": now,
        }
        if current is None and key not in changed:
            connection.execute(
                first_touches.insert(), {"link_id": link, "handoff_at": key[1], **values}
            )
        else:
            connection.execute(
                update(first_touches).where(
                    first_touches.c.link_id == link, first_touches.c.handoff_at == key[1]
                ),
                values,
            )
        changed[key] = touch
    return list(changed.values())


def unknown_owners(engine: Engine, system: str) -> list[str]:
    """Owner ids of kept touches and breaches whose user has not been read yet."""
    known = select(crm_owners.c.owner_id).where(crm_owners.c.system == system)
    with engine.connect() as connection:
        found = set(
            connection.scalars(
                select(first_touches.c.owner_id)
                .where(first_touches.c.owner_id.is_not(None))
                .where(first_touches.c.owner_id.not_in(known))
                .distinct()
            )
        )
        found |= set(
            connection.scalars(
                select(sla_breaches.c.owner_id)
                .where(sla_breaches.c.owner_id.is_not(None))
                .where(sla_breaches.c.owner_id.not_in(known))
                .distinct()
            )
        )
    return sorted(str(i) for i in found)


def save_owners(engine: Engine, system: str, owners: Sequence[Owner], now: datetime) -> None:
    """Keep (or refresh) users' names by id."""
    with engine.begin() as connection:
        for owner in owners:
            values = {"name": owner.name[:255], "email": owner.email, "active": owner.active}
            done = connection.execute(
                update(crm_owners).where(
                    crm_owners.c.system == system, crm_owners.c.owner_id == owner.id
                ),
                {**values, "read_at": now},
            )
            if done.rowcount == 0:
                connection.execute(
                    crm_owners.insert(),
                    {"system": system, "owner_id": owner.id, **values, "read_at": now},
                )


def owner_names(connection: Connection) -> Mapping[str, str]:
    """Every known owner's name by id."""
    rows = connection.execute(select(crm_owners.c.owner_id, crm_owners.c.name))
    return {str(row.owner_id): str(row.name) for row in rows}


def touches(connection: Connection) -> list[Touch]:
    """Every first touch kept."""
    return [_touch(row) for row in connection.execute(select(first_touches))]
