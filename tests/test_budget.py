"""The daily API budget: counted per system and UTC day in the store; near, then spent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from syncd.daemon.budget import Budgets, next_day, parse
from syncd.state.store import Store

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Reporting:
    """A connector as far as budgets go: its name and what it last reported."""

    def __init__(self, system: str, usage: tuple[int, int] | None) -> None:
        self.system, self.usage = system, usage

    def api_usage(self) -> tuple[int, int] | None:
        return self.usage

    def api_calls(self) -> Mapping[str, int]:
        return {}


def test_settings_read_as_calls_or_a_share_of_the_limit() -> None:
    assert parse(1000) == (1000, None) and parse("80%") == (None, 0.8)
    assert parse(None) == (None, None) and parse("") == (None, None)
    assert next_day(NOON) == datetime(2026, 11, 24, tzinfo=UTC)


def test_an_absolute_budget_counts_our_calls_per_day_and_survives_a_restart(
    store: Store,
) -> None:
    budgets = Budgets(store, {"hubspot": 100, "salesforce": None})
    hubspot = Reporting("hubspot", None)
    budgets.add("hubspot", 85, NOON)
    allowance = budgets.allowance(hubspot, NOON)  # type: ignore[arg-type]
    assert (allowance.remaining, allowance.near, allowance.spent) == (15, False, False)
    again = Budgets(store, {"hubspot": 100})  # a new process reads the same count
    again.add("hubspot", 6, NOON + timedelta(hours=1))
    allowance = again.allowance(hubspot, NOON)  # type: ignore[arg-type]
    assert (allowance.remaining, allowance.near, allowance.spent) == (9, True, False)
    again.add("hubspot", 9, NOON)
    assert again.allowance(hubspot, NOON).spent  # type: ignore[arg-type]
    tomorrow = NOON + timedelta(days=1)
    assert again.allowance(hubspot, tomorrow).remaining == 100  # type: ignore[arg-type]
    salesforce = Reporting("salesforce", (10, 1000))
    assert budgets.allowance(salesforce, NOON).remaining is None  # type: ignore[arg-type]


def test_a_share_follows_the_usage_the_system_reports(store: Store) -> None:
    budgets = Budgets(store, {"salesforce": "50%"})
    org = Reporting("salesforce", None)
    assert budgets.allowance(org, NOON).remaining is None  # type: ignore[arg-type]
    org.usage = (4_000, 10_000)  # the org's usage, other integrations too
    allowance = budgets.allowance(org, NOON)  # type: ignore[arg-type]
    assert (allowance.budget, allowance.remaining, allowance.spent) == (5_000, 1_000, False)
    org.usage = (5_200, 10_000)
    assert budgets.allowance(org, NOON).spent  # type: ignore[arg-type]
