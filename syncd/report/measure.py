"""The small measures every report section shares: durations, a deal's people and amount.

Apart from ``syncd.report.build`` so that its sections (``syncd.report.quality``) use the
same rules without importing the module that assembles them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from syncd.report.model import Base, Durations

NONE = "(none)"
"""The group of people (and deals) without a value in the group field."""


def durations(hours: Iterable[float]) -> Durations:
    """Count, median and nearest-rank p90 of ``hours``."""
    values = sorted(hours)
    if not values:
        return Durations(0, None, None)
    nearest_rank = math.ceil(0.9 * len(values))
    return Durations(len(values), statistics.median(values), values[nearest_rank - 1])


def utc(at: datetime) -> datetime:
    """SQLite hands back naive datetimes, in UTC."""
    if at.tzinfo is UTC:  # the store's own times, read back: no new object
        return at
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def deal_people(base: Base | None) -> list[int]:
    """A deal's people (link ids, ascending): its contacts, else its attributed people."""
    for field in ("contacts", "attributed_people"):
        value = base.value(field) if base is not None else None
        ids = sorted({int(p) for p in (value or "").split(",") if p.strip().isdigit()})
        if ids:
            return ids
    return []


def amount(base: Base | None) -> Decimal | None:
    """A deal's amount; None when it has none or it is no number."""
    text = base.value("amount") if base is not None else None
    try:
        return Decimal(text) if text is not None else None
    except InvalidOperation:
        return None
