"""Translation of hubspot-api-client and urllib3 failures into ``syncd.errors``.

429 TEN_SECONDLY_ROLLING / SECONDLY  -> RateLimitedError (Retry-After, else the window)
429 DAILY                            -> LimitExceededError
5xx, connection errors, timeouts     -> TransientError
401, 403                             -> AuthError
other 4xx                            -> HubSpotRequestError (a ConnectorError carrying
                                        HubSpot's category and message)
"""

from __future__ import annotations

import json
from typing import Any

import urllib3
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.companies.exceptions import ApiException as CompaniesApiException
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.deals.exceptions import ApiException as DealsApiException
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from syncd.errors import (
    AuthError,
    ConnectorError,
    LimitExceededError,
    RateLimitedError,
    TransientError,
)

SYSTEM = "hubspot"
VENDOR_ERRORS: tuple[type[Exception], ...] = (
    ContactsApiException,
    CompaniesApiException,
    DealsApiException,
    AssociationsApiException,
    PipelinesApiException,
    PropertiesApiException,
    urllib3.exceptions.HTTPError,
)
"""What ``translate`` understands (each sub-package of the client raises its own
``ApiException``); every call of the client is wrapped to catch these."""


class HubSpotRequestError(ConnectorError):
    """HubSpot refused a request as a whole; ``category`` and ``detail`` are its own words."""

    def __init__(self, detail: str, *, status: int | None, category: str | None) -> None:
        super().__init__(
            SYSTEM, f"{detail} (HTTP {status}, {category or 'no category'})", status=status
        )
        self.detail = detail
        self.category = category


def error_fields(body: Any) -> dict[str, Any]:
    """HubSpot's JSON error body as a dict (empty when it is not JSON)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {"message": str(body)[:500]}
    return parsed if isinstance(parsed, dict) else {}


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None and hasattr(headers, "items"):
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return str(value) if value is not None else None


def retry_after(headers: Any) -> float | None:
    """Seconds to wait: Retry-After, else the rate-limit interval when nothing remains."""
    raw = _header(headers, "Retry-After")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    interval = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
    if interval is not None and interval.isdigit():
        return int(interval) / 1000
    return None


def translate(error: Exception) -> ConnectorError:
    """The syncd error for a failure of the HubSpot client (see the module docstring)."""
    if isinstance(error, urllib3.exceptions.HTTPError):
        return TransientError(SYSTEM, f"connection failed: {error.__class__.__name__}: {error}")
    status = getattr(error, "status", None)
    fields = error_fields(getattr(error, "body", None))
    message = str(fields.get("message") or getattr(error, "reason", None) or error)
    category = fields.get("category")
    if not status:  # the client's own failures: TLS, unreadable answers
        return ConnectorError(SYSTEM, f"request failed: {message}")
    if status == 429:
        if fields.get("policyName") == "DAILY":
            return LimitExceededError(SYSTEM, message, status=429)
        return RateLimitedError(SYSTEM, message, retry_after=retry_after(error.headers))  # type: ignore[attr-defined]
    if status >= 500:
        return TransientError(SYSTEM, f"{message} (HTTP {status})", status=status)
    if status in (401, 403):
        return AuthError(SYSTEM, f"{message} (HTTP {status})", status=status)
    return HubSpotRequestError(message, status=status, category=category)
