"""The emulators' published limits, met through the official clients over real HTTP:
HubSpot's general, search and daily limits (429 bodies and headers), Salesforce's daily
allocation and its cap on requests in flight, and how syncd's Salesforce connector
translates each refusal."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest
from hubspot.crm.contacts.exceptions import ApiException
from urllib3.util.retry import Retry

from connectors.hubspot.emulator import server as hubspot_emulator
from connectors.hubspot.emulator.gate import parse_rate
from connectors.hubspot.emulator.server import HubSpotEmulator
from connectors.hubspot.testing import running_emulator as running_hubspot
from connectors.salesforce.emulator.server import CONCURRENT_REFUSAL, SalesforceEmulator
from connectors.salesforce.testing import connector_for, sample_lead
from connectors.salesforce.testing import running_emulator as running_salesforce
from syncd import registry
from syncd.errors import LimitExceededError, RateLimitedError
from syncd.model import Cursor
from syncd.retry import RetryPolicy


def contacts_api(emulator: HubSpotEmulator) -> Any:
    return HubSpot(access_token=emulator.token, host=emulator.url, retry=Retry(0)).crm.contacts


def refusal(call: Callable[[], Any]) -> tuple[int, dict[str, Any], Any]:
    """(status, JSON body, headers) of the ApiException the official client raises."""
    with pytest.raises(ApiException) as raised:
        call()
    return raised.value.status, json.loads(raised.value.body), raised.value.headers


def test_published_limits_are_one_switch_and_explicit_limits_override_them() -> None:
    enterprise = HubSpotEmulator(limits="published").gate
    assert (enterprise.rate_limit, enterprise.search_rate_limit) == ((190, 10_000), (5, 1_000))
    assert enterprise.daily_limit == 1_000_000
    professional = HubSpotEmulator(limits="published", tier="professional").gate
    assert professional.daily_limit == 650_000
    mine = HubSpotEmulator(limits="published", search_rate_limit=(1, 500)).gate
    assert (mine.rate_limit, mine.search_rate_limit) == ((190, 10_000), (1, 500))
    assert HubSpotEmulator().gate.rate_limit is None  # off unless asked for
    with pytest.raises(ValueError, match="tier"):
        HubSpotEmulator(limits="published", tier="starter")
    assert parse_rate("5/1000", 10_000) == (5, 1_000) and parse_rate("190", 10_000) == (190, 10_000)
    with pytest.raises(ValueError, match="MAX/INTERVAL_MS"):
        parse_rate("five", 1_000)
    with pytest.raises(SystemExit):  # the CLI says so and stops
        hubspot_emulator.main(["--search-rate-limit", "5/0"])


def test_hubspot_general_limit_answers_429_ten_secondly_with_headers() -> None:
    with running_hubspot(limits="published", rate_limit=(2, 60_000)) as emulator:
        api = contacts_api(emulator)
        for _ in range(2):
            api.basic_api.get_page(limit=1)
        status, body, headers = refusal(lambda: api.basic_api.get_page(limit=1))
        assert status == 429
        assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
        assert body["status"] == "error" and "ten_secondly_rolling" in body["message"]
        assert headers["X-HubSpot-RateLimit-Max"] == "2"
        assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
        assert headers["X-HubSpot-RateLimit-Daily"] == "1000000"
        assert 50 <= int(headers["Retry-After"]) <= 60  # until the window lets one in
        # search has its own limit: the general one being used up does not refuse it
        api.search_api.do_search(PublicObjectSearchRequest(limit=1))
        assert emulator.statuses() == {200: 3, 429: 1}


def test_hubspot_search_limit_answers_429_secondly_without_headers() -> None:
    with running_hubspot(limits="published", search_rate_limit=(1, 60_000)) as emulator:
        api = contacts_api(emulator)
        api.search_api.do_search(PublicObjectSearchRequest(limit=1))
        status, body, headers = refusal(
            lambda: api.search_api.do_search(PublicObjectSearchRequest(limit=1))
        )
        assert (status, body["policyName"], body["errorType"]) == (429, "SECONDLY", "RATE_LIMIT")
        assert not [h for h in headers if h.lower().startswith("x-hubspot-ratelimit")]
        api.basic_api.get_page(limit=1)  # the general limit is untouched
        assert emulator.statuses()[429] == 1


def test_hubspot_searches_count_toward_the_daily_limit() -> None:
    with running_hubspot(limits="published", daily_limit=2) as emulator:
        api = contacts_api(emulator)
        api.search_api.do_search(PublicObjectSearchRequest(limit=1))
        api.basic_api.get_page(limit=1)
        status, body, headers = refusal(lambda: api.basic_api.get_page(limit=1))
        assert (status, body["policyName"]) == (429, "DAILY")
        assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
        assert int(headers["Retry-After"]) >= 1


def test_salesforce_daily_allocation_is_a_limit_error() -> None:
    with running_salesforce() as emulator:
        connector = connector_for(emulator, retry=RetryPolicy(attempts=3, sleep=lambda _: None))
        connector.check()
        emulator.set_daily_limit(emulator.api_usage()[0])
        with pytest.raises(LimitExceededError, match="TotalRequests Limit exceeded"):
            list(connector.changes("Lead", Cursor()))
        assert emulator.limit_refusals() == {"daily": 1, "concurrent": 0}  # not retried
        assert emulator.statuses()[403] == 1
        connector.close()


def _scan_at_once(emulator: SalesforceEmulator, threads: int, policy: RetryPolicy) -> list[Any]:
    """``threads`` connectors, logged in first, each scanning leads at the same instant:
    what each scan returned or raised."""
    connectors = [connector_for(emulator, retry=policy) for _ in range(threads)]
    for connector in connectors:
        connector.check()
    start, outcomes = threading.Barrier(threads), [None] * threads

    def scan(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = [
                r for p in connectors[index].changes("Lead", Cursor()) for r in p.records
            ]
        except Exception as exc:  # kept for the test to look at
            outcomes[index] = exc

    workers = [threading.Thread(target=scan, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for connector in connectors:
        connector.close()
    return outcomes


def test_salesforce_requests_past_the_concurrent_cap_are_refused_as_rate_limited() -> None:
    with running_salesforce(concurrent_limit=1, latency_ms=400) as emulator:
        emulator.add("Lead", sample_lead(1))
        once = RetryPolicy(attempts=1)
        outcomes = _scan_at_once(emulator, 3, once)
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert refused and all(isinstance(o, RateLimitedError) for o in refused)
    assert all(o.status == 403 and CONCURRENT_REFUSAL in str(o) for o in refused)  # type: ignore[attr-defined]
    assert any(isinstance(o, list) and len(o) == 1 for o in outcomes)  # one got through
    assert not isinstance(refused[0], LimitExceededError)


def test_salesforce_concurrent_refusals_are_retried_with_backoff_until_they_pass() -> None:
    waits: list[float] = []
    with running_salesforce(concurrent_limit=2, latency_ms=300) as emulator:
        emulator.add("Lead", sample_lead(1))
        policy = RetryPolicy(attempts=12, initial=0.05, maximum=0.3, sleep=_sleeper(waits))
        outcomes = _scan_at_once(emulator, 4, policy)
        refusals = emulator.limit_refusals()
    assert all(isinstance(o, list) and len(o) == 1 for o in outcomes), outcomes
    assert refusals["concurrent"] >= 1 and refusals["daily"] == 0
    assert len(waits) == refusals["concurrent"]  # each refusal waited, then tried again


def _sleeper(waits: list[float]) -> Callable[[float], None]:
    import time

    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            waits.append(seconds)
        time.sleep(seconds)

    return sleep


def test_the_benchmark_emulators_enforce_the_published_limits_unless_unthrottled() -> None:
    throttled = registry.emulator_commands(10, throttled=True)
    assert throttled["hubspot"][-4:] == ["--limits", "published", "--tier", "enterprise"]
    assert throttled["salesforce"][-2:] == ["--concurrent-limit", "25"]
    plain = registry.emulator_commands(10)
    assert "--limits" not in plain["hubspot"] and "--concurrent-limit" not in plain["salesforce"]
    limits = registry.emulator_limits(True)
    assert limits["hubspot"] == {
        "rate": (190, 10_000),
        "search_rate": (5, 1_000),
        "daily": 1_000_000,
    }
    assert registry.emulator_limits(False)["hubspot"]["rate"] is None


def test_the_bound_is_the_slower_hubspot_limit_and_a_day_per_allocation_used_up() -> None:
    from syncd.harness.bench import _bound

    limits = registry.emulator_limits(True)
    # 600 searches at 5 in any second: the 600th waits 119 s; 2,000 other
    # calls at 190 per 10 s: the 2,000th waits 100 s. The searches bound.
    bound = _bound({"hubspot": 2_600, "salesforce": 16_000}, 600, limits)
    assert bound["hubspot"] == 119.0
    assert bound["salesforce"] == 86_400.0  # past the 15,000 allocation: a day more
    assert bound["max"] == 86_400.0
    assert _bound({"hubspot": 5, "salesforce": 1}, 5, limits)["max"] == 0.0  # one burst
    assert _bound({"hubspot": 2_600, "salesforce": 1}, 600, registry.emulator_limits(False)) == {
        "hubspot": 0.0,
        "salesforce": 0.0,
        "max": 0.0,
    }
