"""The store's side of references syncd added on its own (``syncd.sync.outcomes``): which
they are, so that the merge leaves them where syncd put them, and the one transaction that
keeps them with the closed loop's journal entries and the refusals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, select, update

from syncd.state.links import chunks, insert_journal
from syncd.state.refusals import SOURCE_LENGTH, put_dead_letter
from syncd.state.tables import bases, dead_letters, derived_refs, links
from syncd.sync.intake import column_length, printable

CODE_LENGTH = column_length(dead_letters.c.code)
SOURCE = "assoc:"
"""How the dead letter of a refused reference names it: ``assoc:{link}:{ref link}``."""


@dataclass(frozen=True, slots=True)
class DerivedRef:
    """One reference syncd added to one record of one system (a contact on a deal)."""

    obj: str
    system: str
    kind: str
    record_id: str
    field: str
    ref_link: int
    ref_id: str
    link_id: int
    rule: str

    @property
    def source(self) -> str:
        return f"{SOURCE}{self.link_id}:{self.ref_link}"[:SOURCE_LENGTH]


@dataclass(frozen=True, slots=True)
class RefusedRef:
    """A reference the system refused to add, in its own words."""

    ref: DerivedRef
    message: str
    code: str | None


class DerivedQueries:
    """Mixed into ``Store``."""

    engine: Engine

    def derived_refs(
        self, obj: str, system: str, record_ids: Sequence[str]
    ) -> dict[str, dict[str, set[int]]]:
        """Per record of ``system`` among ``record_ids``: field -> the link ids syncd added."""
        found: dict[str, dict[str, set[int]]] = {}
        with self.engine.connect() as connection:
            for chunk in chunks(list(dict.fromkeys(record_ids)), 500):
                rows = connection.execute(
                    select(
                        derived_refs.c.record_id, derived_refs.c.field, derived_refs.c.ref_link
                    ).where(
                        derived_refs.c.object == obj,
                        derived_refs.c.system == system,
                        derived_refs.c.record_id.in_(chunk),
                    )
                )
                for record_id, name, ref_link in rows:
                    found.setdefault(str(record_id), {}).setdefault(name, set()).add(int(ref_link))
        return found

    def deal_bases(self, stages: Sequence[str]) -> list[dict[str, Any]]:
        """The bases of the live deal links standing at one of ``stages`` (won ones)."""
        if not stages:
            return []
        with self.engine.connect() as connection:
            rows = connection.scalars(
                select(bases.c.fields)
                .join(links, links.c.id == bases.c.link_id)
                .where(
                    links.c.object == "deal",
                    links.c.tombstoned_at.is_(None),
                    bases.c.stage.in_(list(stages)),
                )
            )
            return [orjson.loads(raw) for raw in rows if raw]

    def intend_refs(self, refs: Sequence[DerivedRef], *, now: datetime) -> None:
        """Keep references about to be added (those kept already stay as they are), before
        the system is asked: a crash after its write and before ``finish_loop`` must not
        let the next read take them for a user's (and carry them to the other system)."""
        with self.engine.begin() as connection:
            _keep(connection, refs, now)

    def finish_loop(
        self,
        notes: Sequence[Mapping[str, Any]],
        added: Sequence[DerivedRef],
        refused: Sequence[RefusedRef],
        *,
        now: datetime,
    ) -> None:
        """In one transaction: the dead letters of the references added resolved, the
        refused ones forgotten (``intend_refs`` kept them) and dead-lettered, and the
        closed loop's journal entries (a deal's entry says it was looped)."""
        with self.engine.begin() as connection:
            for refusal in refused:
                ref = refusal.ref
                connection.execute(
                    delete(derived_refs).where(
                        derived_refs.c.object == ref.obj,
                        derived_refs.c.system == ref.system,
                        derived_refs.c.record_id == ref.record_id,
                        derived_refs.c.field == ref.field,
                        derived_refs.c.ref_link == ref.ref_link,
                    )
                )
            sources = [ref.source for ref in added]
            for chunk in chunks(sources, 500):
                connection.execute(
                    update(dead_letters)
                    .where(
                        dead_letters.c.source.in_(chunk),
                        dead_letters.c.resolved_at.is_(None),
                    )
                    .values(resolved_at=now)
                )
            for refusal in refused:
                ref = refusal.ref
                change = {"op": "associate", "kind": ref.kind, "id": ref.record_id}
                values = {
                    "change": orjson.dumps({**change, "fields": {ref.field: ref.ref_id}}).decode(),
                    "message": printable(refusal.message),
                    "code": printable(refusal.code)[:CODE_LENGTH] if refusal.code else None,
                    "target_id": ref.record_id,
                }
                put_dead_letter(connection, ref.obj, ref.system, ref.source, values, now)
            insert_journal(connection, notes, now)


def _keep(connection: Connection, added: Sequence[DerivedRef], now: datetime) -> None:
    """Insert the references not kept yet (a replay after a crash finds some kept)."""
    by_record: dict[tuple[str, str, str], list[DerivedRef]] = {}
    for ref in added:
        by_record.setdefault((ref.obj, ref.system, ref.record_id), []).append(ref)
    rows = []
    for (obj, system, record_id), refs in by_record.items():
        kept = {
            (name, int(ref_link))
            for name, ref_link in connection.execute(
                select(derived_refs.c.field, derived_refs.c.ref_link).where(
                    derived_refs.c.object == obj,
                    derived_refs.c.system == system,
                    derived_refs.c.record_id == record_id,
                )
            )
        }
        for ref in refs:
            if (ref.field, ref.ref_link) in kept:
                continue
            kept.add((ref.field, ref.ref_link))
            rows.append(
                {
                    "object": ref.obj,
                    "system": ref.system,
                    "record_id": ref.record_id,
                    "field": ref.field,
                    "ref_link": ref.ref_link,
                    "ref_id": ref.ref_id,
                    "link_id": ref.link_id,
                    "rule": ref.rule,
                    "at": now,
                }
            )
    if rows:
        connection.execute(derived_refs.insert(), rows)
