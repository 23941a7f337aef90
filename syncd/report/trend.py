"""The report's trend: hand-offs, deals won and won revenue per week or month of the
period, and the period against the one just before it (as long as it).

A period of up to ``WEEKLY_UP_TO_DAYS`` days is cut into calendar weeks (Monday 00:00
UTC), a longer one into calendar months; the first and last buckets are clipped to the
period, so the buckets add up to the period's totals. Pure: the events come counted by
``syncd.report.build``, which decides what a hand-off and a win are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from syncd.report.model import Change, Period, Totals, Trend, TrendBucket

WEEKLY_UP_TO_DAYS = 92
"""A quarter or less shows weeks (up to 14 bars); anything longer shows months."""

Win = tuple[datetime, Decimal]
"""When a deal was won, and its amount (0 when it has none)."""


def bucket_kind(period: Period) -> str:
    """``week`` or ``month``, by the period's length."""
    return "week" if period.until - period.since <= timedelta(days=WEEKLY_UP_TO_DAYS) else "month"


def _next_month(at: datetime) -> datetime:
    return at.replace(year=at.year + at.month // 12, month=at.month % 12 + 1)


def bucket_edges(period: Period) -> tuple[str, list[tuple[datetime, datetime]]]:
    """The kind of bucket and each bucket's ``[start, end)``, clipped to the period."""
    kind = bucket_kind(period)
    midnight = period.since.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "week":
        start = midnight - timedelta(days=midnight.weekday())
    else:
        start = midnight.replace(day=1)
    edges = []
    while start < period.until:
        end = start + timedelta(days=7) if kind == "week" else _next_month(start)
        edges.append((max(start, period.since), min(end, period.until)))
        start = end
    return kind, edges


def _totals(handoffs: Sequence[datetime], wins: Sequence[Win]) -> Totals:
    return Totals(len(handoffs), len(wins), sum((amount for _, amount in wins), Decimal(0)))


def _change(now: Decimal, before: Decimal) -> float | None:
    return float((now - before) / before) if before else None


def trend(
    period: Period,
    handoffs: Sequence[datetime],
    wins: Sequence[Win],
    *,
    previous_handoffs: Sequence[datetime],
    previous_wins: Sequence[Win],
) -> Trend:
    """The period's buckets and its totals against the previous period's."""
    kind, edges = bucket_edges(period)
    buckets = []
    for start, end in edges:
        inside = Period(start, end)
        bucket = _totals(
            [at for at in handoffs if at in inside], [w for w in wins if w[0] in inside]
        )
        buckets.append(TrendBucket(start, end, bucket.handoffs, bucket.won, bucket.won_revenue))
    current = _totals(handoffs, wins)
    previous = _totals(previous_handoffs, previous_wins)
    return Trend(
        bucket=kind,
        buckets=tuple(buckets),
        current=current,
        previous_since=period.previous.since,
        previous=previous,
        change=Change(
            handoffs=_change(Decimal(current.handoffs), Decimal(previous.handoffs)),
            won=_change(Decimal(current.won), Decimal(previous.won)),
            won_revenue=_change(current.won_revenue, previous.won_revenue),
        ),
    )
