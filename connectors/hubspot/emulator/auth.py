"""The emulator's authentication: static tokens, an OAuth app's token endpoint, and access
tokens that expire on a clock.

- Static tokens (a service key, a private app access token) are accepted until they are
  expired on purpose (``expire_static``: a rotated or revoked token).
- ``POST /oauth/v1/token`` and ``POST /oauth/2026-03/token`` (form-encoded,
  ``grant_type=refresh_token``, ``client_id``, ``client_secret``, ``refresh_token``) answer
  ``{"token_type": "bearer", "refresh_token", "access_token", "expires_in"}``; the issued
  access token expires after ``ttl`` seconds (HubSpot: 1800) on the emulator's clock.
- A wrong refresh token: 400 ``{"status": "BAD_REFRESH_TOKEN", "message": "missing or
  invalid refresh token", "error": "invalid_grant", "error_description": ...}``; a wrong
  client id or secret: 400 ``BAD_CLIENT_ID`` / ``BAD_CLIENT_SECRET`` with ``invalid_client``.
- An expired token: 401 ``{"status": "error", "message": "The OAuth token used to make this
  call expired N second(s) ago.", "correlationId", "category": "EXPIRED_AUTHENTICATION",
  "context": {"expire time": [ISO instant]}}``; an unknown token: 401
  ``INVALID_AUTHENTICATION`` "Authentication credentials not found. ...".

Sources (checked 2026-12-04):
- token endpoint, form fields and answer fields:
  https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/migration-guide
  and https://developers.hubspot.com/docs/methods/oauth2/refresh-access-token;
  ``expires_in`` 1800 and ``token_type`` bearer:
  https://useparagon.com/integration-error-solutions/hubspot-the-oauth-token-used-to-make-this-call-expired,
  https://github.com/HubSpot/hubspot-api-ruby/issues/426.
- the expired-token body (with ``context["expire time"]``):
  https://github.com/airbytehq/airbyte/issues/74726,
  https://github.com/ToolJet/ToolJet/issues/17192.
- BAD_REFRESH_TOKEN: https://www.nango.dev/blog/hubspot-oauth-bad-refresh-token; the added
  RFC 6749 fields: https://developers.hubspot.com/changelog/new-oauth-v3-api-endpoints-and-standardized-error-responses.

Not confirmed: the exact ``status`` words for a wrong client id or secret (BAD_CLIENT_ID and
BAD_CLIENT_SECRET are HubSpot's older names, seen in community posts only), which
``error`` code HubSpot sends for each case, whether a refresh hands out a new refresh
token (the emulator returns the same one, as v1 did), and what an expired *service key*
answers (the emulator answers as for an expired OAuth token).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from connectors.hubspot.emulator.schema import error_body

TOKEN_PATHS = ("/oauth/v1/token", "/oauth/2026-03/token")
DEFAULT_TTL = 1800.0
NOT_FOUND = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication "
    "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
Refusal = tuple[int, dict[str, Any]]


class Tokens:
    """Which bearer tokens the emulated portal accepts, and until when (emulator's clock).

    The caller holds the emulator's lock around every method.
    """

    def __init__(
        self,
        static_token: str,
        *,
        client_id: str = "emulator-client-id",
        client_secret: str = "emulator-client-secret",
        refresh_token: str = "emulator-refresh-token",
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token, self.ttl, self.clock = refresh_token, ttl, clock
        self.expiry: dict[str, float | None] = {static_token: None}
        """Every token ever accepted: when it expires (None: never)."""
        self.issued = 0
        self.expire_at_calls: set[int] = set()
        """API call ordinals (as the gate counts them) before which issued tokens expire."""

    def refuse(self, authorization: str | None, ordinal: int = 0) -> Refusal | None:
        """None when ``authorization`` carries a live token, else HubSpot's 401 (call
        ``ordinal`` may be one before which the issued tokens expire)."""
        if ordinal in self.expire_at_calls:
            self.expire_at_calls.discard(ordinal)
            self.expire_issued()
        token = (authorization or "").removeprefix("Bearer ")
        if not authorization or token not in self.expiry:
            return 401, error_body("INVALID_AUTHENTICATION", NOT_FOUND)
        expires = self.expiry[token]
        now = self.clock()
        if expires is None or now < expires:
            return None
        late, unit = _ago(now - expires)
        instant = datetime.fromtimestamp(expires, UTC).isoformat(timespec="milliseconds")
        message = f"The OAuth token used to make this call expired {late} {unit}(s) ago."
        body = error_body(
            "EXPIRED_AUTHENTICATION",
            message,
            context={"expire time": [instant.replace("+00:00", "Z")]},
        )
        return 401, body

    def grant(self, raw: bytes) -> Refusal:
        """Answer the token endpoint (form-encoded body)."""
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return _oauth_error("BAD_GRANT_TYPE", "unsupported_grant_type", "grant_type invalid")
        if form.get("client_id") != self.client_id:
            return _oauth_error("BAD_CLIENT_ID", "invalid_client", "missing or invalid client_id")
        if form.get("client_secret") != self.client_secret:
            return _oauth_error(
                "BAD_CLIENT_SECRET", "invalid_client", "missing or invalid client_secret"
            )
        if form.get("refresh_token") != self.refresh_token:
            return _oauth_error(
                "BAD_REFRESH_TOKEN", "invalid_grant", "missing or invalid refresh token"
            )
        self.issued += 1
        token = f"emulated-oauth-{self.issued}-{secrets.token_hex(8)}"
        self.expiry[token] = self.clock() + self.ttl
        answer = {
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "access_token": token,
            "expires_in": int(self.ttl) if float(self.ttl).is_integer() else self.ttl,
        }
        return 200, answer

    def expire_issued(self) -> None:
        """Expire every OAuth access token issued so far, now."""
        now = self.clock()
        for token, expires in self.expiry.items():
            if expires is not None:
                self.expiry[token] = min(expires, now)

    def expire_static(self, token: str, in_seconds: float = 0.0) -> None:
        """A static token (service key, private app token) stops working after ``in_seconds``."""
        self.expiry[token] = self.clock() + in_seconds


def _ago(seconds: float) -> tuple[int, str]:
    """HubSpot's "N unit(s) ago": seconds, then minutes, hours, days."""
    for size, unit in ((86_400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            return int(seconds // size), unit
    return int(seconds), "second"


def _oauth_error(status: str, code: str, message: str) -> Refusal:
    body = {
        "status": status,
        "message": message,
        "error": code,
        "error_description": message,
        "correlationId": secrets.token_hex(16),
    }
    return 400, body
