"""Client-side pacing: syncd keeps under each system's published rate limits, rather than
learning them from 429 answers.

One ``Pacer`` per connector, shared by every thread that calls that system (the engine
reads and writes both systems from two threads each; sweeps, resyncs and the closed loop
call the same connectors). Before each HTTP call the connector takes a slot:

- **rates** from pyrate-limiter (its in-memory bucket keeps a log of the calls of each
  window, so a rolling window never holds more than the limit). HubSpot: the general
  limit of a private app, 190 requests per 10 s on Professional and Enterprise, 100 on
  Free and Starter (https://developers.hubspot.com/changelog/increasing-our-api-limits,
  https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details), and the
  search limit, 5 requests per second per portal
  (https://developers.hubspot.com/docs/guides/api/crm/search). Whether a search also
  counts toward the 10-second limit is not stated there; a search takes a slot of both,
  which is safe either way. Each window is paced a little longer than the published one
  (``MARGIN``): a call's slot is taken here and counted there on arrival, and a call
  delayed between the two must not make the server's window hold one call too many.
- **calls in flight**: Salesforce has no per-second rate; it refuses requests past its
  concurrent limit (25 long-running requests, of 20 s or more, in production orgs: "API
  Request Limits and Allocations",
  https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm)
  with 403 ``REQUEST_LIMIT_EXCEEDED``. The pacer caps syncd's own calls in flight
  (``max_concurrent_requests``), well under that. Its daily allocation is read from
  ``Sforce-Limit-Info`` and spent per ``syncd.daemon.budget``.
- **a pause**: after a 429, every caller of that system waits until its ``Retry-After``
  has passed (``pause``), not only the thread that met it.

A 429 is counted as a defect to report (``/metrics``, ``syncd status``), not the way syncd
learns the limit. Where HubSpot's answers report a lower limit than the configured one
(``X-HubSpot-RateLimit-Max`` / ``-Interval-Milliseconds``), the lower one is used from
then on (``observe_limit``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyrate_limiter import Limiter, Rate

MARGIN = 0.03
"""Each window is paced this share longer than the published one (at least 50 ms)."""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``requests`` calls in any ``seconds``."""

    requests: int
    seconds: float

    def text(self) -> str:
        return f"{self.requests}/{self.seconds:g}s"


@dataclass(slots=True)
class PacingStats:
    """What the pacer did since it started (counters only grow)."""

    calls: int = 0
    waits: int = 0
    """Calls that had to wait for a slot (more than ``WAITED`` seconds)."""
    wait_seconds: float = 0.0
    http_429: int = 0
    by_limit: dict[str, int] = field(default_factory=dict)
    """Waits per limit name (``general``, ``search``, ``in_flight``, ``pause``)."""


WAITED = 0.005
"""A slot that took longer than this to get counts as a wait."""


class _Window:
    """One rate: a pyrate-limiter limiter, and the recent calls for the gauge."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        padded = limit.seconds * 1000 * (1 + MARGIN)
        interval_ms = max(int(padded), int(limit.seconds * 1000) + 50)
        self.limiter = Limiter(Rate(limit.requests, interval_ms))
        self.recent: deque[float] = deque(maxlen=limit.requests)

    def take(self, now: Callable[[], float]) -> None:
        self.limiter.try_acquire("call", blocking=True)
        self.recent.append(now())

    def in_window(self, now: float) -> int:
        return sum(1 for at in self.recent if at > now - self.limit.seconds)

    def close(self) -> None:
        self.limiter.close()


class Pacer:
    """The pacing of one system: named rates, a cap on calls in flight, a pause."""

    def __init__(
        self,
        system: str,
        limits: Mapping[str, Limit],
        *,
        in_flight: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.system = system
        self._windows = {name: _Window(limit) for name, limit in limits.items()}
        self.in_flight = in_flight
        self._slots = threading.BoundedSemaphore(in_flight) if in_flight else None
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._until = 0.0
        self.stats = PacingStats()

    @property
    def limits(self) -> dict[str, Limit]:
        return {name: window.limit for name, window in self._windows.items()}

    @contextmanager
    def slot(self, *names: str) -> Iterator[None]:
        """Wait for a slot of each named rate (unknown names are no limit), for the pause
        to end and for a call in flight to end; then make the call inside."""
        started = self._clock()
        waited_on = self._wait_out_pause()
        for name in names:
            window = self._windows.get(name)
            if window is None:
                continue
            before = self._clock()
            window.take(self._clock)
            if self._clock() - before > WAITED:
                waited_on = waited_on or name
        if self._slots is not None:
            before = self._clock()
            self._slots.acquire()
            if self._clock() - before > WAITED:
                waited_on = waited_on or "in_flight"
        waited = self._clock() - started
        with self._lock:
            self.stats.calls += 1
            if waited_on is not None:
                self.stats.waits += 1
                self.stats.wait_seconds += waited
                self.stats.by_limit[waited_on] = self.stats.by_limit.get(waited_on, 0) + 1
        try:
            yield
        finally:
            if self._slots is not None:
                self._slots.release()

    def _wait_out_pause(self) -> str | None:
        waited = False
        while True:
            with self._lock:
                left = self._until - self._clock()
            if left <= 0:
                return "pause" if waited else None
            waited = True
            self._sleep(left)

    def pause(self, seconds: float | None) -> None:
        """A 429 was answered: count it, and hold every caller for ``seconds``
        (``Retry-After``; None: no pause beyond the caller's own backoff)."""
        with self._lock:
            self.stats.http_429 += 1
            if seconds and seconds > 0:
                self._until = max(self._until, self._clock() + seconds)

    def observe_limit(self, name: str, requests: int, seconds: float) -> None:
        """The system reported its limit: pace by it from now on if it is lower."""
        window = self._windows.get(name)
        if window is None or requests <= 0 or seconds <= 0:
            return
        current = window.limit
        if requests / seconds >= current.requests / current.seconds:
            return
        with self._lock:
            if self._windows.get(name) is window:
                self._windows[name] = _Window(Limit(requests, seconds))
        window.close()

    def in_window(self) -> dict[str, int]:
        """Calls made in the current window of each rate."""
        now = self._clock()
        return {name: window.in_window(now) for name, window in self._windows.items()}

    def close(self) -> None:
        for window in self._windows.values():
            window.close()


def limit_of(raw: object, default: Limit) -> Limit:
    """A ``{requests: N, seconds: S}`` setting (validated by ``syncd.config.settings``)."""
    if not isinstance(raw, Mapping):
        return default
    return Limit(
        int(raw.get("requests", default.requests)), float(raw.get("seconds", default.seconds))
    )


def pacer_of(connector: object) -> Pacer | None:
    """A connector's pacer (its ``pacer`` attribute), None when it has none."""
    pacer = getattr(connector, "pacer", None)
    return pacer if isinstance(pacer, Pacer) else None


def paced_counts(connector: object) -> dict[str, int]:
    """A connector's pacing counters so far: waits, wait_ms, http_429 (zeros unpaced)."""
    pacer = pacer_of(connector)
    stats = pacer.stats if pacer is not None else PacingStats()
    return {
        "waits": stats.waits,
        "wait_ms": int(stats.wait_seconds * 1000),
        "http_429": stats.http_429,
    }
