"""The report as rich tables, for ``syncd report`` and ``syncd demo``.

The same figures, words and order as the HTML page (``syncd.report.html``).
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syncd.report import format as words
from syncd.report.model import FunnelStep, Handoff, Report, SpeedToLead


def _table(title: str, head: tuple[str, ...], first: str = "") -> Table:
    table = Table(title=escape(title))
    table.add_column(escape(first))
    for column in head:
        table.add_column(escape(column), justify="right")
    return table


def _funnel_table(title: str, steps: tuple[FunnelStep, ...]) -> Table:
    table = _table(title, words.FUNNEL_HEAD[1:], words.FUNNEL_HEAD[0])
    for step in steps:
        hours = step.hours_to_next
        table.add_row(
            escape(step.label),
            str(step.reached),
            words.percent(step.conversion),
            words.hours(hours.median) if hours else "",
            words.hours(hours.p90) if hours else "",
        )
    return table


def _speed_row(group: str, s: SpeedToLead) -> tuple[str, ...]:
    return (
        escape(group),
        str(s.handoffs),
        str(s.followed_up),
        words.hours(s.response.median),
        words.hours(s.response.p90),
        str(s.over_sla),
        str(s.waiting),
    )


def _handoff_rows(table: Table, handoffs: tuple[Handoff, ...], state: str) -> None:
    for h in handoffs:
        table.add_row(
            str(h.link_id),
            escape(h.email or ""),
            escape(h.source),
            f"{h.handed_off_at:%Y-%m-%d %H:%M}",
            words.hours(h.response_hours) if h.response_hours is not None else state,
        )


def _funnel(console: Console, result: Report) -> None:
    period = words.period_text(result.since, result.until)
    if not any(step.reached for step in result.funnel):
        console.print(f"Funnel, {period}\n{words.EMPTY['funnel']}")
        return
    console.print(_funnel_table(f"Funnel, {period}", result.funnel))
    if result.funnel_by:
        by_group = _table(
            f"People reached, by {result.by}",
            tuple(s.label for s in result.funnel),
            result.by or "",
        )
        for group, steps in result.funnel_by.items():
            by_group.add_row(escape(group), *(str(step.reached) for step in steps))
        console.print(by_group)


def _speed(console: Console, result: Report) -> None:
    speed = result.speed_to_lead
    title = f"Speed to lead: hand-offs to sales at {result.label(speed.handoff_stage)}"
    if not speed.handoffs:
        console.print(f"{escape(title)}\n{words.EMPTY['speed']}")
        return
    table = _table(title, words.SPEED_HEAD)
    for group, s in [("All", speed), *result.speed_to_lead_by.items()]:
        table.add_row(*_speed_row(group, s))
    table.caption = (
        f"{words.MEASURES[speed.measure]}. {words.sla_text(speed.sla_hours)}; waiting: not"
        " followed up yet, within it"
    )
    console.print(table)
    for title, first, groups in (
        ("First touch by owner", "Owner", speed.by_owner),
        (f"First touch by {result.closed_loop.group_field}", "Source", speed.by_source),
    ):
        if groups:
            by_group = _table(title, words.GROUP_SPEED_HEAD, first)
            for name, speeds in groups.items():
                by_group.add_row(*(escape(cell) for cell in words.group_speed_row(name, speeds)))
            console.print(by_group)
    if speed.over_sla:
        late = Table(title=f"Followed up late or never (SLA {speed.sla_hours:g} hours)")
        for column in words.OVER_SLA_HEAD:
            late.add_column(column)
        _handoff_rows(late, speed.late, "")
        _handoff_rows(late, speed.unanswered, "never")
        console.print(late)


def _closed_loop(console: Console, result: Report) -> None:
    loop = result.closed_loop
    title = f"Closed-loop revenue by {loop.group_field}"
    if not loop.by_source:
        console.print(f"{escape(title)}\n{words.EMPTY['revenue']}")
        return
    head = ("Won", "Lost", "Win rate", words.revenue_head(result.currency))
    table = _table(title, head, loop.group_field)
    for source, o in [*loop.by_source.items(), ("All", loop.total)]:
        table.add_row(
            escape(source),
            str(o.won),
            str(o.lost),
            words.percent(o.win_rate),
            words.amount(o.won_revenue),
        )
    if loop.won_without_amount:
        table.caption = f"{loop.won_without_amount} won deal(s) without an amount"
    console.print(table)


def _quality(console: Console, result: Report) -> None:
    q = result.quality
    title = f"Lead quality by {q.source_field}"
    if not q.total.handoffs:
        console.print(f"{escape(title)}\n{words.EMPTY['quality']}")
        return
    head = words.quality_head(result.currency)
    groups = [
        (title, q.source_field, q.by_source),
        (f"Lead quality by {q.score_field} at hand-off", "Score band", q.by_band),
        (f"Lead quality by {q.grade_field} at hand-off", q.grade_field or "", q.by_grade),
    ]
    for caption, first, rows in groups:
        if not rows:
            continue
        table = _table(caption, head, first)
        for name, row in rows.items():
            table.add_row(*(escape(cell) for cell in words.quality_row(name, row, q.min_deals)))
        table.add_section()
        table.add_row(*words.quality_row("All", q.total, q.min_deals))
        console.print(table)
    if q.total.reasons:
        reasons = _table("Why sales disqualified or recycled hand-offs", ("Hand-offs",), "Reason")
        for reason, count in q.total.reasons.items():
            reasons.add_row(escape(reason), str(count))
        console.print(reasons)
    if q.score_field and q.thresholds and q.total.handoffs > q.unscored:
        table = _table(
            f"If only {q.score_field} at or above a threshold were handed off",
            words.threshold_head(result.currency),
            "Threshold",
        )
        for threshold in q.thresholds:
            table.add_row(*(escape(c) for c in words.threshold_row(threshold, q.min_deals)))
        console.print(table)
    for note in words.quality_notes(result):
        console.print(escape(note), style="dim")


def _trend(console: Console, result: Report) -> None:
    trend = result.trend
    head = (*words.TREND_HEAD, words.revenue_head(result.currency))
    table = _table(f"Trend per {trend.bucket}", head, trend.bucket.capitalize())
    for b in trend.buckets:
        label = words.bucket_label(trend.bucket, b.start)
        table.add_row(label, str(b.handoffs), str(b.won), words.amount(b.won_revenue))
    now, before, change = trend.current, trend.previous, trend.change
    table.add_section()
    table.add_row("This period", str(now.handoffs), str(now.won), words.amount(now.won_revenue))
    previous = words.period_text(trend.previous_since, result.since)
    note = words.cut_note(trend.bucket, result.since, result.until)
    table.caption = escape(f"Previous period: {previous}. {note}".strip())
    table.add_row(
        "Previous period",
        str(before.handoffs),
        str(before.won),
        words.amount(before.won_revenue),
    )
    table.add_row(
        "Change",
        words.change(change.handoffs, now.handoffs),
        words.change(change.won, now.won),
        words.change(change.won_revenue, now.won_revenue),
    )
    console.print(table)


def print_report(console: Console, result: Report) -> None:
    """The report as rich tables: funnel, speed to lead, closed loop, lead quality, trend,
    recycled."""
    console.print(escape(words.generated_line(result)))
    _funnel(console, result)
    _speed(console, result)
    _closed_loop(console, result)
    _quality(console, result)
    _trend(console, result)
    recycled = result.recycled
    if not recycled.people:
        console.print(f"Recycled people\n{words.EMPTY['recycled']}")
        return
    table = _table("Recycled people, by current stage", ("People",), "Current stage")
    for stage, count in recycled.by_current_stage.items():
        table.add_row(escape(result.label(stage)), str(count))
    table.caption = f"{recycled.people} recycled, {recycled.requalified} re-qualified since"
    console.print(table)
