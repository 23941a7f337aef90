"""Propagation seconds of a cycle, kept compact: whole milliseconds, 4 bytes a change.

A backfill writes every record it reads, so its report holds one propagation figure per
record for as long as the report lives (the daemon's last cycle, the benchmark's whole
run). As an array of doubles that took 8 bytes a change, and twice over: each object's
report held its own, and the cycle's total a copy of all of them (19 MB at a million
people). Here a figure takes 4 bytes (milliseconds, the precision ``syncd.sync.cycle.summary``
reports anyway), and a total shares its objects' arrays instead of copying them.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

MOST_MS = 2**32 - 1
"""The largest figure a 4-byte unsigned array holds: about 49 days; longer ones count as it."""


class Latencies:
    """Seconds, each rounded to the millisecond; appended to, joined, read in order."""

    __slots__ = ("_open", "_runs")

    def __init__(self, seconds: Iterable[float] = ()) -> None:
        self._runs: list[array[int]] = []
        self._open: array[int] | None = None
        """The array appends go to: one shared with no other ``Latencies``."""
        for value in seconds:
            self.append(value)

    def append(self, seconds: float) -> None:
        """Add one figure (negative ones count as 0)."""
        run = self._open
        if run is None:
            run = self._open = array("I")
            self._runs.append(run)
        try:  # one figure per change written: the common case costs one C call
            run.append(int(seconds * 1000 + 0.5))
        except OverflowError:  # below 0 or past ``MOST_MS``
            run.append(MOST_MS if seconds > 0 else 0)

    def join(self, other: Latencies) -> None:
        """Hold ``other``'s figures too, sharing its arrays (no copy). The shared arrays
        take no more figures: what either appends afterwards goes to an array of its own."""
        self._runs.extend(run for run in other._runs if run)
        self._open = other._open = None

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def __iter__(self) -> Iterator[float]:
        for run in self._runs:
            for ms in run:
                yield ms / 1000

    def __contains__(self, seconds: object) -> bool:
        return any(value == seconds for value in self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Latencies):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __repr__(self) -> str:
        return f"Latencies({len(self)} figures)"
