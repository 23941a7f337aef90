"""The daily API budget of each system: near it syncd slows down, at it syncd stops.

``systems.<name>.daily_budget`` in syncd.yaml is either a number of calls syncd may
make per UTC day, or a share of the system's own daily limit (``"80%"``), read from
what the system reports (Salesforce ``Sforce-Limit-Info``, HubSpot
``X-HubSpot-RateLimit-Daily``; that usage is the whole org's, other integrations
included). syncd counts its own calls per day in the store, so that a restart keeps
the count. With a tenth of the budget left, cycles that call the system run at half
their pace; with none left, they do not run until the day (UTC) turns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from syncd.abc import Connector
from syncd.config.settings import Config
from syncd.daemon.pacing import paced_counts
from syncd.state.store import Store
from syncd.state.tables import api_usage

PACED = ("waits", "wait_ms", "http_429")
"""The pacing's counts kept per system and day beside the calls (``syncd.daemon.pacing``)."""
NEAR = 0.1
"""With this share of the budget left, cycles run at half their pace."""


@dataclass(frozen=True, slots=True)
class Allowance:
    """What one system may still be called, today."""

    system: str
    remaining: int | None
    """Calls left (None: no budget set, or the share's limit not known yet)."""
    budget: int | None

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    @property
    def near(self) -> bool:
        return (
            self.remaining is not None
            and self.budget is not None
            and self.remaining < NEAR * self.budget
        )

    def text(self) -> str:
        if self.remaining is None:
            return f"{self.system}: no budget"
        state = "SPENT" if self.spent else ("near" if self.near else "ok")
        return f"{self.system}: {self.remaining} of {self.budget} calls left today ({state})"


def parse(raw: object) -> tuple[int | None, float | None]:
    """(absolute calls, share of the limit) from a ``daily_budget`` setting."""
    if raw is None or raw == "":
        return None, None
    text = str(raw).strip()
    if text.endswith("%"):
        return None, float(text[:-1]) / 100
    return int(text), None


def day(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def next_day(now: datetime) -> datetime:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=1)


class Budgets:
    """The budgets of the configured systems, and syncd's calls counted per day."""

    def __init__(self, store: Store, settings: Mapping[str, object]) -> None:
        self.store = store
        self.settings = {name: parse(raw) for name, raw in settings.items()}

    @classmethod
    def for_config(cls, store: Store, config: Config) -> Budgets:
        """The ``daily_budget`` of every configured system."""
        systems = config.syncd.systems.items()
        return cls(store, {name: s.options().get("daily_budget") for name, s in systems})

    def allowance(self, connector: Connector, now: datetime) -> Allowance:
        absolute, share = self.settings.get(connector.system, (None, None))
        if absolute is not None:
            return Allowance(
                connector.system, absolute - self.used(connector.system, now), absolute
            )
        if share is not None:
            usage = connector.api_usage()
            if usage is None:  # nothing reported yet: the first calls tell
                return Allowance(connector.system, None, None)
            used, limit = usage
            budget = int(limit * share)
            return Allowance(connector.system, budget - used, budget)
        return Allowance(connector.system, None, None)

    def used(self, system: str, now: datetime) -> int:
        return self.today(system, now)["calls"]

    def add(
        self, system: str, calls: int, now: datetime, paced: Mapping[str, int] | None = None
    ) -> None:
        """Count ``calls`` more made today; ``paced``: of them, ``waits``, ``wait_ms`` and
        ``http_429`` (``syncd.daemon.pacing``)."""
        extra = {k: int(v) for k, v in (paced or {}).items() if k in PACED and v}
        if calls <= 0 and not extra:
            return
        today = day(now)
        row = api_usage.c
        with self.store.engine.begin() as connection:
            done = connection.execute(
                update(api_usage)
                .where(row.system == system, row.day == today)
                .values(calls=row.calls + calls, **{k: row[k] + v for k, v in extra.items()})
            )
            if not done.rowcount:
                connection.execute(
                    api_usage.insert().values(system=system, day=today, calls=calls, **extra)
                )

    @contextmanager
    def metered(self, connectors: Sequence[Connector]) -> Iterator[None]:
        """Count the API calls ``connectors`` make inside, per system and day (``add``):
        the daemon's cycles and resyncs, and ``syncd once`` and ``resync --now`` alike."""
        before = {c.system: sum(c.api_calls().values()) for c in connectors}
        paced = {c.system: paced_counts(c) for c in connectors}
        try:
            yield
        finally:
            now = datetime.now(UTC)
            for connector in connectors:
                made = sum(connector.api_calls().values()) - before.get(connector.system, 0)
                was = paced.get(connector.system, {})
                more = {k: v - was.get(k, 0) for k, v in paced_counts(connector).items()}
                self.add(connector.system, made, now, more)

    def today(self, system: str, now: datetime) -> dict[str, int]:
        """Today's calls, waits, wait_ms and http_429 of ``system`` (zeros if none)."""
        row = api_usage.c
        with self.store.engine.connect() as connection:
            found = connection.execute(
                select(row.calls, *(row[k] for k in PACED)).where(
                    row.system == system, row.day == day(now)
                )
            ).first()
        values = tuple(found) if found is not None else (0,) * (1 + len(PACED))
        return dict(zip(("calls", *PACED), (int(v or 0) for v in values), strict=True))
