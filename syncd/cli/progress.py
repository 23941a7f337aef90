"""``syncd once``'s progress on the terminal: a line per object, refreshed while it runs.

Each line shows the object, what its cycle is doing, the records read and written per
system with their rates, and what the cycle waited on: each system's pacing (the time
callers spent waiting for a slot under the rate limits, by limit). It goes to stderr,
and only when stderr is a terminal; the report printed at the end is unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column

from syncd.abc import Connector
from syncd.daemon.pacing import PacingStats, pacer_of
from syncd.sync.progress import Tally

REFRESH_SECONDS = 0.25


@contextmanager
def shown(console: Console, connectors: Sequence[Connector]) -> Iterator[Tally]:
    """A ``Tally`` to hand the engine, shown on ``console`` until the block ends."""
    tally = Tally()
    start = {c.system: _stats(c) for c in connectors}
    bars = Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True, min_width=7)),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}", table_column=Column(ratio=1, overflow="fold")),
        console=console,
        expand=True,
    )
    tasks: dict[str, TaskID] = {}
    done = threading.Event()

    def refresh() -> None:
        for obj in list(tally.started):
            if obj not in tasks:
                for other in tasks.values():  # the objects run one after the other
                    bars.update(other, completed=1)
                tasks[obj] = bars.add_task(obj, total=1, detail="")
            what = tally.phases.get(obj, "")
            detail = f"{what} · {escape(tally.counts_text(obj))}{_waits(connectors, start)}"
            bars.update(tasks[obj], description=obj, detail=detail)

    def loop() -> None:
        while not done.wait(REFRESH_SECONDS):
            refresh()

    updater = threading.Thread(target=loop, name="progress", daemon=True)
    with bars:
        updater.start()
        ended = False
        try:
            yield tally
            ended = True
        finally:
            done.set()
            updater.join()
            refresh()
            for obj, task in tasks.items():  # a cycle that failed keeps its last object open
                if ended or obj != list(tasks)[-1]:
                    bars.update(task, completed=1)


def _stats(connector: Connector) -> PacingStats:
    pacer = pacer_of(connector)
    if pacer is None:
        return PacingStats()
    stats = pacer.stats
    return PacingStats(
        stats.calls, stats.waits, stats.wait_seconds, stats.http_429, dict(stats.by_limit)
    )


def _waits(connectors: Sequence[Connector], start: dict[str, PacingStats]) -> str:
    """`` · waited for hubspot's pacing 3.4 s (search 12)``: the waits since the start."""
    parts = []
    for connector in connectors:
        now, was = _stats(connector), start[connector.system]
        seconds = now.wait_seconds - was.wait_seconds
        if seconds < 0.05:
            continue
        by = {k: n - was.by_limit.get(k, 0) for k, n in now.by_limit.items()}
        limits = ", ".join(f"{k} {n}" for k, n in sorted(by.items()) if n)
        parts.append(f"{connector.system} {seconds:.1f} s ({limits})")
    return f" · waited for the rate limits: {'; '.join(parts)}" if parts else ""
