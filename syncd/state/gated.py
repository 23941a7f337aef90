"""The store's side of the gate on the CRM (``syncd.sync.gate``): who it holds back and why.

A chunk's commit records each person held back (``hold``, in the chunk's transaction) and
lets go of those linked in it (``release``); ``syncd status`` counts the rows and
``syncd explain`` shows a person's reasons (``held_for``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select

from syncd.model import Record, RecordRef, email_key
from syncd.state.tables import gate_held

CHUNK = 500


def hold(
    connection: Connection, obj: str, held: Sequence[tuple[Record, str]], now: datetime
) -> None:
    """Store each held-back record with its reason (replacing what an earlier cycle said)."""
    if not held:
        return
    release(connection, [record.ref.system for record, _ in held], [r.ref.id for r, _ in held])
    connection.execute(
        gate_held.insert(),
        [
            {
                "system": record.ref.system,
                "record_id": record.ref.id,
                "object": obj,
                "kind": record.ref.kind,
                "email_key": email_key(record.fields.get("email")),
                "reason": reason,
                "at": now,
            }
            for record, reason in held
        ],
    )


def release(connection: Connection, systems: Sequence[str], ids: Sequence[str]) -> None:
    """Forget the records ``(systems[i], ids[i])``: they crossed, or are held again."""
    by_system: dict[str, set[str]] = {}
    for system, id_ in zip(systems, ids, strict=True):
        by_system.setdefault(system, set()).add(id_)
    for system, found in sorted(by_system.items()):
        wanted = sorted(found)
        for start in range(0, len(wanted), CHUNK):
            connection.execute(
                delete(gate_held).where(
                    gate_held.c.system == system,
                    gate_held.c.record_id.in_(wanted[start : start + CHUNK]),
                )
            )


def count(connection: Connection) -> int:
    return int(connection.scalar(select(func.count()).select_from(gate_held)) or 0)


def held_for(connection: Connection, name: str) -> list[dict[str, Any]]:
    """What the gate said of the person named by an email, an id or ``system:kind:id``."""
    parts = name.strip().split(":")
    if "@" in name:
        where = gate_held.c.email_key == name.strip().lower()
    elif len(parts) == 3:
        where = and_(gate_held.c.system == parts[0], gate_held.c.record_id == parts[2])
    else:
        where = gate_held.c.record_id == name.strip()
    rows = connection.execute(select(gate_held).where(where).order_by(gate_held.c.record_id))
    return [dict(row._mapping) for row in rows]


def held_by_email(connection: Connection, obj: str, keys: Sequence[str]) -> list[RecordRef]:
    """The held-back records of ``obj`` with these email keys (``syncd resync --email``
    reads them again, so that the gate is asked again)."""
    if not keys:
        return []
    rows = connection.execute(
        select(gate_held.c.system, gate_held.c.kind, gate_held.c.record_id).where(
            gate_held.c.object == obj, gate_held.c.email_key.in_(sorted(set(keys)))
        )
    )
    return [RecordRef(row.system, row.kind, row.record_id) for row in rows]


def held_refs(connection: Connection, obj: str) -> list[RecordRef]:
    """Every held-back record of ``obj`` (``syncd resync --held`` reads them again, so that
    a gate changed since asks again: a loosened one lets them cross)."""
    rows = connection.execute(
        select(gate_held.c.system, gate_held.c.kind, gate_held.c.record_id)
        .where(gate_held.c.object == obj)
        .order_by(gate_held.c.system, gate_held.c.record_id)
    )
    return [RecordRef(row.system, row.kind, row.record_id) for row in rows]
