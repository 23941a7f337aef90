"""Where each slow sweep over linked records stands (``syncd.sync.sweeps``).

A sweep's position is kept in the cursors table under the kind ``{kind}#{sweep}``
(``contacts#deletions``), so that it needs no table of its own and survives restarts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from syncd.state.tables import cursors, links


@dataclass(frozen=True, slots=True)
class SweepState:
    """The last link id swept (0: a pass starts) and when the next slice is due."""

    after: int = 0
    due: datetime | None = None

    def dumps(self) -> str:
        return json.dumps({"after": self.after, "due": self.due.isoformat() if self.due else None})

    @classmethod
    def loads(cls, text: str | None) -> SweepState:
        raw = json.loads(text) if text else {}
        due = datetime.fromisoformat(raw["due"]) if raw.get("due") else None
        return cls(int(raw.get("after") or 0), due)


def sweep_kind(kind: str, sweep: str) -> str:
    """The cursors-table kind a sweep's position is kept under."""
    return f"{kind}#{sweep}"


class SweepQueries:
    """Mixed into ``Store``: sweep positions and slices of linked ids."""

    engine: Engine

    def sweep_state(self, system: str, kind: str, sweep: str) -> SweepState:
        with self.engine.connect() as connection:
            value = connection.scalar(
                select(cursors.c.value).where(
                    cursors.c.system == system, cursors.c.kind == sweep_kind(kind, sweep)
                )
            )
        return SweepState.loads(value)

    def linked_slice(
        self, obj: str, role: str, kind: str, after: int, size: int
    ) -> tuple[list[tuple[int, str]], int]:
        """Up to ``size`` (link id, native id) of live links whose ``role`` side is a
        ``kind`` record, after link ``after`` in id order; and how many there are in all."""
        kind_column = links.c.marketing_kind if role == "marketing" else links.c.crm_kind
        id_column = links.c.marketing_id if role == "marketing" else links.c.crm_id
        live = (
            (links.c.object == obj)
            & (kind_column == kind)
            & id_column.is_not(None)
            & links.c.tombstoned_at.is_(None)
        )
        with self.engine.connect() as connection:
            rows: Sequence[tuple[int, str]] = connection.execute(
                select(links.c.id, id_column)
                .where(live, links.c.id > after)
                .order_by(links.c.id)
                .limit(size)
            ).all()
            total = int(connection.scalar(select(func.count()).where(live)) or 0)
        return [(int(link_id), str(native)) for link_id, native in rows], total
