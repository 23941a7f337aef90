"""Translation of hubspot-api-client and urllib3 failures into ``syncd.errors``.

429 TEN_SECONDLY_ROLLING / SECONDLY  -> RateLimitedError (Retry-After, else the window)
429 DAILY                            -> LimitExceededError
5xx, connection errors, timeouts     -> TransientError
401, 403                             -> AuthError
other 4xx                            -> HubSpotRequestError (a ConnectorError carrying
                                        HubSpot's category and message)

A connection that fails and a 5xx answer say what happened in words, the setting of
syncd.yaml to check (``host``, ``timeout``), and the library's or the server's own words,
trimmed (an HTML error page of a proxy to its title): ``syncd.errors.ConnectorError``.
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
    connection_trouble,
    not_reached,
    trim,
)

SYSTEM = "hubspot"
SECTION = f"systems.{SYSTEM}"
"""Where its settings are in syncd.yaml, for the words of an error."""
UNDERLYING = "the error"
"""Who said a connection's own words: the library, not the system."""
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

    def __init__(
        self,
        detail: str,
        *,
        status: int | None,
        category: str | None,
        check: str | None = None,
        said: str | None = None,
    ) -> None:
        super().__init__(
            SYSTEM,
            f"{detail} (HTTP {status}, {category or 'no category'})",
            status=status,
            check=check,
            said=said,
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
        return {"message": trim(str(body), 500)}  # a proxy's HTML page: its title
    return parsed if isinstance(parsed, dict) else {}


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None and hasattr(headers, "items"):
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return str(value) if value is not None else None


def unreachable(error: urllib3.exceptions.HTTPError) -> ConnectorError:
    """A connection that failed, in words, with the settings to check: a certificate not
    trusted (not retried: waiting does not fix a CA), else a transient failure."""
    kind, said = connection_trouble(error)
    if isinstance(error, urllib3.exceptions.SSLError):
        kind = "tls"
    pool = getattr(error, "pool", None)
    host = getattr(pool, "host", None) or "HubSpot"
    port = getattr(pool, "port", None)
    if port:
        host = f"{host}:{port}"
    if kind == "tls":
        return ConnectorError(
            SYSTEM,
            f"the TLS certificate of {host} is not trusted, so syncd did not talk to it",
            check=f"check host ({SECTION}.host in syncd.yaml): HubSpot's certificates are"
            " signed by public CAs; a TLS-inspecting proxy's CA must be trusted by this"
            " machine",
            said=said,
            said_by=UNDERLYING,
        )
    where = (
        f"check host ({SECTION}.host in syncd.yaml; default https://api.hubapi.com):"
        " reachable from this machine (DNS, firewall, proxy)"
    )
    return not_reached(SYSTEM, kind, host, check=where, said=said, error=error)


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
        return unreachable(error)
    status = getattr(error, "status", None)
    fields = error_fields(getattr(error, "body", None))
    message = str(fields.get("message") or getattr(error, "reason", None) or error)
    category = fields.get("category")
    if not status:  # the client's own failures: unreadable answers
        return ConnectorError(SYSTEM, "the request failed in the HubSpot client", said=message)
    if status == 429:
        if fields.get("policyName") == "DAILY":
            return LimitExceededError(SYSTEM, message, status=429)
        return RateLimitedError(SYSTEM, message, retry_after=retry_after(error.headers))  # type: ignore[attr-defined]
    if status >= 500:
        return TransientError(
            SYSTEM,
            f"the request failed: HTTP {status} from HubSpot or a proxy before it",
            status=status,
            check="it is retried with backoff; if it lasts, check status.hubspot.com and any"
            f" proxy between syncd and {SECTION}.host",
            said=message,
        )
    if status == 401:
        return AuthError(
            SYSTEM, "HubSpot refused the access token (HTTP 401)", status=status, said=message
        )
    if status == 403:
        return AuthError(
            SYSTEM,
            "HubSpot refused the request: the token lacks a permission (HTTP 403)",
            status=status,
            check="check the scopes of the service key or app (README: Pointing syncd at real"
            " accounts)",
            said=message,
        )
    return HubSpotRequestError(message, status=status, category=category)
