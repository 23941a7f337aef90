"""The daemon's own state in the store: pauses and the last cycle of each object."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select, update

from syncd.state.store import Store, aware
from syncd.state.tables import cycles, pauses

SCOPES = ("system", "object")


def scope(kind: str, name: str) -> str:
    """A pause scope: ``system:hubspot``, ``object:deal``."""
    if kind not in SCOPES:
        raise ValueError(f"a pause is of a system or an object, not {kind!r}")
    return f"{kind}:{name}"


def pause(store: Store, what: str, now: datetime, reason: str | None = None) -> bool:
    """Pause ``what`` (a scope); False if it was paused already."""
    with store.engine.begin() as connection:
        if connection.scalar(select(pauses.c.scope).where(pauses.c.scope == what)):
            return False
        connection.execute(pauses.insert().values(scope=what, paused_at=now, reason=reason))
    return True


def resume(store: Store, what: str) -> bool:
    """Resume ``what``; False if it was not paused."""
    with store.engine.begin() as connection:
        return bool(connection.execute(delete(pauses).where(pauses.c.scope == what)).rowcount)


def paused(store: Store) -> dict[str, dict[str, Any]]:
    """Every paused scope with when and why."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(pauses).order_by(pauses.c.scope))
        return {r.scope: {"since": aware(r.paused_at), "reason": r.reason} for r in rows}


def record_cycle(
    store: Store,
    obj: str,
    cycle_id: str,
    started: datetime,
    finished: datetime,
    ok: bool,
    result: Mapping[str, Any],
) -> None:
    """Keep the last cycle of ``obj``."""
    values = {
        "cycle_id": cycle_id,
        "started_at": started,
        "finished_at": finished,
        "ok": ok,
        "result": orjson.dumps(result, default=str).decode(),
    }
    with store.engine.begin() as connection:
        done = connection.execute(update(cycles).where(cycles.c.object == obj).values(values))
        if not done.rowcount:
            connection.execute(cycles.insert().values(object=obj, **values))


def last_cycles(store: Store) -> dict[str, dict[str, Any]]:
    """The last cycle of each object."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(cycles).order_by(cycles.c.object))
        return {
            r.object: {
                "cycle_id": r.cycle_id,
                "started_at": aware(r.started_at),
                "finished_at": aware(r.finished_at),
                "ok": bool(r.ok),
                "result": orjson.loads(r.result),
            }
            for r in rows
        }
