"""Words and number formats shared by the report's text view and HTML page, so that
both say the same thing the same way."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

from syncd.report.model import GroupSpeed, QualityRow, Report, ThresholdRow

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
"""Currencies written with their symbol; any other is written with its code."""

FUNNEL_HEAD = (
    "Stage",
    "People reached",
    "Moved on to next stage",
    "Median hours to next stage",
    "90% moved on within (hours)",
)
SPEED_HEAD = (
    "Hand-offs",
    "Followed up",
    "Median hours to first follow-up",
    "90% followed up within (hours)",
    "Over the SLA",
    "Waiting, within the SLA",
)
OVER_SLA_HEAD = ("Link", "Email", "Source", "Handed off (UTC)", "Hours to first follow-up")
TREND_HEAD = ("Hand-offs", "Deals won")
EMPTY = {
    "funnel": "No people changed stage in this period.",
    "speed": "No hand-offs to sales in this period.",
    "over_sla": "No hand-offs over the SLA in this period.",
    "revenue": "No deals won or lost in this period.",
    "recycled": "No people recycled in this period.",
    "quality": "No hand-offs to sales in this period: no lead quality to show.",
}
"""What a section says instead of an empty table."""


def hours(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def amount(value: Decimal) -> str:
    """``120,000`` or ``1,799.50``: cents only when there are any."""
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"


def money(value: Decimal, currency: str) -> str:
    """``$120,000``, ``€99.50``, ``CHF 1,200``."""
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{amount(value)}" if symbol else f"{currency} {amount(value)}"


def revenue_head(currency: str) -> str:
    return f"Won revenue ({currency})"


def moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _day(value: datetime) -> str:
    return f"{value.day} {value:%b %Y}"


def period_text(since: datetime, until: datetime) -> str:
    """``1 Mar 2026 to 31 Mar 2026`` (whole days, both included), else both times."""
    if since.timetz().replace(tzinfo=None) == until.timetz().replace(tzinfo=None) == time():
        return f"{_day(since)} to {_day(until - timedelta(days=1))}"
    return f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"


def generated_line(report: Report) -> str:
    return (
        f"Generated at {moment(report.generated_at)} for {period_text(report.since, report.until)}"
    )


def _bucket_start(kind: str, at: datetime) -> datetime:
    """The Monday (00:00) or the first of the month of the week or month ``at`` is in."""
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "week":
        return midnight - timedelta(days=midnight.weekday())
    return midnight.replace(day=1)


def bucket_label(kind: str, start: datetime) -> str:
    """``Week of 2 Mar`` (its Monday, also for a week the period cuts) or ``Mar 2026``."""
    start = _bucket_start(kind, start)
    return f"Week of {start.day} {start:%b}" if kind == "week" else f"{start:%b %Y}"


def cut_note(kind: str, since: datetime, until: datetime) -> str:
    """Says so when the period cuts its first or last week (month); else nothing."""
    cut = [
        name for name, at in (("first", since), ("last", until)) if _bucket_start(kind, at) != at
    ]
    if not cut:
        return ""
    return f"Partial {kind}s: the {' and the '.join(cut)}, cut by the period's edges."


def change(value: float | None, now: float | Decimal) -> str:
    """``+25%``, ``-10%``, ``0%``; ``new`` when the previous period had none."""
    if value is None:
        return "new" if now else "-"
    return f"{value:+.0%}" if round(value, 2) else "0%"


GROUP_SPEED_HEAD = (
    "Hand-offs",
    "Touched",
    "Median hours to first touch",
    "90% touched within (hours)",
    "Touched after the SLA",
    "Never touched",
)
MEASURES = {
    "touch": "Measured from hand-off to the first sales activity on the person in the CRM"
    " (a logged call or email, a meeting), by whoever did it",
    "stage": "Measured from hand-off to the CRM's next stage change (no sales activity read)",
}


def group_speed_row(name: str, group: GroupSpeed) -> tuple[str, ...]:
    """One owner's or source's speed to lead, as table cells."""
    return (
        name,
        str(group.handoffs),
        str(group.touched),
        hours(group.response.median),
        hours(group.response.p90),
        str(group.over_sla),
        percent(group.never_touched),
    )


def sla_text(sla_hours: float) -> str:
    return f"SLA: a hand-off is followed up within {sla_hours:g} hours"


def quality_head(currency: str) -> tuple[str, ...]:
    return (
        "Hand-offs",
        "Accepted by sales",
        "Disqualified or recycled",
        "Deals",
        "Won",
        "Win rate",
        revenue_head(currency),
        "Median hours to first touch",
    )


def threshold_head(currency: str) -> tuple[str, ...]:
    return (
        "Hand-offs it makes",
        "Won",
        "Win rate",
        revenue_head(currency),
        "Held back",
        "Won among held back",
        f"Their revenue ({currency})",
    )


def win_rate(row: QualityRow | ThresholdRow, min_deals: int) -> str:
    """The win rate, or ``n<5 (1/3)`` when too few deals closed for a rate to mean much."""
    closed = row.won + row.lost
    if row.small_sample and closed:
        return f"n<{min_deals} ({row.won}/{closed})"
    return percent(row.win_rate)


def quality_row(name: str, row: QualityRow, min_deals: int) -> tuple[str, ...]:
    """One source's (band's, grade's) lead quality, as table cells."""
    return (
        name,
        str(row.handoffs),
        str(row.accepted),
        str(row.disqualified),
        str(row.opportunities),
        str(row.won),
        win_rate(row, min_deals),
        amount(row.won_revenue),
        hours(row.first_touch.median),
    )


def threshold_row(row: ThresholdRow, min_deals: int) -> tuple[str, ...]:
    return (
        f"score ≥ {row.threshold:g}",
        str(row.handoffs),
        str(row.won),
        win_rate(row, min_deals),
        amount(row.won_revenue),
        str(row.held_back),
        str(row.held_back_won),
        amount(row.held_back_revenue),
    )


def quality_notes(report: Report) -> list[str]:
    """What the lead-quality tables need said beside them."""
    q = report.quality
    accepted = report.label(q.accepted_stage) if q.accepted_stage else "no stage (none follows)"
    notes = [
        f"Hand-offs at {report.label(q.handoff_stage)}, grouped by the {q.source_field}"
        + (f" and {q.score_field}" if q.score_field else "")
        + f" they had then. Accepted: reached {accepted} or later. Win rate: won / (won + lost)"
        f" deals; n<{q.min_deals}: fewer than {q.min_deals} deals closed, won/closed shown"
        " instead of a rate.",
    ]
    if q.current_values:
        notes.append(
            f"{q.current_values} hand-off(s) recorded before syncd kept their values at"
            " hand-off: grouped by their current values."
        )
    if q.thresholds and q.total.handoffs > q.unscored:
        notes.append(
            "Thresholds: of this period's hand-offs, those a score threshold would have"
            f" made, and what it would have held back; {q.unscored} without a score in none."
        )
    return notes
