"""The report as one self-contained HTML page: inline CSS and SVG, nothing fetched.

It reads on a phone as on a desktop: the charts scale to the page (``syncd.report.svg``),
tables scroll inside their own box, the page itself never scrolls sideways. Every value
that comes from the store or the configuration is escaped (``html.escape``). The figures,
words and order are those of the text report (``syncd.report.view``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from syncd.report import format as words
from syncd.report import svg as charts
from syncd.report.model import FunnelStep, Handoff, Quality, QualityRow, Report, SpeedToLead

CSS = """
*, *::before, *::after { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       background: #f4f6f9; margin: 0; }
header, main { max-width: 60rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; line-height: 1.2; }
h2 { font-size: 1.2rem; margin: 0 0 .5rem; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
p { margin: .25rem 0 .75rem; overflow-wrap: anywhere; }
section { background: #fff; border: 1px solid #dde1e8; border-radius: 8px;
          padding: 1rem; margin: 1rem 0; min-width: 0; }
.muted, .note { color: #5b6472; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr));
        gap: .75rem; list-style: none; padding: 0; margin: 0; }
.kpis li { border: 1px solid #dde1e8; border-radius: 6px; padding: .5rem .75rem; }
.kpi { display: block; font-size: 1.5rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.up { color: #137a3f; } .down { color: #b3261e; }
.scroll { overflow-x: auto; max-width: 100%; margin: .5rem 0 1rem; }
.scroll:focus { outline: 2px solid #3b6fd8; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #dde1e8; text-align: left;
         vertical-align: bottom; }
th { font-weight: 600; font-size: .85rem; color: #444c59; min-width: 4.5rem; }
td { white-space: nowrap; }
.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td, tr.total th { font-weight: 650; }
#quality tbody th { white-space: nowrap; }
svg.chart { display: block; width: 100%; height: auto; max-width: 34rem; margin: .5rem 0; }
svg text { font: 13px system-ui, -apple-system, "Segoe UI", sans-serif; fill: #1d2330;
           paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 24rem), 1fr));
          gap: 0 1.5rem; }
.charts > div { min-width: 0; }
svg .tick, svg .small { font-size: 12px; fill: #5b6472; } svg .note { font-size: 12px; }
svg .value { font-weight: 600; } svg .axis-title { font-size: 12px; fill: #444c59; }
svg .bar { fill: #3b6fd8; } svg .late { fill: #d8553b; } svg .waiting { fill: #9aa3b2; }
svg .won { fill: #1f9d61; }
svg .grid { stroke: #e6e9ee; } svg .axis { stroke: #8a93a3; }
svg .marker line { stroke: #b3261e; stroke-width: 2; stroke-dasharray: 5 3; }
svg .marker text { fill: #b3261e; font-size: 12px; font-weight: 600; }
@media (max-width: 30rem) {
  body { font-size: 14px; }
  header, main { padding: 0 .5rem; }
  section { padding: .75rem; }
  th, td { padding: .25rem .35rem; }
  th { min-width: 3.5rem; }
}
"""


def _e(value: Any) -> str:
    return escape(str(value))


def _table(
    caption: str,
    head: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric_from: int = 1,
    total: Sequence[Any] | None = None,
) -> str:
    """A captioned table in its own scrolling box; columns from ``numeric_from`` align right."""

    def cells(values: Sequence[Any], header: bool = False) -> str:
        out = []
        for i, value in enumerate(values):
            css = " class=n" if i >= numeric_from else ""
            if header:
                out.append(f'<th scope="col"{css}>{_e(value)}</th>')
            elif i == 0:
                out.append(f'<th scope="row"{css}>{_e(value)}</th>')
            else:
                out.append(f"<td{css}>{_e(value)}</td>")
        return "".join(out)

    body = "".join(f"<tr>{cells(row)}</tr>" for row in rows)
    if total is not None:
        body += f'<tr class="total">{cells(total)}</tr>'
    return (
        f'<div class="scroll" role="region" tabindex="0" aria-label="{_e(caption)}">'
        f"<table><caption>{_e(caption)}</caption><thead><tr>{cells(head, True)}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def _section(section_id: str, title: str, *parts: str) -> str:
    return (
        f'<section id="{section_id}" aria-labelledby="{section_id}-heading">'
        f'<h2 id="{section_id}-heading">{_e(title)}</h2>{"".join(parts)}</section>'
    )


def _empty(text: str) -> str:
    return f'<p class="empty muted">{_e(text)}</p>'


def _funnel_chart(chart_id: str, title: str, steps: Sequence[FunnelStep], top: float) -> str:
    items = [
        charts.Bar(
            step.label,
            step.reached,
            str(step.reached),
            note=f"↓ {words.percent(step.conversion)} moved on"
            if step.conversion is not None
            else "",
        )
        for step in steps
    ]
    desc = "; ".join(
        f"{s.label}: {s.reached} reached"
        + (f", {words.percent(s.conversion)} moved on" if s.conversion is not None else "")
        for s in steps
    )
    return charts.bars(chart_id, title, desc, items, axis="People reached", top=top)


def _funnel_rows(steps: Sequence[FunnelStep]) -> list[tuple[Any, ...]]:
    return [
        (
            step.label,
            step.reached,
            words.percent(step.conversion),
            words.hours(step.hours_to_next.median) if step.hours_to_next else "",
            words.hours(step.hours_to_next.p90) if step.hours_to_next else "",
        )
        for step in steps
    ]


def _funnel(report: Report) -> list[str]:
    title = "Funnel: people reaching each stage"
    if not any(step.reached for step in report.funnel):
        return [_section("funnel", title, _empty(words.EMPTY["funnel"]))]
    top = max(step.reached for step in report.funnel)
    found = [
        _section(
            "funnel",
            title,
            "<p class=muted>Each person counts at the furthest stage they reached in the "
            "period and at every stage before it.</p>",
            _funnel_chart("funnel-chart", "People reaching each funnel stage", report.funnel, top),
            _table("Funnel, all people", words.FUNNEL_HEAD, _funnel_rows(report.funnel)),
        )
    ]
    if report.funnel_by:
        by = report.by or ""
        parts = [
            f"<p class=muted>All groups are drawn to the same scale as the whole funnel "
            f"({top} people).</p>"
        ]
        groups = [
            f"<div><h3>{_e(by)}: {_e(group)}</h3>"
            + _funnel_chart(f"funnel-by-{i}", f"Funnel, {by} {group}", steps, top)
            + "</div>"
            for i, (group, steps) in enumerate(report.funnel_by.items())
        ]
        parts.append(f'<div class="charts">{"".join(groups)}</div>')
        head = (by, *(s.label for s in report.funnel))
        rows = [(g, *(s.reached for s in steps)) for g, steps in report.funnel_by.items()]
        parts.append(_table(f"People reached, by {by}", head, rows))
        found.append(_section("funnel-by", f"Funnel by {by}", *parts))
    return found


def _histogram(speed: SpeedToLead) -> str:
    items = []
    for i, bucket in enumerate(speed.histogram):
        low = speed.histogram[i - 1].upper_hours if i else None
        if bucket.upper_hours is None:
            label = f"> {low:g}"
        else:
            label = (
                f"≤ {bucket.upper_hours:g}" if low is None else f"{low:g} to {bucket.upper_hours:g}"
            )
        late = bucket.upper_hours is None or bucket.upper_hours > speed.sla_hours
        items.append(
            charts.Column(label, bucket.count, str(bucket.count), "late" if late else "bar")
        )
    not_yet = speed.handoffs - speed.followed_up
    items.append(charts.Column("not yet", not_yet, str(not_yet), "waiting"))
    sla_after = next(i for i, b in enumerate(speed.histogram) if b.upper_hours == speed.sla_hours)
    desc = "; ".join(f"{c.label} hours: {c.text}" for c in items[:-1])
    desc += f"; not followed up yet: {not_yet}. The SLA is {speed.sla_hours:g} hours."
    return charts.columns(
        "speed-chart",
        "Hours from hand-off to first follow-up",
        desc,
        items,
        x_axis="Hours from hand-off to first follow-up",
        y_axis="Hand-offs",
        marker=(sla_after, f"SLA {speed.sla_hours:g} h"),
    )


def _speed_row(group: str, s: SpeedToLead) -> tuple[Any, ...]:
    return (
        group,
        s.handoffs,
        s.followed_up,
        words.hours(s.response.median),
        words.hours(s.response.p90),
        s.over_sla,
        s.waiting,
    )


def _handoff_rows(handoffs: Sequence[Handoff], state: str) -> list[tuple[Any, ...]]:
    return [
        (
            h.link_id,
            h.email or "",
            h.source,
            f"{h.handed_off_at:%Y-%m-%d %H:%M}",
            words.hours(h.response_hours) if h.response_hours is not None else state,
        )
        for h in handoffs
    ]


def _speed(report: Report) -> str:
    speed = report.speed_to_lead
    title = f"Speed to lead: hand-offs to sales at {report.label(speed.handoff_stage)}"
    if not speed.handoffs:
        return _section("speed-to-lead", title, _empty(words.EMPTY["speed"]))
    groups = [("All", speed), *report.speed_to_lead_by.items()]
    late = _handoff_rows(speed.late, "") + _handoff_rows(speed.unanswered, "never")
    return _section(
        "speed-to-lead",
        title,
        f"<p class=muted>{_e(words.MEASURES[speed.measure])}. "
        f"{_e(words.sla_text(speed.sla_hours))}; waiting: not followed up yet, within it.</p>",
        _histogram(speed),
        _table("Speed to lead", ("", *words.SPEED_HEAD), [_speed_row(g, s) for g, s in groups]),
        *(
            _table(title, (first, *words.GROUP_SPEED_HEAD), rows)
            for title, first, rows in (
                (
                    "First touch by owner",
                    "Owner",
                    [words.group_speed_row(n, g) for n, g in speed.by_owner.items()],
                ),
                (
                    f"First touch by {report.closed_loop.group_field}",
                    "Source",
                    [words.group_speed_row(n, g) for n, g in speed.by_source.items()],
                ),
            )
            if rows
        ),
        _table(
            f"Followed up late or never (SLA {speed.sla_hours:g} hours)",
            words.OVER_SLA_HEAD,
            late,
            numeric_from=4,
        )
        if late
        else _empty(words.EMPTY["over_sla"]),
    )


def _revenue(report: Report) -> str:
    loop, currency = report.closed_loop, report.currency
    title = f"Closed-loop revenue by {loop.group_field}"
    if not loop.by_source:
        return _section("revenue", title, _empty(words.EMPTY["revenue"]))
    ranked = sorted(loop.by_source.items(), key=lambda item: (-item[1].won_revenue, item[0]))
    items = [
        charts.Bar(source, float(o.won_revenue), words.money(o.won_revenue, currency), css="won")
        for source, o in ranked
    ]
    desc = "; ".join(f"{s}: {words.money(o.won_revenue, currency)}" for s, o in ranked)
    rows = [
        (s, o.won, o.lost, words.percent(o.win_rate), words.amount(o.won_revenue))
        for s, o in loop.by_source.items()
    ]
    t = loop.total
    parts = [
        charts.bars(
            "revenue-chart",
            f"Won revenue by {loop.group_field} ({currency})",
            desc,
            items,
            axis=words.revenue_head(currency),
            top=0,
        ),
        _table(
            f"Deals won and lost, by {loop.group_field}",
            (loop.group_field, "Won", "Lost", "Win rate", words.revenue_head(currency)),
            rows,
            total=("All", t.won, t.lost, words.percent(t.win_rate), words.amount(t.won_revenue)),
        ),
    ]
    if loop.won_without_amount:
        parts.append(_empty(f"{loop.won_without_amount} won deal(s) without an amount."))
    return _section("revenue", title, *parts)


def _rate_bars(chart_id: str, title: str, rows: Mapping[str, QualityRow], min_deals: int) -> str:
    """Win rates as bars on one 0-100% scale; a rate from too few deals is drawn as no
    bar, its text saying ``n<5``, so that no one reads a rate from two deals."""
    items = [
        charts.Bar(
            name,
            0 if row.small_sample or row.win_rate is None else row.win_rate * 100,
            words.win_rate(row, min_deals),
            note=f"{row.handoffs} hand-offs, {row.won} won",
            css="waiting" if row.small_sample else "won",
        )
        for name, row in rows.items()
    ]
    desc = "; ".join(f"{b.label}: win rate {b.text}, {b.note}" for b in items)
    return charts.bars(chart_id, title, desc, items, axis="Win rate (%)", top=100)


def _thresholds_chart(q: Quality) -> str:
    items = [
        charts.Column(f"≥ {row.threshold:g}", row.handoffs, str(row.handoffs))
        for row in q.thresholds
    ]
    desc = "; ".join(
        f"score at or above {row.threshold:g}: {row.handoffs} hand-offs, win rate "
        f"{words.win_rate(row, q.min_deals)}, {row.held_back} held back"
        for row in q.thresholds
    )
    return charts.columns(
        "quality-thresholds-chart",
        "Hand-offs each score threshold would have made",
        desc,
        items,
        x_axis=f"{q.score_field} threshold",
        y_axis="Hand-offs",
    )


def _quality(report: Report) -> str:
    q, currency = report.quality, report.currency
    title = "Lead quality: what sales made of the hand-offs, by source and score"
    if not q.total.handoffs:
        return _section("quality", title, _empty(words.EMPTY["quality"]))
    min_deals = q.min_deals
    by_source = f"Win rate by {q.source_field}"
    figures = [(by_source, _rate_bars("quality-source-chart", by_source, q.by_source, min_deals))]
    scored = q.total.handoffs > q.unscored  # else the score charts draw nothing but zeros
    if q.by_band and scored:
        by_band = f"Win rate by {q.score_field} at hand-off"
        figures.append((by_band, _rate_bars("quality-band-chart", by_band, q.by_band, min_deals)))
    if q.score_field and q.thresholds and scored:
        figures.append(("Hand-offs each score threshold would have made", _thresholds_chart(q)))
    parts = [f"<p class=muted>{_e(note)}</p>" for note in words.quality_notes(report)]
    parts.append(
        '<div class="charts">'
        + "".join(f"<div><h3>{_e(name)}</h3>{chart}</div>" for name, chart in figures)
        + "</div>"
    )
    head = words.quality_head(currency)
    total = words.quality_row("All", q.total, min_deals)
    for caption, first, rows in (
        (f"Lead quality by {q.source_field}", q.source_field, q.by_source),
        (f"Lead quality by {q.score_field} at hand-off", "Score band", q.by_band),
        (f"Lead quality by {q.grade_field} at hand-off", q.grade_field or "", q.by_grade),
    ):
        if rows:
            cells = [words.quality_row(n, r, min_deals) for n, r in rows.items()]
            parts.append(_table(caption, (first, *head), cells, total=total))
    if q.total.reasons:
        parts.append(
            _table(
                "Why sales disqualified or recycled hand-offs",
                ("Reason", "Hand-offs"),
                list(q.total.reasons.items()),
            )
        )
    if q.score_field and q.thresholds and scored:
        parts.append(
            _table(
                f"If only {q.score_field} at or above a threshold were handed off",
                ("Threshold", *words.threshold_head(currency)),
                [words.threshold_row(row, min_deals) for row in q.thresholds],
            )
        )
    return _section("quality", title, *parts)


def _trend(report: Report) -> str:
    trend, currency = report.trend, report.currency
    per = f"per {trend.bucket}"
    labels = [words.bucket_label(trend.bucket, b.start) for b in trend.buckets]
    short = [label.removeprefix("Week of ") for label in labels]
    x_axis = "Week starting (Monday, UTC)" if trend.bucket == "week" else "Month"
    series = (
        ("hand-offs", "Hand-offs", [(b.handoffs, str(b.handoffs)) for b in trend.buckets]),
        ("won", "Deals won", [(b.won, str(b.won)) for b in trend.buckets]),
        (
            "revenue",
            words.revenue_head(currency),
            [(float(b.won_revenue), words.amount(b.won_revenue)) for b in trend.buckets],
        ),
    )
    parts = []
    for key, name, values in series:
        css = "bar" if key == "hand-offs" else "won"
        items = [
            charts.Column(label, value, text, css)
            for label, (value, text) in zip(short, values, strict=True)
        ]
        desc = "; ".join(f"{label}: {c.text}" for label, c in zip(labels, items, strict=True))
        chart_id, title = f"trend-{key}", f"{name} {per}"
        chart = charts.columns(
            chart_id, title, desc, items, x_axis=x_axis, y_axis=name, whole=key != "revenue"
        )
        parts.append(f"<div><h3>{_e(title)}</h3>{chart}</div>")
    parts = [f'<div class="charts">{"".join(parts)}</div>']
    note = words.cut_note(trend.bucket, report.since, report.until)
    if note:
        parts.append(f"<p class=muted>{_e(note)}</p>")
    now, before, change = trend.current, trend.previous, trend.change
    previous = words.period_text(trend.previous_since, report.since)
    rows: list[tuple[Any, ...]] = [
        (label, b.handoffs, b.won, words.amount(b.won_revenue))
        for label, b in zip(labels, trend.buckets, strict=True)
    ]
    rows += [
        ("This period", now.handoffs, now.won, words.amount(now.won_revenue)),
        (
            f"Previous period, {previous}",
            before.handoffs,
            before.won,
            words.amount(before.won_revenue),
        ),
    ]
    changes = (
        "Change",
        words.change(change.handoffs, now.handoffs),
        words.change(change.won, now.won),
        words.change(change.won_revenue, now.won_revenue),
    )
    head = (trend.bucket.capitalize(), *words.TREND_HEAD, words.revenue_head(currency))
    parts.append(_table(f"Trend {per}, against the previous period", head, rows, total=changes))
    return _section("trend", f"Trend {per}", *parts)


def _kpi(value: str, what: str, change: str | None = None, previous: str = "") -> str:
    trend = ""
    if change is not None:
        css = "up" if change.startswith("+") or change == "new" else ""
        css = "down" if change.startswith("-") and change != "-" else css
        trend = f'<span class="{css}">{_e(change)}</span> vs previous period {_e(previous)}'
    return f'<li><span class="kpi">{_e(value)}</span>{_e(what)}<br>{trend}</li>'


def _summary(report: Report) -> str:
    trend, speed, loop = report.trend, report.speed_to_lead, report.closed_loop
    now, before, change = trend.current, trend.previous, trend.change
    money = words.money
    items = [
        _kpi(
            str(now.handoffs),
            "hand-offs to sales",
            words.change(change.handoffs, now.handoffs),
            f"({before.handoffs})",
        ),
        _kpi(
            words.hours(speed.response.median),
            "median hours to first follow-up",
        ),
        _kpi(str(speed.over_sla), f"over the {speed.sla_hours:g}-hour SLA"),
        _kpi(str(now.won), "deals won", words.change(change.won, now.won), f"({before.won})"),
        _kpi(
            money(now.won_revenue, report.currency),
            "won revenue",
            words.change(change.won_revenue, now.won_revenue),
            f"({money(before.won_revenue, report.currency)})",
        ),
        _kpi(words.percent(loop.total.win_rate), "win rate (won / won and lost)"),
    ]
    return _section("summary", "At a glance", f'<ul class="kpis">{"".join(items)}</ul>')


def _recycled(report: Report) -> str:
    recycled = report.recycled
    if not recycled.people:
        return _section("recycled", "Recycled people", _empty(words.EMPTY["recycled"]))
    rows = [(report.label(stage), n) for stage, n in recycled.by_current_stage.items()]
    return _section(
        "recycled",
        "Recycled people",
        f"<p>{recycled.people} recycled, {recycled.requalified} re-qualified since.</p>",
        _table("Recycled people, by current stage", ("Current stage", "People"), rows),
    )


def render(report: Report) -> str:
    """The report as one HTML page."""
    period = words.period_text(report.since, report.until)
    header = (
        "<header><h1>Funnel and closed-loop revenue</h1>"
        f'<p id="generated">{_e(words.generated_line(report))}</p></header>'
    )
    sections = [
        _summary(report),
        *_funnel(report),
        _speed(report),
        _revenue(report),
        _quality(report),
        _trend(report),
        _recycled(report),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Funnel and closed-loop revenue, {_e(period)}</title>"
        f"<style>{CSS}</style></head><body>{header}<main>{''.join(sections)}</main></body></html>"
    )
