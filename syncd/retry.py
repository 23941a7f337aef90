"""The retry policy: what is transient is retried with backoff and jitter.

``RateLimitedError.retry_after`` (from Retry-After or the rate-limit window) is
honoured as the minimum wait; everything else waits exponentially with jitter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from syncd.errors import RateLimitedError, TransientError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts in all, first and longest backoff, in seconds."""

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 30.0
    sleep: Callable[[float], None] | None = None
    """Injected sleep (tests); None uses time.sleep."""


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(multiplier=policy.initial, max=policy.maximum)

    def wait(state: RetryCallState) -> float:
        delay = backoff(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return float(min(delay, max(policy.maximum, 0.0)))

    return wait


def call_with_retry(policy: RetryPolicy, fn: Callable[[], T]) -> T:
    """Call ``fn``, retrying ``TransientError`` per ``policy``; re-raise the last error."""
    retrying = Retrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        reraise=True,
        sleep=policy.sleep or time.sleep,
    )
    return retrying(fn)
