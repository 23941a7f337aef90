"""What stands before the emulator's API: call counts, injected failures, rate limits.

The caller holds the emulator's lock around every method.

HubSpot's published limits (``published_limits``; sources, and what is not confirmed):

- General ("burst") limit of a private app on Professional or Enterprise: 190 requests per
  10 s; daily limit 650,000 (Professional) or 1,000,000 (Enterprise). Changelog, "Increasing
  our API limits": https://developers.hubspot.com/changelog/increasing-our-api-limits ;
  API usage guidelines and limits:
  https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
- CRM search: 5 requests per second per account, and search answers carry no rate-limit
  headers (search guide, "Limitations":
  https://developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm ; the limit
  was 4/s before, https://developers.hubspot.com/changelog/crm-search-api-rate-limit-increase).
  Whether a search also counts toward the 10-second limit is not documented (unconfirmed):
  here it does not, as the separate policy suggests. Whether it counts toward the daily limit
  is not documented either (unconfirmed): here it does, as every other API request does.
- A 429 body: ``{"status": "error", "message": "You have reached your ten_secondly_rolling
  limit.", "errorType": "RATE_LIMIT", "correlationId", "policyName": "TEN_SECONDLY_ROLLING",
  "groupName"}``, as seen by users of the official client
  (https://github.com/HubSpot/hubspot-api-python/issues/117); "DAILY" with "You have reached
  your daily limit." as quoted from the usage guidelines
  (https://community.hubspot.com/t5/APIs-Integrations/Hubspot-User-experience/m-p/511719);
  "SECONDLY" with "You have reached your secondly limit."
  (https://github.com/HGData/mk-node-hubspot/issues/89). That a search over its limit
  answers policy "SECONDLY" is unconfirmed.
- Headers: ``X-HubSpot-RateLimit-Max``, ``-Remaining``, ``-Interval-Milliseconds``,
  ``-Daily``, ``-Daily-Remaining`` on every non-search answer (usage guidelines; changelog
  https://developers.hubspot.com/changelog/2018-11-06-rate-limit-information-headers-will-be-included-in-http-responses).
  ``Retry-After`` on a 429 is reported by users (https://github.com/PostHog/posthog/pull/64726)
  but its value is unconfirmed: here the seconds until the window lets a request in (at least
  1), and until midnight UTC for the daily limit (HubSpot resets at midnight in the account's
  time zone). A search over its own limit gets no headers at all, Retry-After included
  (unconfirmed either way; a client then backs off on its own).
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from connectors.hubspot.emulator.schema import error_body

Reply = tuple[int, dict[str, Any] | None, dict[str, str]]
"""An HTTP status, its JSON body (None: no content) and extra headers."""
NOMINAL_RATE = (190, 10_000)
"""Reported in the rate-limit headers when no limit is enforced."""
NOMINAL_DAILY = 1_000_000
PUBLISHED_RATE = (190, 10_000)
"""Private app, Professional or Enterprise: 190 requests per rolling 10 s."""
PUBLISHED_SEARCH_RATE = (5, 1_000)
"""CRM search: 5 requests per second per account."""
PUBLISHED_DAILY = {"professional": 650_000, "enterprise": 1_000_000}
"""Daily limit of a private app by subscription tier."""
FAILURE_MESSAGES = {
    500: "internal error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
FAILURE_CATEGORIES = {401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES", 404: "OBJECT_NOT_FOUND"}


@dataclass(frozen=True, slots=True)
class Limits:
    """Rate limits to enforce: (max calls, interval ms) for non-search calls and for search,
    and a daily cap; None: not enforced."""

    rate: tuple[int, int] | None = None
    search_rate: tuple[int, int] | None = None
    daily: int | None = None


def published_limits(tier: str = "enterprise") -> Limits:
    """HubSpot's published limits for a private app on ``tier`` (professional, enterprise)."""
    if tier not in PUBLISHED_DAILY:
        raise ValueError(f"no HubSpot tier {tier!r}: one of {sorted(PUBLISHED_DAILY)}")
    return Limits(PUBLISHED_RATE, PUBLISHED_SEARCH_RATE, PUBLISHED_DAILY[tier])


def parse_rate(text: str, default_interval: int) -> tuple[int, int]:
    """``MAX/INTERVAL_MS`` (``190/10000``; ``190`` alone takes ``default_interval``)."""
    most, _, interval = text.partition("/")
    try:
        rate = (int(most), int(interval or default_interval))
    except ValueError:
        raise ValueError(f"rate limit {text!r}: expected MAX/INTERVAL_MS, e.g. 190/10000") from None
    if rate[0] < 1 or rate[1] < 1:
        raise ValueError(f"rate limit {text!r}: both numbers must be positive")
    return rate


@dataclass(slots=True)
class _Failure:
    status: int
    count: int
    path_contains: str | None
    retry_after: float


class Gate:
    """Counts API calls, answers injected failures and enforces the rate limits."""

    def __init__(
        self,
        rate_limit: tuple[int, int] | None,
        daily_limit: int | None,
        search_rate_limit: tuple[int, int] | None,
    ) -> None:
        self.rate_limit, self.daily_limit = rate_limit, daily_limit
        self.search_rate_limit = search_rate_limit
        self.calls: Counter[str] = Counter()
        self.ordinal = 0
        self.failures: list[_Failure] = []
        self.fail_at: dict[int, int] = {}
        self._hits: deque[float] = deque()
        self._search_hits: deque[float] = deque()
        self._daily = 0
        self.statuses: Counter[int] = Counter()
        """API answers by HTTP status since the start (control calls are not counted)."""

    def count(self, label: str) -> int:
        """Count one call; its ordinal since the start or the last reset."""
        self.calls[label] += 1
        self.ordinal += 1
        return self.ordinal

    def reset(self) -> None:
        self.calls.clear()
        self.ordinal = 0

    def fail_next(
        self, status: int, count: int, path_contains: str | None, retry_after: float
    ) -> None:
        self.failures.append(_Failure(status, count, path_contains, retry_after))

    def injected(self, label: str, ordinal: int) -> Reply | None:
        """The injected failure this call gets, if any."""
        status, retry_after = self.fail_at.pop(ordinal, None), 1.0
        if status is None:
            for failure in self.failures:
                if failure.path_contains is None or failure.path_contains in label:
                    status, retry_after = failure.status, failure.retry_after
                    failure.count -= 1
                    if failure.count <= 0:
                        self.failures.remove(failure)
                    break
        if status is None:
            return None
        if status == 429:
            max_, interval = self.rate_limit or NOMINAL_RATE
            headers = _rate_headers(max_, 0, interval, NOMINAL_DAILY, NOMINAL_DAILY)
            headers["Retry-After"] = str(math.ceil(retry_after))
            return 429, rate_limited("TEN_SECONDLY_ROLLING"), headers
        default = "VALIDATION_ERROR" if status < 500 else "INTERNAL_ERROR"
        category = FAILURE_CATEGORIES.get(status, default)
        message = FAILURE_MESSAGES.get(status, f"Injected failure {status}")
        return status, error_body(category, message), {}

    def admit(self, is_search: bool) -> tuple[Reply | None, dict[str, str]]:
        """Count a call against the limits: (a 429 reply or None, headers to send)."""
        now = time.monotonic()
        max_, interval = self.rate_limit or NOMINAL_RATE
        daily_max = self.daily_limit if self.daily_limit is not None else NOMINAL_DAILY
        _expire(self._hits, now - interval / 1000)
        refusal: tuple[str, float] | None = None
        if self.daily_limit is not None and self._daily >= self.daily_limit:
            refusal = ("DAILY", 86_400 - time.time() % 86_400)  # until midnight UTC
        elif is_search:
            if self.search_rate_limit is not None:
                most, window = self.search_rate_limit
                _expire(self._search_hits, now - window / 1000)
                if len(self._search_hits) >= most:
                    refusal = ("SECONDLY", 0.0)
                else:
                    self._search_hits.append(now)
        elif self.rate_limit is not None and len(self._hits) >= max_:
            refusal = ("TEN_SECONDLY_ROLLING", self._hits[0] + interval / 1000 - now)
        else:
            self._hits.append(now)
        if refusal is None:
            self._daily += 1
        left = max(0, max_ - len(self._hits))
        headers = _rate_headers(max_, left, interval, daily_max, max(0, daily_max - self._daily))
        if is_search and (refusal is None or refusal[0] == "SECONDLY"):
            headers = {}  # search answers carry no rate-limit headers (nor Retry-After)
        elif refusal is not None:
            headers["Retry-After"] = str(max(1, math.ceil(refusal[1])))
        if refusal is None:
            return None, headers
        return (429, rate_limited(refusal[0]), headers), headers


def _expire(hits: deque[float], cutoff: float) -> None:
    while hits and hits[0] <= cutoff:
        hits.popleft()


def _rate_headers(
    max_: int, left: int, interval: int, daily: int, daily_left: int
) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": str(max_),
        "X-HubSpot-RateLimit-Remaining": str(left),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(interval),
        "X-HubSpot-RateLimit-Daily": str(daily),
        "X-HubSpot-RateLimit-Daily-Remaining": str(daily_left),
    }


def rate_limited(policy: str) -> dict[str, Any]:
    """HubSpot's 429 body for a policy (TEN_SECONDLY_ROLLING, SECONDLY, DAILY)."""
    name = "daily" if policy == "DAILY" else policy.lower()
    body = error_body("RATE_LIMITS", f"You have reached your {name} limit.")
    body.update(errorType="RATE_LIMIT", policyName=policy)
    return body
