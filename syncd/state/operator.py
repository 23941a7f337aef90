"""Dead letters and their retry queue, as the operator sees and changes them
(``syncd errors``, ``syncd errors dismiss``, ``syncd retry``): the store alone, no API calls.

A dead letter's ``source`` is the record its pair was read as (``hubspot:contacts:1001``)
or a plan key without a record (``loop:12``, the closed loop's move of person link 12).
The inbox rows waiting for a retry are the source record's row and the rows of the same
pair (same link, or same pair key while unlinked). The closed loop keeps no inbox rows:
it tries its refused moves again every cycle by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, or_, select, update

from syncd.state.links import chunks
from syncd.state.store import OPEN_LETTER, Store, aware
from syncd.state.tables import dead_letters, inbox, links

UNRESOLVED = dead_letters.c.resolved_at.is_(None)


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter, with the inbox rows of its source still waiting for a retry."""

    id: int
    object: str
    system: str
    source: str
    target_id: str | None
    change: dict[str, Any]
    message: str
    code: str | None
    attempts: int
    first_at: datetime
    last_at: datetime
    resolved_at: datetime | None
    dismissed_at: datetime | None
    dismissed_reason: str | None
    queued: int = 0
    next_retry_at: datetime | None = None
    """The earliest ``not_before`` of the waiting rows; None when due or none wait."""

    @property
    def state(self) -> str:
        if self.resolved_at is not None:
            return "resolved"
        return "dismissed" if self.dismissed_at is not None else "open"

    @property
    def by_closed_loop(self) -> bool:
        """A refused closed-loop move: tried again each cycle, without inbox rows."""
        return self.source.startswith("loop:")

    def next_retry(self, now: datetime) -> str | None:
        """When it is tried again: a time, ``next cycle``, ``each cycle``, or None."""
        if self.state != "open":
            return None
        if self.queued:
            due = self.next_retry_at
            return str(due) if due and due > now else "next cycle"
        return "each cycle (closed loop)" if self.by_closed_loop else None

    def as_dict(self, now: datetime) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {**fields, "state": self.state, "next_retry": self.next_retry(now)}


@dataclass(frozen=True, slots=True)
class Dismissal:
    """What ``dismiss`` did; nothing at all when ``missing`` names an id."""

    dismissed: list[Letter] = field(default_factory=list)
    skipped: list[tuple[Letter, str]] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    unqueued: int = 0
    """Inbox rows taken off the retry queue."""


@dataclass(frozen=True, slots=True)
class Requeue:
    """What ``retry`` did; nothing at all when ``missing`` names an id."""

    queued: list[Letter] = field(default_factory=list)
    not_queued: list[Letter] = field(default_factory=list)
    """Letters with no inbox rows: a closed-loop move, or a record no longer waiting."""
    skipped: list[tuple[Letter, str]] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def ref_of(source: str) -> tuple[str, str, str] | None:
    """(system, kind, id) of a record ref ``system:kind:id``; None for a plan key."""
    parts = source.split(":", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def letters(
    store: Store,
    *,
    system: str | None = None,
    obj: str | None = None,
    code: str | None = None,
    since: datetime | None = None,
    everything: bool = False,
) -> list[Letter]:
    """Open dead letters (``everything``: also resolved and dismissed), newest first.

    ``since`` keeps the letters last seen at or after it.
    """
    query = select(dead_letters).order_by(dead_letters.c.last_at.desc(), dead_letters.c.id.desc())
    for column, wanted in (
        (dead_letters.c.system, system),
        (dead_letters.c.object, obj),
        (dead_letters.c.code, code),
    ):
        if wanted is not None:
            query = query.where(column == wanted)
    if since is not None:
        query = query.where(dead_letters.c.last_at >= since)
    if not everything:
        query = query.where(OPEN_LETTER)
    with store.engine.connect() as connection:
        return with_waiting_rows(connection, list(connection.execute(query)))


def dismiss(store: Store, ids: Sequence[int], reason: str | None, now: datetime) -> Dismissal:
    """Mark open dead letters dismissed and take the records whose values were refused
    off the retry queue. The letters are kept.

    A later change of such a record is read and tried again like any other change.
    """
    with store.engine.begin() as connection:
        found, missing = _by_ids(connection, ids)
        if missing:
            return Dismissal(missing=missing)
        skipped = [(x, f"already {x.state}") for x in found if x.state != "open"]
        chosen = [x for x in found if x.state == "open"]
        if not chosen:
            return Dismissal(skipped=skipped)
        connection.execute(
            update(dead_letters)
            .where(dead_letters.c.id.in_([x.id for x in chosen]))
            .values(dismissed_at=now, dismissed_reason=reason)
        )
        # The rows that carry the refused values (the other system's records of a linked
        # pair) leave the queue; the refusing system's own rows stay, so that its edits
        # still flow. An unlinked pair leaves whole: one side alone would be created anew.
        groups = _rows_by_letter(connection, chosen)
        refusing = {x.id: x.system for x in chosen}
        row_ids = sorted(
            {
                row.id
                for i, rows in groups.items()
                for row in rows
                if row.system != refusing[i] or row.link_id is None
            }
        )
        for chunk in chunks(row_ids, 500):
            connection.execute(delete(inbox).where(inbox.c.id.in_(chunk)))
        dismissed = [
            replace(x, dismissed_at=now, dismissed_reason=reason, queued=0, next_retry_at=None)
            for x in chosen
        ]
        return Dismissal(dismissed, skipped, [], len(row_ids))


def retry(
    store: Store,
    ids: Sequence[int] | None,
    *,
    include_dismissed: bool = False,
) -> Requeue:
    """Make the inbox rows of dead letters due at the next cycle (their attempts are kept).

    ``ids`` None takes every open letter. A dismissed letter is skipped unless
    ``include_dismissed``; then it is open again. Resolved letters are skipped.
    """
    with store.engine.begin() as connection:
        if ids is None:
            wanted = UNRESOLVED if include_dismissed else OPEN_LETTER
            rows = list(connection.execute(select(dead_letters).where(wanted)))
            found, missing = with_waiting_rows(connection, rows), list[int]()
        else:
            found, missing = _by_ids(connection, ids)
        if missing:
            return Requeue(missing=missing)
        skipped: list[tuple[Letter, str]] = []
        chosen: list[Letter] = []
        for letter in found:
            if letter.state == "resolved":
                skipped.append((letter, "already resolved"))
            elif letter.state == "dismissed" and not include_dismissed:
                skipped.append((letter, "dismissed (--include-dismissed retries it)"))
            else:
                chosen.append(letter)
        reopened = [x.id for x in chosen if x.state == "dismissed"]
        if reopened:
            connection.execute(
                update(dead_letters)
                .where(dead_letters.c.id.in_(reopened))
                .values(dismissed_at=None, dismissed_reason=None)
            )
        groups = _rows_by_letter(connection, chosen)
        row_ids = sorted({row.id for rows in groups.values() for row in rows})
        for chunk in chunks(row_ids, 500):
            connection.execute(update(inbox).where(inbox.c.id.in_(chunk)).values(not_before=None))
        done = [
            replace(x, dismissed_at=None, dismissed_reason=None, next_retry_at=None) for x in chosen
        ]
        return Requeue(
            queued=[x for x in done if x.queued],
            not_queued=[x for x in done if not x.queued],
            skipped=skipped,
        )


def _by_ids(connection: Connection, ids: Sequence[int]) -> tuple[list[Letter], list[int]]:
    wanted = sorted(set(ids))
    rows = list(
        connection.execute(
            select(dead_letters).where(dead_letters.c.id.in_(wanted)).order_by(dead_letters.c.id)
        )
    )
    missing = sorted(set(wanted) - {row.id for row in rows})
    return with_waiting_rows(connection, rows), missing


def _letter(row: Any) -> Letter:
    return Letter(
        id=row.id,
        object=row.object,
        system=row.system,
        source=row.source,
        target_id=row.target_id,
        change=orjson.loads(row.change) if row.change else {},
        message=row.message,
        code=row.code,
        attempts=row.attempts,
        first_at=aware(row.first_at) or row.first_at,
        last_at=aware(row.last_at) or row.last_at,
        resolved_at=aware(row.resolved_at),
        dismissed_at=aware(row.dismissed_at),
        dismissed_reason=row.dismissed_reason,
    )


def with_waiting_rows(connection: Connection, rows: Sequence[Any]) -> list[Letter]:
    """Letters of ``dead_letters`` rows, each with its waiting inbox rows counted."""
    found = [_letter(row) for row in rows]
    groups = _rows_by_letter(connection, found)
    result = []
    for letter in found:
        waiting = groups.get(letter.id, [])
        times = [t for t in (aware(row.not_before) for row in waiting) if t is not None]
        due = None if len(times) < len(waiting) else min(times, default=None)
        result.append(replace(letter, queued=len(waiting), next_retry_at=due))
    return result


def _rows_by_letter(connection: Connection, found: Sequence[Letter]) -> dict[int, list[Any]]:
    """The inbox rows of each unresolved letter's pair: its source record's row and the
    rows of the same link (found through the links when the source row is gone) or, while
    unlinked, of the same pair key."""
    refs: dict[int, tuple[str, str, str, str]] = {}
    for letter in found:
        parsed = ref_of(letter.source)
        if parsed is not None and letter.state != "resolved":
            refs[letter.id] = (letter.object, *parsed)
    own: dict[tuple[str, str, str, str], Any] = {}
    for obj, system in sorted({key[:2] for key in refs.values()}):
        native = sorted({key[3] for key in refs.values() if key[:2] == (obj, system)})
        for chunk in chunks(native, 500):
            query = select(inbox).where(
                inbox.c.object == obj, inbox.c.system == system, inbox.c.record_id.in_(chunk)
            )
            for row in connection.execute(query):
                own[(row.object, row.system, row.kind, row.record_id)] = row
    linked = _links_of(connection, [key for key in refs.values() if key not in own])
    pairs: dict[int, tuple[str, Any]] = {}
    for letter_id, key in refs.items():
        source_row = own.get(key)
        if source_row is not None:
            pairs[letter_id] = (key[0], source_row.link_id or source_row.pair_key)
        elif key in linked:
            pairs[letter_id] = (key[0], linked[key])
    mates: dict[tuple[str, Any], list[Any]] = {}
    for obj in sorted({obj for obj, _ in pairs.values()}):
        wanted = {pair for o, pair in pairs.values() if o == obj and pair is not None}
        by_link = sorted(k for k in wanted if isinstance(k, int))
        by_pair = sorted(k for k in wanted if isinstance(k, str))
        for column, values in ((inbox.c.link_id, by_link), (inbox.c.pair_key, by_pair)):
            for part in chunks(values, 500):
                query = select(inbox).where(inbox.c.object == obj, column.in_(part))
                for row in connection.execute(query):
                    mates.setdefault((obj, row.link_id or row.pair_key), []).append(row)
    groups: dict[int, list[Any]] = {}
    for letter_id, pair in pairs.items():
        every = {r.id: r for r in mates.get(pair, [])}
        if refs[letter_id] in own:
            every[own[refs[letter_id]].id] = own[refs[letter_id]]
        groups[letter_id] = [every[i] for i in sorted(every)]
    return groups


def _links_of(
    connection: Connection, refs: Sequence[tuple[str, str, str, str]]
) -> dict[tuple[str, str, str, str], int]:
    """The link of each (object, system, kind, id) that has one, by kind and id."""
    found: dict[tuple[str, str, str, str], int] = {}
    for obj in sorted({ref[0] for ref in refs}):
        wanted = {(ref[2], ref[3]): ref for ref in refs if ref[0] == obj}
        for chunk in chunks(sorted({native for _, native in wanted}), 500):
            query = select(links).where(
                links.c.object == obj,
                or_(links.c.marketing_id.in_(chunk), links.c.crm_id.in_(chunk)),
            )
            for link in connection.execute(query):
                for side in (
                    (link.marketing_kind, link.marketing_id),
                    (link.crm_kind, link.crm_id),
                ):
                    if side in wanted:
                        found[wanted[side]] = link.id
    return found
