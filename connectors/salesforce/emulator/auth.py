"""The emulated OAuth token endpoint and the life of the tokens it issues.

What the real Salesforce does, as far as public references show (checked December 2026):

- The client-credentials flow works only at the org's My Domain
  (``https://NAME.my.salesforce.com``; sandboxes ``NAME--SANDBOX.sandbox.my.salesforce.com``);
  at test.salesforce.com / login.salesforce.com the token request answers 400
  ``{"error":"invalid_grant","error_description":"request not supported on this domain"}``
  (github.com/pozil/pub-sub-api-node-client/issues/58, fixed by switching ``loginUrl`` to
  the org's domain; Salesforce help article 000886201, "Migrate from OAuth
  Username-Password to Client Credentials Flow", help.salesforce.com/s/articleView?id=000886201).
  The emulator models one org, so its token endpoint answers only under its My Domain
  host name (``Host`` header); a JWT request elsewhere is refused the same way, although
  the real login.salesforce.com accepts JWT assertions.
- Neither flow issues a refresh token: a client asks again when a session expires; an
  expired session answers 401 ``[{"message":"Session expired or invalid",
  "errorCode":"INVALID_SESSION_ID"}]`` (the REST API's error shape). Real sessions time
  out after inactivity per the connected app's or the org's session timeout, a successful
  request resetting the timer (salesforce.stackexchange.com/questions/212976); here,
  stricter, ``ttl`` seconds after issue (None: never), on ``clock`` (monotonic by default,
  injectable), so that a busy client meets expiry too.
- JWT bearer: ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and ``assertion``,
  an RS256 JWT with ``iss`` (consumer key), ``sub`` (username), ``aud`` and ``exp``,
  signed by the key whose certificate is uploaded to the connected app. ``aud`` is
  https://login.salesforce.com, or https://test.salesforce.com for sandboxes
  (npmjs.com/package/salesforce-jwt-bearer-token-flow; restforce/restforce#674); a
  2026 change (simstudioai/sim pull 6508) reports that External Client Apps also take the
  My Domain URL and refuse test.salesforce.com: the emulator accepts login.salesforce.com
  and its My Domain URL. Refusals, all 400: wrong ``aud``: ``invalid_grant`` "audience is
  invalid" (salesforce.stackexchange.com/questions/184363); a bad signature:
  ``invalid_grant`` "invalid assertion" (frankkessler/salesforce-laravel-oauth2-rest#68);
  a user not pre-authorized for the app (also seen for a wrong username):
  ``invalid_grant`` "user hasn't approved this consumer" (omniphx/forrest#278); an
  assertion past its ``exp``: ``invalid_grant`` "expired authorization code"
  (salesforce.stackexchange.com/questions/282513).
- Not confirmed, modelled by analogy: an unknown consumer key answers ``invalid_client_id``
  "client identifier invalid"; a wrong consumer secret answers ``invalid_client``
  "invalid client credentials"; Salesforce's limit on ``exp`` (3 minutes ahead, from
  memory of its JWT flow page; one third-party page says 5) is not enforced.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from connectors.salesforce.emulator.api import Answer, Request

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCE = "https://login.salesforce.com"


def _refused(error: str, description: str) -> Answer:
    return Answer(400, {"error": error, "error_description": description})


class Authority:
    """The org's token endpoint: grants, issued tokens and their expiry."""

    def __init__(
        self,
        lock: AbstractContextManager[Any],
        *,
        client_id: str,
        client_secret: str,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = lock
        self.client_id, self.client_secret = client_id, client_secret
        self.ttl = ttl
        self.clock = clock
        self.instance_url = ""
        self.tokens: dict[str, float] = {}
        """Issued tokens and when (on ``clock``)."""
        self.jwt_key: Any = None
        self.jwt_users: set[str] = set()

    # --- knobs ---------------------------------------------------------------------------

    def expire_all(self) -> None:
        with self.lock:
            self.tokens.clear()

    def set_ttl(self, seconds: float | None) -> None:
        with self.lock:
            self.ttl = None if seconds is None else float(seconds)

    def set_client_secret(self, secret: str) -> None:
        with self.lock:
            self.client_secret = secret

    def set_jwt(self, certificate: str, users: list[str]) -> None:
        """Trust ``certificate`` (an X.509 certificate or a public key, PEM) for ``users``."""
        pem = certificate.encode()
        key: Any
        if b"BEGIN CERTIFICATE" in pem:
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
        with self.lock:
            self.jwt_key, self.jwt_users = key, {u.lower() for u in users}

    # --- the endpoint --------------------------------------------------------------------

    def token(self, request: Request, my_domain: bool) -> Answer:
        """Answer ``POST /services/oauth2/token``; ``my_domain``: asked under the My Domain."""
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8")).items()}
        form.update({k: v[-1] for k, v in request.params.items() if k not in form})
        grant = form.get("grant_type")
        if grant not in ("client_credentials", JWT_BEARER):
            return _refused("unsupported_grant_type", "grant type not supported")
        if not my_domain:
            return _refused("invalid_grant", "request not supported on this domain")
        refused = (
            self._client_credentials(form)
            if grant == "client_credentials"
            else self._assertion(form.get("assertion", ""))
        )
        return refused or self._issue()

    def _client_credentials(self, form: dict[str, str]) -> Answer | None:
        with self.lock:
            expected = (self.client_id, self.client_secret)
        if (form.get("client_id"), form.get("client_secret")) != expected:
            return _refused("invalid_client", "invalid client credentials")
        return None

    def _assertion(self, assertion: str) -> Answer | None:
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _refused("invalid_grant", "invalid assertion")
        with self.lock:
            key, users = self.jwt_key, set(self.jwt_users)
        if claims.get("iss") != self.client_id or key is None:
            return _refused("invalid_client_id", "client identifier invalid")
        try:
            jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=[LOGIN_AUDIENCE, self.instance_url],
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.InvalidAudienceError:
            return _refused("invalid_grant", "audience is invalid")
        except jwt.ExpiredSignatureError:
            return _refused("invalid_grant", "expired authorization code")
        except jwt.PyJWTError:
            return _refused("invalid_grant", "invalid assertion")
        if str(claims.get("sub", "")).lower() not in users:
            return _refused("invalid_grant", "user hasn't approved this consumer")
        return None

    def _issue(self) -> Answer:
        token = "00D5g000004Emul!" + secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[token] = self.clock()
            secret = self.client_secret
        issued_at = str(int(time.time() * 1000))
        digest = hmac.new(
            secret.encode(), (self.instance_url + issued_at).encode(), hashlib.sha256
        ).digest()
        return Answer(
            200,
            {
                "access_token": token,
                "instance_url": self.instance_url,
                "id": f"{LOGIN_AUDIENCE}/id/00D5g000004Emul/0055g00000EmuLat",
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": base64.b64encode(digest).decode(),
            },
        )

    def authorized(self, request: Request) -> bool:
        """A data request carries a token issued here and not yet expired."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme not in ("Bearer", "OAuth"):
            return False
        with self.lock:
            issued = self.tokens.get(token)
            if issued is None:
                return False
            if self.ttl is not None and self.clock() - issued >= self.ttl:
                del self.tokens[token]
                return False
            return True
