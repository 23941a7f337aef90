"""The report's value types: frozen, plain, and JSON-ready through ``Report.as_dict``.

What each figure means is told in ``syncd.report.build``, which computes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
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

    @property
    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return Period(self.since - (self.until - self.since), self.since)


@dataclass(frozen=True)
class Transition:
    """One row of the stage history."""

    id: int
    link_id: int
    object: str
    to_stage: str
    at: datetime
    source_system: str
    reason: str | None = None
    """Why the person moved (a recycle stage: the reason sales gave)."""
    snapshot: str | None = None
    """JSON, on a move into the hand-off stage: the score, grade and source it was made
    with, by field name (``syncd.report.quality``)."""


class JsonFields(Mapping[str, Any]):
    """A base's fields as stored (JSON text), parsed on first read: the report reads the
    bases of every link with a transition in the period, and most of them only for
    their stage (100,000 people: a second of parsing saved)."""

    __slots__ = ("_parsed", "_raw")

    def __init__(self, raw: str | bytes | None) -> None:
        self._raw = raw
        self._parsed: dict[str, Any] | None = None

    def _fields(self) -> dict[str, Any]:
        if self._parsed is None:
            self._parsed = orjson.loads(self._raw) if self._raw else {}
            self._raw = None
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self._fields()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())


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
class FirstTouch:
    """The first sales activity after a hand-off (``syncd.sync.touches``)."""

    touched_at: datetime
    channel: str
    owner: str
    """The name of the CRM user who did it."""


@dataclass(frozen=True)
class History:
    """What a report reads: the transitions in the period and the bases they concern."""

    transitions: tuple[Transition, ...]
    bases: Mapping[int, Base]
    touches: Mapping[tuple[int, datetime], FirstTouch] | None = None
    """First touches by (link id, hand-off time); None: syncd has read no sales
    activity, and speed to lead is measured by stage transitions."""


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
    owner: str | None = None
    """Who touched it first (measured by first touch)."""


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
    measure: str = "stage"
    """``touch``: from hand-off to the first sales activity; ``stage``: to the CRM's
    next stage transition (no sales activity read)."""
    by_owner: Mapping[str, GroupSpeed] = field(default_factory=dict)
    """Touched hand-offs by the name of who touched them first (measure ``touch``)."""
    by_source: Mapping[str, GroupSpeed] = field(default_factory=dict)
    """Hand-offs by source, with the share never touched (measure ``touch``)."""


@dataclass(frozen=True)
class GroupSpeed:
    """Speed to lead of some of the hand-offs (one owner's, one source's)."""

    handoffs: int
    touched: int
    response: Durations
    over_sla: int
    never_touched: float | None
    """The share of the hand-offs not followed up (None: no hand-off)."""


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
class Totals:
    """Hand-offs, deals won and their revenue over a stretch of time."""

    handoffs: int
    won: int
    won_revenue: Decimal


@dataclass(frozen=True)
class TrendBucket:
    """One week or month of the period, ``[start, end)`` (clipped to the period)."""

    start: datetime
    end: datetime
    handoffs: int
    won: int
    won_revenue: Decimal


@dataclass(frozen=True)
class Change:
    """This period against the previous one: (this - previous) / previous; None when the
    previous one had none."""

    handoffs: float | None
    won: float | None
    won_revenue: float | None


@dataclass(frozen=True)
class Trend:
    bucket: str
    """``week`` (Monday to Monday, UTC) or ``month``."""
    buckets: tuple[TrendBucket, ...]
    current: Totals
    previous_since: datetime
    """The previous period is ``[previous_since, since)``, as long as this one."""
    previous: Totals
    change: Change


@dataclass(frozen=True)
class QualityRow:
    """What became of some hand-offs (one source's, one score band's): see
    ``syncd.report.quality``."""

    handoffs: int
    accepted: int
    """Reached the accepted stage (or a later one) after the hand-off."""
    disqualified: int
    """Entered a recycle stage (disqualified, nurture) after the hand-off."""
    reasons: Mapping[str, int]
    """The reasons sales gave for those, counted (most given first)."""
    opportunities: int
    won: int
    lost: int
    win_rate: float | None
    """won / (won + lost); None when none closed."""
    small_sample: bool
    """Fewer closed deals than ``report.quality.min_deals``: the rate is not shown."""
    won_revenue: Decimal
    first_touch: Durations
    """Hours from hand-off to first follow-up, of those followed up."""


@dataclass(frozen=True)
class ThresholdRow:
    """What handing off only the people scored at or above ``threshold`` would have made,
    among the hand-offs of the period, and what it would have held back."""

    threshold: float
    handoffs: int
    won: int
    lost: int
    win_rate: float | None
    small_sample: bool
    won_revenue: Decimal
    held_back: int
    """Hand-offs scored below the threshold."""
    held_back_won: int
    """Deals won from those: what the threshold would have cost."""
    held_back_revenue: Decimal


@dataclass(frozen=True)
class Quality:
    """Lead quality by what marketing knew at the hand-off: by source, by score band
    (and by grade where one is mapped), and the effect of candidate score thresholds."""

    handoff_stage: str
    accepted_stage: str | None
    score_field: str | None
    grade_field: str | None
    source_field: str
    min_deals: int
    total: QualityRow
    by_source: Mapping[str, QualityRow]
    by_band: Mapping[str, QualityRow]
    """By score band, in band order; then scores outside the bands; then ``(no score)``."""
    by_grade: Mapping[str, QualityRow]
    thresholds: tuple[ThresholdRow, ...]
    unscored: int
    """Hand-offs without a numeric score: in no threshold's count."""
    current_values: int
    """Hand-offs recorded before syncd kept what they were made with: grouped by the
    person's current values instead."""


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    generated_at: datetime
    by: str | None
    currency: str
    """The ISO 4217 code of the amounts (``report.currency``)."""
    stage_labels: Mapping[str, str]
    """Each person and deal stage's label (its name when the vocabulary gives none)."""
    funnel: tuple[FunnelStep, ...]
    funnel_by: Mapping[str, tuple[FunnelStep, ...]]
    speed_to_lead: SpeedToLead
    speed_to_lead_by: Mapping[str, SpeedToLead]
    closed_loop: ClosedLoop
    recycled: Recycled
    trend: Trend
    quality: Quality

    def label(self, stage: str) -> str:
        """The stage's label; what is no stage (``(unknown)``) as it is."""
        return self.stage_labels.get(stage, stage)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values: numbers as numbers, Decimals as strings, datetimes ISO."""
        # orjson writes dataclasses itself: no deep copy of every figure (``asdict``) first.
        return orjson.loads(orjson.dumps(self, default=str))
