"""Client-side pacing (``syncd.daemon.pacing``): syncd stays under the limits the systems
enforce, instead of learning them from 429 answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from syncd import registry
from syncd.cli.app import app
from syncd.config.settings import SystemSettings
from syncd.daemon.budget import Budgets
from syncd.daemon.metrics import Metrics
from syncd.daemon.pacing import Limit, Pacer, paced_counts
from tests.world import World, make_world

GENERAL = (12, 1000)
SEARCH = (2, 1000)
"""Limits far below HubSpot's, so that a small sync meets them (max calls, ms)."""


class FakeTime:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_pause_after_a_429_holds_every_caller_until_retry_after() -> None:
    time = FakeTime()
    pacer = Pacer("hubspot", {}, clock=time.clock, sleep=time.sleep)
    pacer.pause(2.5)
    with pacer.slot("general"):
        pass
    assert time.slept == [2.5]
    with pacer.slot("general"):  # the pause is over: no wait
        pass
    assert time.slept == [2.5]
    assert pacer.stats.http_429 == 1 and pacer.stats.calls == 2
    assert pacer.stats.waits == 1 and pacer.stats.by_limit == {"pause": 1}
    assert pacer.stats.wait_seconds == pytest.approx(2.5)


def test_a_429_without_retry_after_is_counted_and_holds_no_one() -> None:
    time = FakeTime()
    pacer = Pacer("hubspot", {}, clock=time.clock, sleep=time.sleep)
    pacer.pause(None)
    with pacer.slot():
        pass
    assert time.slept == [] and pacer.stats.http_429 == 1 and pacer.stats.waits == 0


def test_a_rate_makes_the_call_past_its_limit_wait() -> None:
    pacer = Pacer("hubspot", {"general": Limit(3, 0.2)})
    try:
        for _ in range(3):
            with pacer.slot("general"):
                pass
        assert pacer.stats.waits == 0 and pacer.in_window() == {"general": 3}
        with pacer.slot("general"):  # the fourth in the window waits for the first to leave
            pass
        assert pacer.stats.waits == 1 and pacer.stats.by_limit == {"general": 1}
        assert pacer.stats.calls == 4
    finally:
        pacer.close()


def test_calls_in_flight_past_the_cap_wait_for_one_to_end() -> None:
    pacer = Pacer("salesforce", {}, in_flight=1)
    inside, release, second_in = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with pacer.slot():
            inside.set()
            release.wait(10)

    def second() -> None:
        with pacer.slot():
            second_in.set()

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(10)
    two = threading.Thread(target=second)
    two.start()
    assert not second_in.wait(0.3)  # held while the first is in flight
    release.set()
    assert second_in.wait(10)
    one.join(10)
    two.join(10)
    assert pacer.stats.calls == 2 and pacer.stats.by_limit == {"in_flight": 1}


def test_a_lower_limit_reported_by_the_system_is_kept_a_higher_one_is_not() -> None:
    pacer = Pacer("hubspot", {"general": Limit(190, 10)})
    try:
        pacer.observe_limit("general", 250, 10)
        assert pacer.limits["general"] == Limit(190, 10)
        pacer.observe_limit("general", 100, 10)
        assert pacer.limits["general"] == Limit(100, 10)
        pacer.observe_limit("search", 1, 1)  # not a rate this pacer keeps
        assert set(pacer.limits) == {"general"}
    finally:
        pacer.close()


@pytest.fixture
def paced(tmp_path: Path, store_url: str) -> Iterator[World]:
    settings = {
        "rate_limit": {"requests": GENERAL[0], "seconds": GENERAL[1] / 1000},
        "search_rate_limit": {"requests": SEARCH[0], "seconds": SEARCH[1] / 1000},
        "partner_id_write_back": "immediate",  # more writes: more calls in the window
    }
    yield from make_world(tmp_path, store_url, settings, {"max_concurrent_requests": 2})


def test_a_sync_under_enforced_limits_gets_no_429(paced: World) -> None:
    """The emulator enforces a 12-a-second limit and 2 searches a second; a backfill of
    700 contacts needs about 20 calls and 7 searches: unpaced, it meets 429s (and this
    world's retries do not wait, so it would fail); paced, none."""
    paced.hubspot.gate.rate_limit = GENERAL
    paced.hubspot.gate.search_rate_limit = SEARCH
    paced.hubspot.seed_contacts(700)
    report = paced.cycle()
    assert report.created == {"salesforce": 700}
    assert 429 not in paced.hubspot.statuses()
    pacer = paced.engine.marketing.pacer  # type: ignore[attr-defined]
    assert pacer.stats.http_429 == 0
    assert pacer.stats.waits > 0 and pacer.stats.by_limit.get("search", 0) > 0
    assert pacer.stats.calls == sum(paced.engine.marketing.api_calls().values())
    assert paced.engine.crm.pacer.in_flight == 2  # type: ignore[attr-defined]


def test_an_injected_429_pauses_the_system_for_every_caller(paced: World) -> None:
    paced.hubspot.seed_contacts(5)
    paced.hubspot.fail_next(429, count=1, retry_after=1)
    paced.cycle()
    pacer = paced.engine.marketing.pacer  # type: ignore[attr-defined]
    assert pacer.stats.http_429 == 1
    assert pacer.stats.by_limit.get("pause") == 1  # the retry waited out Retry-After
    assert paced.sleeps and max(paced.sleeps) >= 1  # the retry policy honoured it too


def test_the_published_limits_pace_a_real_portal_and_loopback_only_when_set(
    tmp_path: Path, store_url: str
) -> None:
    for world in make_world(tmp_path, store_url):
        hubspot = world.config.syncd.systems["hubspot"]
        assert registry.hubspot_pacer(hubspot).limits == {}  # the emulator, nothing set
        real = SystemSettings.model_validate(
            {**hubspot.model_dump(), "host": "https://api.hubapi.com"}
        )
        assert registry.hubspot_pacer(real).limits == registry.PUBLISHED_RATES
        slower = SystemSettings.model_validate(
            {**real.model_dump(), "rate_limit": {"requests": 100, "seconds": 10}}
        )
        assert registry.hubspot_pacer(slower).limits == {
            "general": Limit(100, 10),
            "search": registry.PUBLISHED_RATES["search"],
        }


def test_the_pacing_is_counted_per_day_and_shown_by_status(paced: World) -> None:
    paced.hubspot.gate.search_rate_limit = SEARCH
    paced.hubspot.seed_contacts(500)
    paced.cycle()
    counts = paced_counts(paced.engine.marketing)
    assert counts["waits"] > 0 and counts["wait_ms"] > 0 and counts["http_429"] == 0
    budgets = Budgets.for_config(paced.store, paced.config)
    now = datetime.now(UTC)
    budgets.add("hubspot", 10, now, counts)
    budgets.add("hubspot", 5, now, {"waits": 1, "wait_ms": 0, "http_429": 2})
    today = budgets.today("hubspot", now)
    assert today == {
        "calls": 15,
        "waits": counts["waits"] + 1,
        "wait_ms": counts["wait_ms"],
        "http_429": 2,
    }
    answer = CliRunner().invoke(app, ["status", "--config", str(paced.config.path), "--json"])
    assert answer.exit_code == 0, answer.output
    assert '"http_429": 2' in answer.stdout
    text = CliRunner().invoke(app, ["status", "--config", str(paced.config.path)])
    assert f"{counts['waits'] + 1} waited for the pacing" in text.stdout
    assert "2 answered 429" in text.stdout


def test_metrics_show_the_pacing(paced: World) -> None:
    paced.hubspot.gate.search_rate_limit = SEARCH
    paced.hubspot.seed_contacts(500)
    paced.cycle()
    metrics = Metrics()
    marketing = paced.engine.marketing
    metrics.watch_pacing(lambda: {"hubspot": marketing.pacer})  # type: ignore[attr-defined]
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    waits = marketing.pacer.stats.by_limit["search"]  # type: ignore[attr-defined]
    assert f'syncd_api_pacing_waits_total{{limit="search",system="hubspot"}} {waits}.0' in text
    assert 'syncd_api_rate_limited_total{system="hubspot"} 0.0' in text
    assert 'syncd_api_window_calls{limit="search",of="2/1s",system="hubspot"}' in text
