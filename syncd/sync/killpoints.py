"""Deterministic crash points for the kill sweep (``syncd.harness.killsweep``).

``SYNCD_KILL_AT=name`` (or ``name#n``) makes the process SIGKILL itself the first (or
the n-th) time it reaches the point ``name``: a kill at a chosen step, repeatable,
where a timed kill lands wherever the scheduler happens to be. Unset, a point costs
one dictionary look-up.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from typing import Any

ENV = "SYNCD_KILL_AT"
POINTS = {
    "migrate.sql": "each SQL statement of a migration, after it ran",
    "migrate.step": "each migration applied, its version row updated, not committed",
    "pull.page": "each page of changes kept in the inbox, its cursor advanced",
    "write.landed": "each chunk's writes landed in both systems, partner ids not yet",
    "write.before_commit": "each chunk's writes done (partner ids too), not committed",
    "commit.done": "each chunk committed",
    "touch.page": "each page of sales activities kept, its cursor advanced",
    "sla.tasks_written": "SLA reminder tasks written in the CRM, not committed",
    "sla.flags_written": "SLA flags set or cleared in the marketing system, not committed",
    "loop.associated": "each closed-loop chunk's people associated with their deals, not kept",
}
"""The points syncd passes, and when it passes each."""

_hits: Counter[str] = Counter()
_lock = threading.Lock()


def target(value: str | None) -> tuple[str, int] | None:
    """``name#n`` as (name, n); ``name`` alone is its first hit."""
    if not value:
        return None
    name, _, nth = value.partition("#")
    return name, int(nth or 1)


def reached(name: str) -> None:
    """Count one pass of ``name``; the pass ``SYNCD_KILL_AT`` names kills the process."""
    wanted = target(os.environ.get(ENV))
    if wanted is None or wanted[0] != name:
        return
    with _lock:
        _hits[name] += 1
        if _hits[name] == wanted[1]:
            os.kill(os.getpid(), signal.SIGKILL)


def on_statement(name: str) -> Any:
    """A SQLAlchemy ``after_cursor_execute`` listener that passes ``name``."""

    def listener(*_: Any) -> None:
        reached(name)

    return listener
