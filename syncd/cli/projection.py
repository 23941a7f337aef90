"""``syncd validate``'s tables of the idle cost and the propagation time
(``syncd.daemon.cadence``)."""

from __future__ import annotations

from rich.table import Table

from syncd.daemon.cadence import CYCLE_SECONDS, DAY_SECONDS, IDLE_SHARE, Projection


def idle_table(projection: Projection) -> Table:
    table = Table(title=f"Idle API calls a day: {DAY_SECONDS:,} / cadence x calls per idle cycle")
    for column in ("system", "object", "cadence s", "cycles a day", "calls a cycle"):
        table.add_column(column, justify="left" if column in ("system", "object") else "right")
    table.add_column("calls a day", justify="right")
    notes = []
    for cost in projection.systems:
        for o in cost.objects:
            table.add_row(
                cost.system,
                o.object,
                str(o.cadence_s),
                f"{o.cycles_per_day:,.0f}",
                f"{o.calls_per_cycle:g}",
                f"{o.calls_per_day:,.0f}",
            )
        table.add_row(cost.system, "all", "", "", "", f"{cost.calls_per_day:,.0f}")
        notes.append(
            f"{cost.system}: {cost.share:.1%} of {cost.allowance:,} a day"
            f" (limit {cost.daily_limit:,}, {cost.limit_from})"
        )
    table.caption = "; ".join(notes) + f"; warned above {IDLE_SHARE:.0%}"
    return table


def propagation_table(projection: Projection) -> Table:
    table = Table(title="Propagation of a change at these settings, seconds")
    columns = ("object", "direction", "settle", "cadence", "cycle", "mean", "p95", "worst")
    for column in (*columns, "late"):
        table.add_column(column, justify="left" if column in columns[:2] else "right")
    for p in projection.propagation:
        table.add_row(
            p.object,
            p.direction.replace("_to_", " -> "),
            *(f"{v:g}" for v in (p.settle_s, p.cadence_s, p.cycle_s, p.mean_s, p.p95_s, p.worst_s)),
            f"{p.late_s:g}",
        )
    table.caption = (
        "a change waits for the source's settle time, then half a cadence on average"
        " (0.95 of one at p95, a whole one at worst) for the next scan, then the cycle"
        f" ({CYCLE_SECONDS:g} s allowed; syncd status shows the propagation measured):"
        " mean = settle + cadence / 2 + cycle, p95 = settle + 0.95 x cadence + cycle,"
        " worst = settle + cadence + cycle. late: a change the source shows after its"
        " settle time (search lag, a long transaction's commit) is read again"
        " overlap_minutes later: overlap + cadence + cycle"
    )
    return table


def floors(projection: Projection) -> list[str]:
    """The directions that can never be faster than their source's settle time."""
    seen: dict[str, float] = {}
    for p in projection.propagation:
        if p.settle_s > 0:
            seen[p.direction] = p.settle_s
    return [
        f"{way.replace('_to_', ' -> ')}: never under {settle:g} s, the source's search"
        " settle time (search_settle_seconds)"
        for way, settle in seen.items()
    ]
