"""Maintenance commands, hidden from the help: ``syncd killsweep``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from syncd.cli.common import JsonOption, console, dump
from syncd.harness import killsweep as sweeps


def killsweep(
    store: Annotated[
        str, typer.Option(help='"sqlite" (a new file a trial) or a PostgreSQL URL (a new schema).')
    ] = "sqlite",
    deep: Annotated[
        bool, typer.Option(help="Every statement of the first migration and more points.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Kill `syncd once` at each crash point, run again, and check nothing was lost.

    Each trial kills (SIGKILL) at one point, runs again, and checks both systems and the
    store; exit 1 when a trial left a duplicate, a record missing or unlinked, a link
    without journal or a store that does not open.

    Example:

    $ syncd killsweep --store sqlite
    """
    result = sweeps.sweep(store, sweeps.DEEP if deep else sweeps.POINTS)
    totals = result.totals()
    dirty = [t for t in result.trials if not t.clean]
    if as_json:
        dump({"store": store, **totals, "dirty": [t.point for t in dirty]})
    else:
        table = Table(title=f"Kill sweep on {store}")
        for name in ("point", "killed", "opens", "duplicates", "missing", "unjournaled", "error"):
            table.add_column(name)
        for t in result.trials:
            cells = (t.point, t.killed, t.opens, t.duplicates, t.missing, t.unjournaled)
            table.add_row(*(str(c) for c in cells), t.error or "")
        table.caption = " · ".join(f"{k} {v}" for k, v in totals.items())
        console.print(table)
    if dirty:
        raise typer.Exit(1)
