"""The report as one self-contained HTML page: inline CSS and SVG, nothing fetched.

Every value that comes from the store or the configuration is escaped (``html.escape``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

from syncd.report_model import FunnelStep, Handoff, Report, SpeedToLead

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2330; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { padding: .25rem .75rem; border-bottom: 1px solid #dde1e8; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2330; }
.bar { fill: #3b6fd8; } .late { fill: #d8553b; } .muted { color: #6b7280; }
"""


def _e(value: Any) -> str:
    return escape(str(value))


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _money(value: Decimal) -> str:
    return f"{value:,}"


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], numeric_from: int = 1) -> str:
    """A table whose cells are escaped; columns from ``numeric_from`` align right."""

    def cells(tag: str, values: Sequence[Any]) -> str:
        return "".join(
            f"<{tag}{' class=n' if i >= numeric_from else ''}>{_e(v)}</{tag}>"
            for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', head)}</tr></thead><tbody>{body}</tbody></table>"


def _hbars(items: Sequence[tuple[str, int]], width: int = 640) -> str:
    """Horizontal bars, one per (label, count), scaled to the largest count."""
    label_width, row, top = 200, 26, max((n for _, n in items), default=0) or 1
    span = width - label_width - 60
    parts = []
    for i, (label, count) in enumerate(items):
        y, length = i * row, round(span * count / top)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end">{_e(label[:30])}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 4}" width="{length}" height="18"/>'
            f'<text x="{label_width + length + 6}" y="{y + 17}">{_e(count)}</text>'
        )
    height = row * len(items)
    return (
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"{''.join(parts)}</svg>"
    )


def _columns(items: Sequence[tuple[str, int, bool]], height: int = 180) -> str:
    """Vertical bars, one per (label, count, over the SLA), scaled to the largest count."""
    column, chart, top = 90, height - 40, max((n for _, n, _ in items), default=0) or 1
    parts = []
    for i, (label, count, late) in enumerate(items):
        x, length = i * column, round(chart * count / top)
        parts.append(
            f'<rect class="{"late" if late else "bar"}" x="{x + 15}" y="{chart - length + 16}"'
            f' width="{column - 30}" height="{length}"/>'
            f'<text x="{x + column / 2}" y="{chart - length + 11}" text-anchor="middle">'
            f"{_e(count)}</text>"
            f'<text x="{x + column / 2}" y="{height - 6}" text-anchor="middle">{_e(label)}</text>'
        )
    width = column * len(items)
    return (
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"{''.join(parts)}</svg>"
    )


def _funnel(steps: Sequence[FunnelStep]) -> str:
    rows = []
    for step in steps:
        hours = step.hours_to_next
        rows.append(
            (
                step.label,
                step.reached,
                _percent(step.conversion),
                hours.count if hours else "",
                _number(hours.median) if hours else "",
                _number(hours.p90) if hours else "",
            )
        )
    head = ("stage", "reached", "to next", "timed", "median h", "p90 h")
    return _hbars([(s.label, s.reached) for s in steps]) + _table(head, rows)


def _handoffs(title: str, handoffs: Sequence[Handoff]) -> str:
    if not handoffs:
        return ""
    rows = [
        (
            h.link_id,
            h.email or "",
            h.source,
            _time(h.handed_off_at),
            _number(h.response_hours) if h.response_hours is not None else "not yet",
        )
        for h in handoffs
    ]
    head = ("link", "email", "source", "handed off", "response h")
    return f"<h3>{_e(title)}</h3>" + _table(head, rows, numeric_from=4)


def _speed(speed: SpeedToLead) -> str:
    # A bucket above the SLA is drawn in the late colour.
    bars = [
        (b.label, b.count, b.upper_hours is None or b.upper_hours > speed.sla_hours)
        for b in speed.histogram
    ]
    bars.append(("not yet", speed.handoffs - speed.followed_up, False))
    summary = (
        ("hand-offs", speed.handoffs),
        ("followed up", speed.followed_up),
        ("median response h", _number(speed.response.median)),
        ("p90 response h", _number(speed.response.p90)),
        (f"over the SLA ({speed.sla_hours:g} h)", speed.over_sla),
        ("waiting, within the SLA", speed.waiting),
    )
    return (
        _columns(bars)
        + _table(("", "value"), summary)
        + _handoffs("Followed up late", speed.late)
        + _handoffs("Never followed up, older than the SLA", speed.unanswered)
    )


def render(report: Report) -> str:
    """The report as one HTML page."""
    loop, speed = report.closed_loop, report.speed_to_lead
    sections = [
        f"<h1>syncd report</h1><p class=muted>{_e(_time(report.since))} to "
        f"{_e(_time(report.until))} (until excluded)</p>",
        "<h2>Funnel</h2>",
        _funnel(report.funnel),
    ]
    for group, steps in report.funnel_by.items():
        sections += [f"<h3>{_e(report.by)} = {_e(group)}</h3>", _funnel(steps)]
    sections += [
        f"<h2>Speed to lead (hand-off at {_e(speed.handoff_stage)})</h2>",
        _speed(speed),
    ]
    if report.speed_to_lead_by:
        speed_rows = [
            (group, s.handoffs, s.followed_up, _number(s.response.median), s.over_sla)
            for group, s in report.speed_to_lead_by.items()
        ]
        head = (report.by or "", "hand-offs", "followed up", "median h", "over SLA")
        sections.append(_table(head, speed_rows))
    loop_rows = [
        (source, o.won, o.lost, _percent(o.win_rate), _money(o.won_revenue))
        for source, o in [*loop.by_source.items(), ("(all)", loop.total)]
    ]
    sections += [
        f"<h2>Closed loop by {_e(loop.group_field)}</h2>",
        _table((loop.group_field, "won", "lost", "win rate", "won revenue"), loop_rows),
    ]
    if loop.won_without_amount:
        sections.append(f"<p class=muted>{loop.won_without_amount} won deal(s) without amount</p>")
    recycled = report.recycled
    sections += [
        "<h2>Recycled people</h2>",
        f"<p>{recycled.people} recycled, {recycled.requalified} re-qualified since.</p>",
        _table(("current stage", "people"), recycled.by_current_stage.items()),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>syncd report</title><style>{CSS}</style></head><body>"
        + "".join(sections)
        + "</body></html>"
    )
