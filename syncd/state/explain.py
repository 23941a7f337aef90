"""Everything the store knows about one record, for ``syncd explain``: its links, their
bases, stage history and journal, and what still waits for it (dead letters, inbox rows).

A record is named by an email (people), either system's id, or ``system:kind:id``. An
id a link was moved away from (a converted lead) still finds the link, through the
journal's ``converted`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, false, func, or_, select

from syncd.state import gated
from syncd.state.operator import UNRESOLVED, Letter, ref_of, with_waiting_rows
from syncd.state.store import Store, aware
from syncd.state.tables import (
    bases,
    dead_letters,
    inbox,
    journal,
    journal_action,
    links,
    stage_history,
)

CONVERSIONS = ("converted", "conversion left alone")
"""Journal actions whose ``record_id`` is the record a link was moved away from."""
INBOX_COLUMNS: tuple[str, ...] = ("id", "object", "system", "kind", "record_id", "link_id")
INBOX_COLUMNS += ("modified_at", "attempts", "not_before")


LONGEST_NAME = 1000
"""The longest record name ``explain`` looks for. No email or id the store keeps is longer
than 320 characters (a refused record's longer email is still found, in its dead
letter's change); past this, SQLite refuses the LIKE patterns ("LIKE or GLOB pattern too
complex", at 50,000 bytes) and nothing could match anyway."""


def name_problem(record: str) -> str | None:
    """Why ``record`` cannot name anything in the store (None: it can)."""
    if len(record.strip()) > LONGEST_NAME:
        return (
            f"{len(record.strip())} characters is too long to name a record: an email or"
            f" id syncd keeps has at most {LONGEST_NAME}"
        )
    return None


@dataclass(frozen=True, slots=True)
class LinkStory:
    """Everything the store knows about one link."""

    link: dict[str, Any]
    base: dict[str, Any] | None
    stage: str | None
    synced_at: datetime | None
    history: list[dict[str, Any]]
    journal: list[dict[str, Any]]
    """The last entries, oldest first, ``detail`` parsed."""
    letters: list[Letter]
    """Unresolved dead letters (open or dismissed)."""
    inbox: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The links a record matches, and what waits for it while it is not linked."""

    record: str
    links: list[LinkStory]
    letters: list[Letter]
    inbox: list[dict[str, Any]]
    gated: list[dict[str, Any]] = field(default_factory=list)
    """What the gate on the CRM said of the record, while it holds it back
    (``syncd.state.gated``)."""

    @property
    def found(self) -> bool:
        return bool(self.links or self.letters or self.inbox or self.gated)


def explain(
    store: Store, record: str, *, marketing: str, crm: str, journal_limit: int = 20
) -> Explanation:
    """The stories of the links ``record`` matches, and its unlinked leftovers.

    Raises ``ValueError`` when ``name_problem`` finds ``record`` unusable."""
    problem = name_problem(record)
    if problem is not None:
        raise ValueError(problem)
    roles = {marketing: "marketing", crm: "crm"}
    with store.engine.connect() as connection:
        link_ids, rows, letter_match = _matches(connection, record.strip(), roles)
        stories = [
            _story(connection, row, marketing, crm, journal_limit)
            for row in connection.execute(
                select(links).where(links.c.id.in_(sorted(link_ids))).order_by(links.c.id)
            )
        ]
        told = {x.id for story in stories for x in story.letters}
        loose_rows = [r for r in rows if r.link_id is None]
        sources = [f"{r.system}:{r.kind}:{r.record_id}" for r in loose_rows]
        loose = connection.execute(
            select(dead_letters)
            .where(UNRESOLVED, or_(letter_match, dead_letters.c.source.in_(sources)))
            .order_by(dead_letters.c.last_at.desc())
        )
        return Explanation(
            record,
            stories,
            [x for x in with_waiting_rows(connection, list(loose)) if x.id not in told],
            [_inbox_dict(r) for r in loose_rows],
            gated.held_for(connection, record),
        )


def _matches(
    connection: Connection, record: str, roles: dict[str, str]
) -> tuple[set[int], list[Any], ColumnElement[bool]]:
    """Link ids, inbox rows, and a condition on dead letters, that match ``record``."""
    ref = ref_of(record)
    if ref is None and "@" in record:
        key = record.lower()
        link_ids = set(
            connection.scalars(
                select(links.c.id).where(links.c.object == "person", links.c.email_key == key)
            )
        )
        rows = list(
            connection.execute(
                select(inbox).where(inbox.c.object == "person", inbox.c.email_key == key)
            )
        )
        link_ids |= {r.link_id for r in rows if r.link_id is not None}
        # A refused create has no link and maybe no inbox row left: its write names it.
        written = func.lower(dead_letters.c.change).contains(f'"{key}"', autoescape=True)
        return link_ids, rows, written
    if ref is not None and ref[0] in roles:
        wanted: list[tuple[str, str | None, str]] = [ref]
    else:
        wanted = [(system, None, record) for system in roles]
    link_ids = set()
    rows = []
    letter_match: ColumnElement[bool] = false()
    for system, kind, native in wanted:
        kind_column, id_column = (
            (links.c.marketing_kind, links.c.marketing_id)
            if roles[system] == "marketing"
            else (links.c.crm_kind, links.c.crm_id)
        )
        linked = select(links.c.id).where(id_column == native)
        waiting = select(inbox).where(inbox.c.system == system, inbox.c.record_id == native)
        if kind is not None:
            linked = linked.where(kind_column == kind)
            waiting = waiting.where(inbox.c.kind == kind)
        moved_away = select(journal.c.link_id).where(
            journal_action(*CONVERSIONS),
            journal.c.system == system,
            journal.c.record_id == native,
            journal.c.link_id.is_not(None),
        )
        link_ids |= set(connection.scalars(linked)) | set(connection.scalars(moved_away))
        found = list(connection.execute(waiting))
        rows += found
        link_ids |= {r.link_id for r in found if r.link_id is not None}
        source = dead_letters.c.source
        letter_match = or_(
            letter_match,
            source.startswith(f"{system}:", autoescape=True)
            & source.endswith(f":{native}", autoescape=True),
            (dead_letters.c.system == system) & (dead_letters.c.target_id == native),
        )
    return link_ids, rows, letter_match


def _story(connection: Connection, link: Any, marketing: str, crm: str, limit: int) -> LinkStory:
    refs = {
        (marketing, link.marketing_kind, link.marketing_id),
        (crm, link.crm_kind, link.crm_id),
    }
    for (detail,) in connection.execute(
        select(journal.c.detail).where(
            journal.c.link_id == link.id, journal.c.action.in_(CONVERSIONS)
        )
    ):
        moved_from = ref_of(str(orjson.loads(detail).get("from", "")))
        if moved_from:
            refs.add(moved_from)
    refs = {r for r in refs if r[2]}
    sources = [f"{s}:{k}:{i}" for s, k, i in refs] + [f"loop:{link.id}"]
    targets = [(dead_letters.c.system == s) & (dead_letters.c.target_id == i) for s, _, i in refs]
    letters = connection.execute(
        select(dead_letters)
        .where(UNRESOLVED, or_(dead_letters.c.source.in_(sources), *targets))
        .order_by(dead_letters.c.last_at.desc())
    )
    own = [
        (inbox.c.system == s) & (inbox.c.kind == k) & (inbox.c.record_id == i) for s, k, i in refs
    ]
    waiting = connection.execute(
        select(inbox).where(or_(inbox.c.link_id == link.id, *own)).order_by(inbox.c.id)
    )
    entries = connection.execute(
        select(journal)
        .where(journal.c.link_id == link.id)
        .order_by(journal.c.id.desc())
        .limit(limit)
    )
    history = connection.execute(
        select(stage_history)
        .where(stage_history.c.link_id == link.id)
        .order_by(stage_history.c.at, stage_history.c.id)
    )
    base = connection.execute(select(bases).where(bases.c.link_id == link.id)).first()
    return LinkStory(
        link=_timed(link),
        base=orjson.loads(base.fields) if base else None,
        stage=base.stage if base else None,
        synced_at=aware(base.synced_at) if base else None,
        history=[_timed(row) for row in history],
        journal=[
            {**_timed(row), "detail": orjson.loads(row.detail)} for row in reversed(list(entries))
        ],
        letters=with_waiting_rows(connection, list(letters)),
        inbox=[_inbox_dict(row) for row in waiting],
    )


def _timed(row: Any) -> dict[str, Any]:
    """A row as a dict, its times UTC-aware."""
    return {k: aware(v) if isinstance(v, datetime) else v for k, v in row._mapping.items()}


def _inbox_dict(row: Any) -> dict[str, Any]:
    found = _timed(row)
    return {name: found[name] for name in INBOX_COLUMNS}
