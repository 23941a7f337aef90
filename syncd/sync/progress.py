"""How far a cycle has got, while it runs: the engine tells a ``Progress``, others show it.

The engine calls ``read`` for every page it stores in the inbox (and every sweep slice),
``wrote`` for every chunk whose writes were answered, and ``phase`` when it starts
reading, merging or closing the loop of an object; the counts add up to the cycle's
``CycleReport`` (read, created, updated, rejected per system). ``Tally`` keeps them,
thread-safe (both systems are read and written from threads of their own), for the
daemon's progress log lines and ``syncd once``'s progress bars; the engine imports no
renderer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Progress(Protocol):
    """Told by the engine what a cycle does; every method returns at once."""

    def phase(self, obj: str, what: str) -> None:
        """``obj``'s cycle is now doing ``what`` (``reading``, ``merging``, ...)."""
        ...

    def read(self, obj: str, system: str, records: int) -> None:
        """``records`` more records of ``obj`` were read from ``system``."""
        ...

    def wrote(self, obj: str, system: str, created: int, updated: int, rejected: int) -> None:
        """``system`` answered writes of ``obj``: so many created, updated, refused."""
        ...


class Silent:
    """A ``Progress`` that listens to nothing (the default)."""

    def phase(self, obj: str, what: str) -> None:
        pass

    def read(self, obj: str, system: str, records: int) -> None:
        pass

    def wrote(self, obj: str, system: str, created: int, updated: int, rejected: int) -> None:
        pass


@dataclass
class Counts:
    """One object and system so far."""

    read: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0

    @property
    def written(self) -> int:
        return self.created + self.updated


@dataclass
class Tally:
    """A ``Progress`` that keeps the counts per (object, system), the current phase and
    when each object started, for whoever shows them."""

    clock: Callable[[], float] = time.monotonic
    counts: dict[tuple[str, str], Counts] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def phase(self, obj: str, what: str) -> None:
        with self._lock:
            self.started.setdefault(obj, self.clock())
            self.phases[obj] = what

    def read(self, obj: str, system: str, records: int) -> None:
        with self._lock:
            self._of(obj, system).read += records

    def wrote(self, obj: str, system: str, created: int, updated: int, rejected: int) -> None:
        with self._lock:
            counts = self._of(obj, system)
            counts.created += created
            counts.updated += updated
            counts.rejected += rejected

    def _of(self, obj: str, system: str) -> Counts:
        self.started.setdefault(obj, self.clock())
        return self.counts.setdefault((obj, system), Counts())

    def snapshot(self) -> dict[tuple[str, str], Counts]:
        """A copy of the counts so far."""
        with self._lock:
            return {key: Counts(**vars(c)) for key, c in self.counts.items()}

    def elapsed(self, obj: str) -> float:
        """Seconds since ``obj``'s cycle started (0 before it did)."""
        with self._lock:
            began = self.started.get(obj)
        return 0.0 if began is None else max(0.0, self.clock() - began)

    def line(self, obj: str) -> str:
        """``person 21 s, merging and writing: read hubspot 12,000 (571/s), salesforce 0;
        written salesforce 8,000 (380/s)``: one object's progress in words."""
        with self._lock:
            what = self.phases.get(obj, "starting")
        return f"{obj} {self.elapsed(obj):.0f} s, {what}: {self.counts_text(obj)}"

    def counts_text(self, obj: str) -> str:
        """What ``obj``'s cycle read and wrote so far per system, with the rates:
        ``read hubspot 12,000 (571/s); written salesforce 8,000 (380/s)``."""
        rate = max(self.elapsed(obj), 1e-9)
        mine = {system: c for (o, system), c in sorted(self.snapshot().items()) if o == obj}
        read = ", ".join(
            f"{s} {c.read:,} ({c.read / rate:,.0f}/s)" for s, c in mine.items() if c.read
        )
        written = ", ".join(
            f"{s} {c.written:,} ({c.written / rate:,.0f}/s)"
            + (f", {c.rejected:,} rejected" if c.rejected else "")
            for s, c in mine.items()
            if c.written or c.rejected
        )
        return f"read {read or 'nothing yet'}; written {written or 'nothing yet'}"
