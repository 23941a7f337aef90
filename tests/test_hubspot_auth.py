"""HubSpot authentication through the official client against the emulator: a static token
(service key, private app token) and an OAuth app whose access tokens expire on a clock."""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode

import pytest

from connectors.hubspot.auth import OAuthCredentials, StaticCredentials
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator.server import HubSpotEmulator
from connectors.hubspot.testing import connector_for, running_emulator
from syncd.errors import AuthError

TOKEN = "POST /oauth/2026-03/token"


class Clock:
    """A clock the test moves; the emulator and the connector share it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _oauth(emulator: HubSpotEmulator, **changes: str) -> OAuthCredentials:
    values = {
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "refresh_token": emulator.refresh_token,
        **changes,
    }
    return OAuthCredentials(
        **values,
        client_id_name="HUBSPOT_CLIENT_ID",
        client_secret_name="HUBSPOT_CLIENT_SECRET",
        refresh_token_name="HUBSPOT_REFRESH_TOKEN",
    )


def _oauth_connector(
    emulator: HubSpotEmulator, clock: Any = None, **changes: str
) -> HubSpotConnector:
    options: dict[str, Any] = {"credentials": _oauth(emulator, **changes)}
    if clock is not None:
        options["clock"] = clock
    return connector_for(emulator, **options)


def _post(url: str, data: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data, {"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _get(url: str, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_the_oauth_app_logs_in_and_refreshes_before_the_token_expires() -> None:
    clock = Clock()
    with running_emulator(token_ttl=600, clock=clock) as emulator:
        connector = _oauth_connector(emulator, clock)
        connector.check()
        assert connector.api_calls()[TOKEN] == 1
        clock.now += 500  # 100 s left: more than 10% of 600 s
        connector.check()
        assert connector.api_calls()[TOKEN] == 1
        clock.now += 45  # 55 s left: refreshed before the call, not after a 401
        connector.check()
        assert connector.api_calls()[TOKEN] == 2
        clock.now += 3600  # long idle: the token expired meanwhile, refreshed first
        connector.check()
        assert connector.api_calls()[TOKEN] == 3
        assert 401 not in connector.api_statuses()
        assert emulator.calls()[TOKEN] == 3
        connector.close()


def test_an_access_token_that_expires_early_is_refreshed_once_and_the_call_repeated() -> None:
    with running_emulator() as emulator:
        connector = _oauth_connector(emulator)
        connector.check()
        emulator.expire_tokens()  # revoked, or a clock that runs ahead of ours
        connector.check()
        assert connector.api_statuses()[401] == 1
        assert connector.api_calls() == {"GET /crm/v3/objects/contacts": 3, TOKEN: 2}
        connector.close()


def test_a_refused_refresh_is_an_auth_error_naming_the_refresh_token() -> None:
    with running_emulator() as emulator:
        connector = _oauth_connector(emulator)
        connector.check()
        emulator.revoke_refresh_token()  # the app was uninstalled from the portal
        emulator.expire_tokens()
        with pytest.raises(AuthError, match="HUBSPOT_REFRESH_TOKEN") as refused:
            connector.check()
        assert "BAD_REFRESH_TOKEN" in str(refused.value)
        assert "HUBSPOT_CLIENT_SECRET" not in str(refused.value)
        assert emulator.calls()[TOKEN] == 2  # refused once, not retried
        connector.close()


def test_a_wrong_client_secret_is_an_auth_error_naming_the_client_credentials() -> None:
    with running_emulator() as emulator:
        connector = _oauth_connector(emulator, client_secret="not-the-secret")
        with pytest.raises(AuthError, match="HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET"):
            connector.check()
        assert "GET /crm/v3/objects/contacts" not in emulator.calls()
        connector.close()


def test_a_static_token_that_expires_is_a_clear_auth_error() -> None:
    with running_emulator() as emulator:
        connector = connector_for(
            emulator, credentials=StaticCredentials(emulator.token, "HUBSPOT_ACCESS_TOKEN")
        )
        connector.check()
        emulator.expire_static_token()  # rotated in HubSpot's settings
        with pytest.raises(AuthError) as refused:
            connector.check()
        message = str(refused.value)
        assert "expired" in message and "cannot be refreshed" in message
        assert "check HUBSPOT_ACCESS_TOKEN" in message
        assert connector.api_calls() == {"GET /crm/v3/objects/contacts": 2}
        connector.close()


def test_the_token_endpoint_answers_as_hubspot_does() -> None:
    with running_emulator(token_ttl=1800) as emulator:
        for path in ("/oauth/v1/token", "/oauth/2026-03/token"):
            form = {
                "grant_type": "refresh_token",
                "client_id": emulator.client_id,
                "client_secret": emulator.client_secret,
                "refresh_token": emulator.refresh_token,
            }
            form_type = "application/x-www-form-urlencoded"
            status, answer = _post(emulator.url + path, urlencode(form).encode(), form_type)
            assert status == 200
            assert set(answer) == {"token_type", "refresh_token", "access_token", "expires_in"}
            assert answer["expires_in"] == 1800 and answer["token_type"] == "bearer"
            assert _get(emulator.url + "/crm/v3/objects/contacts", answer["access_token"])[0] == 200
            bad = urlencode({**form, "refresh_token": "stale"}).encode()
            status, refusal = _post(emulator.url + path, bad, form_type)
            assert status == 400
            assert refusal["status"] == "BAD_REFRESH_TOKEN"
            assert refusal["error"] == "invalid_grant"
            assert refusal["message"] == "missing or invalid refresh token"


def test_an_expired_token_is_answered_with_hubspots_expired_authentication_body() -> None:
    clock = Clock()
    with running_emulator(token_ttl=60, clock=clock) as emulator:
        form = {
            "grant_type": "refresh_token",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "refresh_token": emulator.refresh_token,
        }
        _, answer = _post(
            emulator.url + "/oauth/v1/token",
            urlencode(form).encode(),
            "application/x-www-form-urlencoded",
        )
        clock.now += 60 + 125
        status, body = _get(emulator.url + "/crm/v3/objects/contacts", answer["access_token"])
        assert status == 401
        assert body["category"] == "EXPIRED_AUTHENTICATION"
        assert body["message"] == "The OAuth token used to make this call expired 2 minute(s) ago."
        assert body["status"] == "error" and "correlationId" in body
        assert body["context"]["expire time"][0].endswith("Z")
        status, body = _get(emulator.url + "/crm/v3/objects/contacts", "never-issued")
        assert (status, body["category"]) == (401, "INVALID_AUTHENTICATION")


def test_the_control_api_sets_the_token_life() -> None:
    with running_emulator() as emulator:
        status, _ = _post(
            emulator.url + "/_emulator/token_ttl", b'{"seconds": 5}', "application/json"
        )
        assert status == 200 and emulator.tokens.ttl == 5
        _post(emulator.url + "/_emulator/expire_tokens", b'{"at_call": 3}', "application/json")
        assert emulator.tokens.expire_at_calls == {3}


def test_a_token_endpoint_that_fails_for_a_moment_is_retried() -> None:
    with running_emulator() as emulator:
        emulator.fail_next(503, path_contains="/oauth/")
        connector = _oauth_connector(emulator)
        connector.check()
        assert connector.api_calls() == {TOKEN: 2, "GET /crm/v3/objects/contacts": 1}
        connector.close()
