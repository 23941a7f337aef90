"""How the connector asks Salesforce for a token: the OAuth 2.0 client-credentials flow or
the JWT bearer flow, and which credential to check when Salesforce refuses it.

Both POST a form to ``{login_url}/services/oauth2/token``; neither yields a refresh token,
so an expired session is cured by asking again with the same grant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 150
"""Seconds an assertion is valid: Salesforce wants ``exp`` within 3 minutes from now."""


class Grant(Protocol):
    """One way to obtain a token."""

    @property
    def check(self) -> str:
        """What to check when Salesforce refuses the grant (credential names, app setup)."""
        ...

    def form(self) -> dict[str, str]:
        """The token request's form fields."""
        ...


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """OAuth 2.0 client credentials: the connected app's consumer key and secret; the token
    acts as the app's run-as user. Works only at the org's My Domain."""

    client_id: str
    client_secret: str = field(repr=False)
    check: str = (
        "check the consumer key and secret and that the connected app's client credentials"
        " flow has a run-as user"
    )

    def form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }


@dataclass(frozen=True, slots=True)
class JwtBearer:
    """OAuth 2.0 JWT bearer: an assertion for ``username`` signed (RS256) with the private
    key whose certificate is uploaded to the connected app (consumer key ``client_id``)."""

    client_id: str
    username: str
    private_key: str = field(repr=False)
    """The PEM text of the private key."""
    audience: str
    check: str = (
        "check that the certificate uploaded to the connected app matches the private key,"
        " the username, and that the user is pre-authorized for the app"
    )

    def __post_init__(self) -> None:
        """Refuse a key that cannot sign, before any request (ValueError)."""
        try:
            key = serialization.load_pem_private_key(self.private_key.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not an unencrypted PEM private key ({exc})") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA key: Salesforce verifies RS256 signatures")

    def form(self) -> dict[str, str]:
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience,
            "exp": int(time.time()) + ASSERTION_LIFETIME,
        }
        assertion = jwt.encode(claims, self.private_key, algorithm="RS256")
        return {"grant_type": JWT_BEARER, "assertion": assertion}


def audience(login_url: str) -> str:
    """The ``aud`` Salesforce expects for a login URL: https://test.salesforce.com for a
    sandbox (test.salesforce.com or ``*.sandbox.my.salesforce.com``), else
    https://login.salesforce.com."""
    host = (urlsplit(login_url).hostname or "").lower()
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    return "https://login.salesforce.com"
