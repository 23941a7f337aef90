"""The report's value types: frozen, plain, and JSON-ready through ``Report.as_dict``.

What each figure means is told in ``syncd.report``, which computes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson


@dataclass(frozen=True)
class Period:
    """The half-open interval ``[since, until)``, in UTC."""

    since: datetime
    until: datetime

    def __contains__(self, at: datetime) -> bool:
        return self.since <= at < self.until


@dataclass(frozen=True)
class Transition:
    """One row of the stage history."""

    id: int
    link_id: int
    object: str
    to_stage: str
    at: datetime
    source_system: str


@dataclass(frozen=True)
class Base:
    """A link's last synced values and current stage."""

    fields: Mapping[str, str | None]
    stage: str | None = None
    email_key: str | None = None

    def value(self, field: str) -> str | None:
        """The field's value with blanks as None."""
        value = self.fields.get(field)
        text = str(value).strip() if value is not None else ""
        return text or None


@dataclass(frozen=True)
class History:
    """What a report reads: the transitions in the period and the bases they concern."""

    transitions: tuple[Transition, ...]
    bases: Mapping[int, Base]


@dataclass(frozen=True)
class Durations:
    """Hours between two events: how many, median and p90 (None when there are none)."""

    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class FunnelStep:
    stage: str
    label: str
    reached: int
    conversion: float | None
    """reached(next) / reached(this); None for the last stage or when none reached this."""
    hours_to_next: Durations | None


@dataclass(frozen=True)
class Handoff:
    link_id: int
    email: str | None
    source: str
    handed_off_at: datetime
    response_hours: float | None
    """None: not followed up in the period."""


@dataclass(frozen=True)
class Bucket:
    label: str
    upper_hours: float | None
    """Response times up to this many hours (above the previous bucket's); None: the rest."""
    count: int


@dataclass(frozen=True)
class SpeedToLead:
    handoff_stage: str
    sla_hours: float
    handoffs: int
    followed_up: int
    response: Durations
    over_sla: int
    late: tuple[Handoff, ...]
    unanswered: tuple[Handoff, ...]
    waiting: int
    histogram: tuple[Bucket, ...]


@dataclass(frozen=True)
class Outcomes:
    won: int
    lost: int
    win_rate: float | None
    won_revenue: Decimal


@dataclass(frozen=True)
class ClosedLoop:
    group_field: str
    total: Outcomes
    by_source: Mapping[str, Outcomes]
    won_without_amount: int


@dataclass(frozen=True)
class Recycled:
    people: int
    requalified: int
    by_current_stage: Mapping[str, int]


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    by: str | None
    funnel: tuple[FunnelStep, ...]
    funnel_by: Mapping[str, tuple[FunnelStep, ...]]
    speed_to_lead: SpeedToLead
    speed_to_lead_by: Mapping[str, SpeedToLead]
    closed_loop: ClosedLoop
    recycled: Recycled

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values: numbers as numbers, Decimals as strings, datetimes ISO."""
        return orjson.loads(orjson.dumps(asdict(self), default=str))
