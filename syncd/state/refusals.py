"""Dead letters of records refused at the inbox's door (``syncd.sync.intake``), stored in the
transaction that keeps the rest of their page; resolved when the record is read again
and taken in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson
from sqlalchemy import Connection, delete, select, update

from syncd.state.links import chunks
from syncd.state.tables import dead_letters, inbox
from syncd.sync.intake import ID_LENGTH, Refusal, column_length, printable

CODE_PREFIX = "SYNCD_"
"""Codes of syncd's own refusals (the systems' codes never start so)."""
SOURCE_LENGTH = column_length(dead_letters.c.source)


def source_of(refusal: Refusal) -> str:
    """The letter's source: the record's reference, as a column can hold it."""
    return printable(str(refusal.record.ref))[:SOURCE_LENGTH]


def store_refusals(
    connection: Connection, obj: str, refusals: Sequence[Refusal], now: datetime
) -> None:
    """One open dead letter per refused record (a letter already there is renewed), and
    the record's older inbox rows dropped: what waits for it is a fix in its system."""
    for refusal in refusals:
        record = refusal.record
        id_ = record.ref.id
        storable = len(id_) <= ID_LENGTH and "\x00" not in id_
        if storable:
            connection.execute(
                delete(inbox).where(
                    inbox.c.system == record.ref.system,
                    inbox.c.kind == record.ref.kind,
                    inbox.c.record_id == id_,
                )
            )
        source = source_of(refusal)
        values = {
            "change": orjson.dumps(
                {
                    "refused": refusal.field,
                    "fields": dict(record.fields),
                    "partner_id": record.partner_id,
                },
            ).decode(),
            "message": printable(refusal.message),
            "code": refusal.code,
            "target_id": id_ if storable else None,
        }
        put_dead_letter(connection, obj, record.ref.system, source, values, now)


def put_dead_letter(
    connection: Connection,
    obj: str,
    system: str,
    source: str,
    values: Mapping[str, object],
    now: datetime,
) -> None:
    """One letter per (system, source): one already there is renewed (one attempt more,
    open again even if dismissed: refused again, it is a new problem), else a new one."""
    values = {
        **values,
        "last_at": now,
        "resolved_at": None,
        "dismissed_at": None,
        "dismissed_reason": None,
    }
    found = connection.execute(
        select(dead_letters.c.id, dead_letters.c.attempts).where(
            dead_letters.c.system == system, dead_letters.c.source == source
        )
    ).first()
    if found:
        connection.execute(
            update(dead_letters)
            .where(dead_letters.c.id == found.id)
            .values(attempts=found.attempts + 1, **values)
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


def resolve_refusals(
    connection: Connection, system: str, sources: Sequence[str], now: datetime
) -> None:
    """Resolve syncd's refusals of records now taken in (their fixed version was read)."""
    for chunk in chunks(list(sources), 500):
        connection.execute(
            update(dead_letters)
            .where(
                dead_letters.c.system == system,
                dead_letters.c.source.in_(chunk),
                dead_letters.c.code.startswith(CODE_PREFIX, autoescape=True),
                dead_letters.c.resolved_at.is_(None),
            )
            .values(resolved_at=now)
        )
