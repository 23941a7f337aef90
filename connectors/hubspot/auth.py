"""How the HubSpot connector authenticates: a static token, or an OAuth app's refresh token.

- ``StaticToken``: a service key or a (legacy) private app access token. It does not
  expire on a clock, but it can be rotated or revoked; a 401 is then final (``AuthError``
  naming the credential to check).
- ``OAuthToken``: an OAuth app's client id, client secret and refresh token. The access
  token is fetched at the token endpoint (``grant_type=refresh_token``, form-encoded) and
  fetched again *before* it expires: once less than ``margin`` of its life is left (5
  minutes or 10% of its life, whichever is shorter), also in the middle of a cycle, and
  once after a 401 (the caller then repeats the call once). A refused refresh is an
  ``AuthError`` naming the credential HubSpot refused.

The token goes on every request as the client's ``_request_auth`` (the generated client's
per-request override of its configured auth), so the API objects, built once, always send
the current token: the client's own ``HubSpot.access_token`` setter only changes the
config that *later* sub-APIs are built from, not the ``Configuration`` each built ApiClient
already holds (hubspot/discovery/discovery_base.py, hubspot-api-client 12.0.0).

Sources (checked 2026-12-04):
- POST /oauth/v1/token and /oauth/2026-03/token, form fields grant_type, client_id,
  client_secret, refresh_token; answer access_token, refresh_token, expires_in (seconds):
  https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/migration-guide
  (v1 is deprecated on 2027-02-16; 2026-03 takes the same fields, in the body only).
- Not confirmed: https://developers.hubspot.com/docs/methods/oauth2/oauth2-quickstart shows
  a camelCase answer (accessToken, expiresIn); both spellings are read.
- Access tokens live 30 minutes (expires_in 1800):
  https://useparagon.com/integration-error-solutions/hubspot-the-oauth-token-used-to-make-this-call-expired
  and https://github.com/airbytehq/airbyte/issues/74726.
- A refused refresh: 400 ``{"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid
  refresh token"}`` (https://www.nango.dev/blog/hubspot-oauth-bad-refresh-token); since the
  OAuth v3 changelog the body also carries RFC 6749 ``error`` / ``error_description``
  (https://developers.hubspot.com/changelog/new-oauth-v3-api-endpoints-and-standardized-error-responses).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import orjson
import urllib3
from hubspot.oauth.exceptions import ApiException as OAuthApiException

from connectors.hubspot.errors import SYSTEM, error_fields, unreachable
from syncd.errors import AuthError, TransientError

TOKEN_PATH = "/oauth/2026-03/token"
"""HubSpot's date-versioned token endpoint; ``/oauth/v1/token`` until 2027-02-16."""
EARLY = timedelta(minutes=5)
EARLY_FRACTION = 0.1
RequestAuth = dict[str, str]


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """A service key or private app access token; ``name`` is where it comes from."""

    token: str
    name: str = "the HubSpot access token"


@dataclass(frozen=True, slots=True)
class OAuthCredentials:
    """An OAuth app's credentials; the ``*_name`` fields say where each comes from."""

    client_id: str
    client_secret: str
    refresh_token: str
    client_id_name: str = "the OAuth client id"
    client_secret_name: str = "the OAuth client secret"
    refresh_token_name: str = "the OAuth refresh token"
    token_path: str = TOKEN_PATH


Credentials = StaticCredentials | OAuthCredentials


class TokenSource(Protocol):
    """Where the connector's bearer token comes from."""

    def request_auth(self) -> RequestAuth:
        """The ``_request_auth`` of the next call (refreshing first when due).

        Raises ``AuthError`` (refresh refused) or ``TransientError`` (token endpoint down).
        """

    def renew(self, refused: AuthError) -> AuthError | None:
        """After a 401: fetch a new token and return None (repeat the call), or return the
        error to raise, naming the credential to check."""

    def api_calls(self) -> dict[str, int]:
        """Requests this source sent itself (token refreshes), by "METHOD path"."""


def _bearer(token: str) -> RequestAuth:
    return {"in": "header", "key": "Authorization", "value": f"Bearer {token}", "type": "oauth2"}


class StaticToken:
    """A token that cannot be refreshed."""

    def __init__(self, credentials: StaticCredentials) -> None:
        self._auth = _bearer(credentials.token)
        self._name = credentials.name

    def request_auth(self) -> RequestAuth:
        return self._auth

    def renew(self, refused: AuthError) -> AuthError | None:
        return AuthError(
            SYSTEM,
            f"{refused.message}; a static token cannot be refreshed",
            status=refused.status,
            check=f"check {self._name}: a service key or private app access token that is"
            " current and not rotated, in the environment or else in the secrets file"
            " (secrets_file in syncd.yaml)",
            said=refused.said,
        )

    def api_calls(self) -> dict[str, int]:
        return {}


class OAuthToken:
    """An OAuth access token, refreshed with the app's refresh token before it expires."""

    def __init__(
        self,
        credentials: OAuthCredentials,
        api_client: Any,
        *,
        timeout: tuple[float, float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._refresh_token = credentials.refresh_token
        self._api_client = api_client  # hubspot.oauth's ApiClient: the client's transport
        self._timeout, self._clock = timeout, clock
        self._auth: RequestAuth | None = None
        self._refresh_at = 0.0
        self._requests = 0
        self._lock = threading.Lock()  # a connector may be called from a worker thread

    def request_auth(self) -> RequestAuth:
        with self._lock:
            if self._auth is None or self._clock() >= self._refresh_at:
                self._refresh()
            assert self._auth is not None
            return self._auth

    def renew(self, refused: AuthError) -> AuthError | None:
        with self._lock:
            self._refresh()
        return None

    def _refresh(self) -> None:
        credentials = self._credentials
        form = [
            ("grant_type", "refresh_token"),
            ("client_id", credentials.client_id),
            ("client_secret", credentials.client_secret),
            ("refresh_token", self._refresh_token),
        ]
        asked = self._clock()
        self._requests += 1
        try:
            response = self._api_client.call_api(
                credentials.token_path,
                "POST",
                header_params={
                    "Accept": "application/json",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                post_params=form,
                auth_settings=[],
                response_types_map={},
                _preload_content=False,
                _request_timeout=self._timeout,
            )
            try:
                raw = response.data
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise unreachable(exc) from exc
        except OAuthApiException as exc:
            raise self._refused(exc) from exc
        try:
            answer = orjson.loads(raw)
            # snake_case per the migration guide; one reference page shows camelCase
            token = str(answer.get("access_token") or answer["accessToken"])
            lifetime = float(answer.get("expires_in") or answer["expiresIn"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TransientError(SYSTEM, f"unreadable token answer: {exc}") from exc
        renewed = answer.get("refresh_token") or answer.get("refreshToken")
        self._refresh_token = str(renewed or self._refresh_token)
        early = min(EARLY.total_seconds(), lifetime * EARLY_FRACTION)
        self._auth, self._refresh_at = _bearer(token), asked + lifetime - early

    def api_calls(self) -> dict[str, int]:
        return {f"POST {self._credentials.token_path}": self._requests} if self._requests else {}

    def _refused(self, error: OAuthApiException) -> Exception:
        status = int(error.status or 0)
        fields = error_fields(error.body)
        if status >= 500 or status == 429:
            return TransientError(SYSTEM, f"token endpoint failed (HTTP {status})", status=status)
        code = str(fields.get("error") or "")
        said = fields.get("error_description") or fields.get("message") or error.reason
        what = str(fields.get("status") or code or status)
        credentials = self._credentials
        if code == "invalid_client" or "CLIENT" in what.upper():
            check = f"{credentials.client_id_name} and {credentials.client_secret_name}"
        else:
            check = credentials.refresh_token_name
        return AuthError(
            SYSTEM,
            f"HubSpot refused to refresh the access token ({what})",
            status=status,
            check=f"check {check}: the OAuth app must still be installed in the portal;"
            " credentials come from the environment, else from the secrets file"
            " (secrets_file in syncd.yaml)",
            said=str(said) if said else None,
        )


def token_source(
    credentials: Credentials,
    oauth_api_client: Any,
    *,
    timeout: tuple[float, float],
    clock: Callable[[], float] = time.time,
) -> TokenSource:
    """The token source for ``credentials``; ``oauth_api_client`` (the client's
    ``hubspot.oauth`` ApiClient) is needed for an OAuth app only."""
    if isinstance(credentials, OAuthCredentials):
        if oauth_api_client is None:
            raise ValueError("an OAuth app needs the client's OAuth ApiClient")
        return OAuthToken(credentials, oauth_api_client, timeout=timeout, clock=clock)
    return StaticToken(credentials)
