"""The report as rich tables, for ``syncd report`` and ``syncd demo``."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syncd.report_model import FunnelStep, Handoff, Report


def _hours_text(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _percent_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _funnel_table(title: str, steps: tuple[FunnelStep, ...]) -> Table:
    table = Table(title=title)
    table.add_column("stage")
    for column in ("reached", "to next", "timed", "median h", "p90 h"):
        table.add_column(column, justify="right")
    for step in steps:
        hours = step.hours_to_next
        table.add_row(
            escape(step.label),
            str(step.reached),
            _percent_text(step.conversion),
            str(hours.count) if hours else "",
            _hours_text(hours.median) if hours else "",
            _hours_text(hours.p90) if hours else "",
        )
    return table


def _handoff_rows(table: Table, handoffs: tuple[Handoff, ...], state: str) -> None:
    for h in handoffs:
        table.add_row(
            str(h.link_id),
            escape(h.email or ""),
            escape(h.source),
            f"{h.handed_off_at:%Y-%m-%d %H:%M}",
            _hours_text(h.response_hours) if h.response_hours is not None else state,
        )


def print_report(console: Console, result: Report) -> None:
    """The report as rich tables: funnel, speed to lead, closed loop, recycled."""
    period = f"{result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC"
    console.print(_funnel_table(f"Funnel, {period}", result.funnel))
    if result.funnel_by:
        by_group = Table(title=f"Reached, by {escape(result.by or '')}")
        by_group.add_column(escape(result.by or ""))
        for step in result.funnel:
            by_group.add_column(escape(step.stage), justify="right")
        for group, steps in result.funnel_by.items():
            by_group.add_row(escape(group), *(str(step.reached) for step in steps))
        console.print(by_group)
    speed = result.speed_to_lead
    table = Table(title=f"Speed to lead (hand-off at {escape(speed.handoff_stage)})")
    for column in ("", "hand-offs", "followed up", "median h", "p90 h", "over SLA", "waiting"):
        table.add_column(column, justify="right" if column else "left")
    for group, s in [("(all)", speed), *result.speed_to_lead_by.items()]:
        table.add_row(
            escape(group),
            str(s.handoffs),
            str(s.followed_up),
            _hours_text(s.response.median),
            _hours_text(s.response.p90),
            str(s.over_sla),
            str(s.waiting),
        )
    table.caption = f"SLA {speed.sla_hours:g} h; waiting: not followed up yet, within the SLA"
    console.print(table)
    if speed.over_sla:
        late = Table(title=f"Over the SLA ({speed.sla_hours:g} h)")
        for column in ("link", "email", "source", "handed off (UTC)", "response h"):
            late.add_column(column)
        _handoff_rows(late, speed.late, "")
        _handoff_rows(late, speed.unanswered, "never")
        console.print(late)
    loop = result.closed_loop
    table = Table(title=f"Closed loop by {escape(loop.group_field)}")
    table.add_column(escape(loop.group_field))
    for column in ("won", "lost", "win rate", "won revenue"):
        table.add_column(column, justify="right")
    for source, o in [*loop.by_source.items(), ("(all)", loop.total)]:
        table.add_row(
            escape(source), str(o.won), str(o.lost), _percent_text(o.win_rate), f"{o.won_revenue:,}"
        )
    if loop.won_without_amount:
        table.caption = f"{loop.won_without_amount} won deal(s) without an amount"
    console.print(table)
    recycled = result.recycled
    table = Table(title="Recycled people, by current stage")
    table.add_column("current stage")
    table.add_column("people", justify="right")
    for stage, count in recycled.by_current_stage.items():
        table.add_row(escape(stage), str(count))
    table.caption = f"{recycled.people} recycled, {recycled.requalified} re-qualified since"
    console.print(table)
