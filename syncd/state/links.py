"""The store's queries about links: by id, by email, by either side's ids, and the
journal and history lookups the conversions and the closed loop make."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, String, cast, delete, select, update

from syncd.model import RecordRef
from syncd.state.tables import (
    COMPANY_FIELD,
    bases,
    journal,
    journal_action,
    links,
    stage_history,
)
from syncd.sync.reconcile import LinkState

T = TypeVar("T")


KEPT_ACTIONS = ("closed_loop", "converted_deal", "converted", "conversion left alone")
"""Journal entries never pruned: the closed loop reads ``closed_loop`` (which transitions
it handled) and ``converted_deal`` (whose lead became a deal); ``syncd explain`` and the
conversions read where a link was moved from. One per event, not per record."""
PRUNE_BATCH = 10_000
"""Journal entries deleted at most per call, so that one prune holds the store briefly."""


def company_of(obj: str, base: Mapping[str, Any]) -> str | None:
    """``bases.company_link`` of a link of ``obj`` with ``base``: a person's company."""
    if obj != "person":
        return None
    value = base.get(COMPANY_FIELD)
    return str(value)[:64] if value else None


def base_text(fields: Mapping[str, Any]) -> str:
    """A base as stored: blank values left out (a field missing from a base is blank,
    ``syncd.sync.reconcile.same_base``), which keeps a person's row a tenth smaller."""
    return orjson.dumps(
        {name: value for name, value in fields.items() if value is not None}, default=str
    ).decode()


class LinkQueries:
    """Mixed into ``Store``: everything here reads or sets links, bases and the journal."""

    engine: Engine

    def set_base_field(self, link_id: int, name: str, value: str | None) -> None:
        """Set one value of a link's base (what syncd derived, not what it synced)."""
        with self.engine.begin() as connection:
            raw = connection.scalar(select(bases.c.fields).where(bases.c.link_id == link_id))
            if raw is None:
                return
            fields = {**orjson.loads(raw), name: value}
            extra = {"company_link": company_of("person", fields)} if name == COMPANY_FIELD else {}
            connection.execute(
                update(bases)
                .where(bases.c.link_id == link_id)
                .values(fields=base_text(fields), **extra)
            )

    def journal_rows(self, rows: Sequence[Mapping[str, Any]], *, now: datetime) -> None:
        """Append journal entries (``detail`` as a plain value, stored as JSON)."""
        if not rows:
            return
        with self.engine.begin() as connection:
            insert_journal(connection, rows, now)

    def prune_journal(self, before: datetime, *, batch: int = PRUNE_BATCH) -> int:
        """Delete at most ``batch`` journal entries older than ``before``, oldest first,
        except those syncd still reads (``KEPT_ACTIONS``); how many went."""
        with self.engine.begin() as connection:
            doomed = (
                select(journal.c.id)
                .where(journal.c.at < before, journal.c.action.not_in(KEPT_ACTIONS))
                .order_by(journal.c.id)
                .limit(batch)
                .scalar_subquery()
            )
            done = connection.execute(delete(journal).where(journal.c.id.in_(doomed)))
        return int(done.rowcount or 0)

    def unlooped(self, obj: str, stages: Sequence[str]) -> list[Any]:
        """Transitions into ``stages`` without a ``closed_loop`` journal entry, oldest first,
        with the link's CRM id and base fields."""
        looped = (
            select(journal.c.id)
            .where(
                journal_action("closed_loop"),
                journal.c.record_id == cast(stage_history.c.id, String),
            )
            .exists()
        )
        query = (
            select(
                stage_history.c.id,
                stage_history.c.link_id,
                stage_history.c.to_stage,
                stage_history.c.at,
                stage_history.c.source_record,
                links.c.crm_id,
                bases.c.fields,
            )
            .select_from(
                stage_history.join(links, links.c.id == stage_history.c.link_id).outerjoin(
                    bases, bases.c.link_id == stage_history.c.link_id
                )
            )
            .where(
                stage_history.c.object == obj,
                stage_history.c.to_stage.in_(list(stages)),
                ~looped,
            )
            .order_by(stage_history.c.id)
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query))

    def converted_from(self, crm_deal_id: str) -> list[int]:
        """The people whose lead was converted into the deal with this CRM id."""
        with self.engine.connect() as connection:
            found = connection.scalars(
                select(journal.c.link_id).where(
                    journal_action("converted_deal"), journal.c.record_id == crm_deal_id
                )
            )
            return sorted({int(i) for i in found if i is not None})

    def people_of_company(self, company_link: str) -> list[int]:
        """Live person links whose company (their ``account`` field) is ``company_link``."""
        with self.engine.connect() as connection:
            found = connection.scalars(
                select(links.c.id)
                .join(bases, bases.c.link_id == links.c.id)
                .where(
                    bases.c.company_link == str(company_link),
                    links.c.object == "person",
                    links.c.tombstoned_at.is_(None),
                )
            )
            return sorted(int(i) for i in found)

    def link_ids(self, obj: str, role: str, native_ids: Sequence[str]) -> dict[str, int]:
        """Link ids of one side's records, by that side's id (live links only)."""
        column = links.c.marketing_id if role == "marketing" else links.c.crm_id
        found: dict[str, int] = {}
        with self.engine.connect() as connection:
            for chunk in chunks(list(dict.fromkeys(native_ids)), 500):
                rows = connection.execute(
                    select(column, links.c.id).where(
                        links.c.object == obj,
                        column.in_(chunk),
                        links.c.tombstoned_at.is_(None),
                    )
                )
                found.update({str(native): int(link_id) for native, link_id in rows})
        return found

    def native_ids(self, role: str, link_ids: Sequence[int]) -> dict[int, RecordRef]:
        """One side's record (kind and id) of each link that has that side."""
        kind, column = (
            (links.c.marketing_kind, links.c.marketing_id)
            if role == "marketing"
            else (links.c.crm_kind, links.c.crm_id)
        )
        found: dict[int, RecordRef] = {}
        with self.engine.connect() as connection:
            for chunk in chunks(list(dict.fromkeys(link_ids)), 500):
                rows = connection.execute(
                    select(links.c.id, kind, column).where(
                        links.c.id.in_(chunk), column.is_not(None)
                    )
                )
                found.update({int(i): RecordRef("", str(k), str(n)) for i, k, n in rows})
        return found

    def link_states(self, link_ids: Sequence[int]) -> dict[int, LinkState]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*LINK_COLUMNS, bases.c.fields, bases.c.stage)
                .select_from(links.outerjoin(bases, bases.c.link_id == links.c.id))
                .where(links.c.id.in_(list(link_ids)))
            ).all()
        return {row.id: link_state(row) for row in rows}

    def links_by_email(self, obj: str, keys: Sequence[str]) -> dict[str, LinkState]:
        if not keys:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*LINK_COLUMNS, bases.c.fields, bases.c.stage, links.c.email_key)
                .select_from(links.outerjoin(bases, bases.c.link_id == links.c.id))
                .where(links.c.object == obj, links.c.email_key.in_(list(keys)))
            ).all()
        return {row.email_key: link_state(row) for row in rows}

    def find_link(self, obj: str, system_role: str, record_id: str) -> LinkState | None:
        column = links.c.marketing_id if system_role == "marketing" else links.c.crm_id
        with self.engine.connect() as connection:
            row = connection.execute(
                select(*LINK_COLUMNS, bases.c.fields, bases.c.stage)
                .select_from(links.outerjoin(bases, bases.c.link_id == links.c.id))
                .where(links.c.object == obj, column == record_id)
            ).first()
        return link_state(row) if row else None


def insert_journal(
    connection: Connection, rows: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """``LinkQueries.journal_rows`` inside a transaction of the caller's."""
    if not rows:
        return
    connection.execute(
        journal.insert(),
        [
            {
                "at": now,
                "system": None,
                "record_id": None,
                **row,
                "detail": orjson.dumps(row["detail"], default=str).decode(),
            }
            for row in rows
        ],
    )


LINK_COLUMNS = (
    links.c.id,
    links.c.marketing_kind,
    links.c.marketing_id,
    links.c.crm_kind,
    links.c.crm_id,
    links.c.tombstoned_at,
)
"""What ``link_state`` reads of a link row."""


def link_state(row: Any) -> LinkState:
    """A row of ``LINK_COLUMNS`` then the base's fields and stage (by position: a hot path)."""
    link_id, m_kind, m_id, c_kind, c_id, tombstoned_at, fields, stage = row[:8]
    return LinkState(
        link_id,
        RecordRef("", m_kind, m_id) if m_id else None,
        RecordRef("", c_kind, c_id) if c_id else None,
        orjson.loads(fields) if fields else {},
        stage,
        tombstoned_at is not None,
    )


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
