"""Salesforce failures as syncd errors: simple-salesforce and requests exceptions in,
``syncd.errors`` out, with Salesforce's own error codes and messages kept.

    401 INVALID_SESSION_ID          AuthError (the connector logs in again once first)
    400 invalid_client(_id), invalid_grant (token endpoint)   AuthError
    403 REQUEST_LIMIT_EXCEEDED      LimitExceededError (the daily API limit, "TotalRequests")
    403 REQUEST_LIMIT_EXCEEDED "ConcurrentRequests ..." RateLimitedError (too many requests in
                                    flight: transient, retried with backoff)
    429                             RateLimitedError
    5xx, connection reset, timeout  TransientError
    TLS verification failure        SalesforceRequestError (retrying cannot fix a CA)
    other 4xx                       SalesforceRequestError (``code``: Salesforce's errorCode)

A connection that fails, a certificate not trusted and a 5xx answer say what happened in
words, which setting of syncd.yaml to check (``login_url``, ``connect_to``, ``ca_bundle``,
``timeout``), and the library's or the server's own words, trimmed (an HTML error page of
a proxy to its title): ``syncd.errors.ConnectorError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from simple_salesforce.exceptions import SalesforceError

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

SYSTEM = "salesforce"
SECTION = f"systems.{SYSTEM}"
"""Where its settings are in syncd.yaml, for the words of an error."""
UNDERLYING = "the error"
"""Who said a connection's own words: the library, not the system."""


class SalesforceRequestError(ConnectorError):
    """Salesforce refused a request; ``code`` is its errorCode (``MALFORMED_QUERY``, ...)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        status: int | None,
        check: str | None = None,
        said: str | None = None,
        said_by: str | None = None,
    ) -> None:
        super().__init__(SYSTEM, message, status=status, check=check, said=said, said_by=said_by)
        self.code = code


def error_details(content: Any) -> tuple[str | None, str]:
    """(first errorCode, all messages) of an error body: ``[{message, errorCode}, ...]``."""
    if isinstance(content, bytes | str):
        try:
            content = json.loads(content)
        except ValueError:
            text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
            return None, trim(text, 500)  # a proxy's HTML page: its title
    if isinstance(content, Mapping):
        content = [content]
    if isinstance(content, Sequence) and content and isinstance(content[0], Mapping):
        code = content[0].get("errorCode") or content[0].get("error")
        messages = [
            str(e.get("message") or e.get("error_description") or "")
            for e in content
            if isinstance(e, Mapping)
        ]
        return (str(code) if code else None), "; ".join(m for m in messages if m)
    return None, str(content)[:500]


def translate(exc: Exception) -> ConnectorError:
    """The syncd error for a simple-salesforce or requests exception."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, SalesforceError):
        return _from_status(exc.status, exc.content, exc.resource_name)
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return unreachable(exc)
    if isinstance(exc, requests.RequestException):  # incl. a 2xx answer that is not JSON
        return TransientError(SYSTEM, f"{type(exc).__name__}: {exc}")
    return ConnectorError(SYSTEM, f"{type(exc).__name__}: {exc}")


def unreachable(exc: requests.RequestException) -> ConnectorError:
    """A connection that failed, in words, with the settings to check: a certificate not
    trusted (not retried: waiting does not fix a CA), else a transient failure."""
    kind, said = connection_trouble(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        kind = "tls"
    request = getattr(exc, "request", None)
    url = urlsplit(getattr(request, "url", None) or "")
    host, name = url.netloc or "Salesforce", url.hostname or "Salesforce"
    if kind == "tls":
        return SalesforceRequestError(
            f"the TLS certificate of {name} is not trusted, so syncd did not talk to it",
            code=None,
            status=None,
            check=f"check ca_bundle ({SECTION}.ca_bundle in syncd.yaml): it must name the"
            f" CA file that signed {name}'s certificate (a private CA, a TLS-inspecting"
            " proxy's); unset, the CAs of certifi are trusted",
            said=said,
            said_by=UNDERLYING,
        )
    where = (
        f"check login_url ({SECTION}.login_url in syncd.yaml; and connect_to, if set): your"
        " org's My Domain, reachable from this machine (DNS, firewall, proxy)"
    )
    return not_reached(SYSTEM, kind, host, check=where, said=said, error=exc)


def from_response(response: requests.Response, what: str) -> ConnectorError:
    """The syncd error for an error answer read with requests directly (the token call)."""
    return _from_status(response.status_code, response.content, what)


_REFUSED_GRANT = ("invalid_client", "invalid_client_id", "invalid_grant")


def _from_status(status: int, content: Any, what: str) -> ConnectorError:
    code, message = error_details(content)
    text = f"{what}: {code + ': ' if code else ''}{message}" if what else message
    if status == 401 or (status == 400 and code in _REFUSED_GRANT):
        return AuthError(SYSTEM, text, status=status)
    if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        if "concurrent" in message.lower():  # ConcurrentRequests: ends as requests finish
            return RateLimitedError(SYSTEM, text, retry_after=None, status=status)
        return LimitExceededError(SYSTEM, text, status=status)
    if status == 429:
        return RateLimitedError(SYSTEM, text, retry_after=None, status=status)
    if status >= 500:
        return TransientError(
            SYSTEM,
            f"{what or 'a request'} failed: HTTP {status} from Salesforce or a proxy before it",
            status=status,
            check="it is retried with backoff; if it lasts, check trust.salesforce.com and any"
            f" proxy between syncd and {SECTION}.login_url",
            said=f"{code}: {message}" if code else message,
        )
    return SalesforceRequestError(text, code=code, status=status)


_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)'")


def worth_splitting(error: Exception, records: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a collection refused as a whole may be refused for some of its records:
    a 400, unless it names a field every record carries (a field the integration user
    cannot see: no half would fare better)."""
    if getattr(error, "status", None) != 400:
        return False
    column = _NO_SUCH_COLUMN.search(str(error))
    if column is None:
        return True
    name = column.group(1).lower()
    return not all(any(k.lower() == name for k in record) for record in records)


def is_expired_session(exc: Exception) -> bool:
    """A 401 (INVALID_SESSION_ID): a fresh token may cure it."""
    return isinstance(exc, SalesforceError) and exc.status == 401
