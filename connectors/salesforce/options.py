"""The Salesforce section of syncd.yaml (``systems.salesforce``), as far as signing in goes,
its checks, and the grant it configures. Each problem is (key path inside the section,
one-line message); the registry locates it to file:line:key.

    login_url: https://NAME.my.salesforce.com      the org's My Domain
    auth: client_credentials | jwt                  default client_credentials
    client_id_env: SALESFORCE_CLIENT_ID             the consumer key's variable (both flows)
    client_secret_env: SALESFORCE_CLIENT_SECRET     client_credentials only
    username: syncd@example.com                     jwt: the integration user
    private_key_file: keys/syncd.key                jwt: PEM, relative to syncd.yaml
    audience: https://login.salesforce.com          jwt: ``aud``; default from login_url
    connect_to: {"HOST:PORT": "ADDRESS:PORT"}       connect elsewhere, keep name and TLS check
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from connectors.salesforce.auth import ClientCredentials, Grant, JwtBearer, audience

MY_DOMAIN_SUFFIXES = (".my.salesforce.com",)
"""Host names of My Domains (production NAME.my..., sandboxes NAME--SBX.sandbox.my...,
developer editions NAME-dev-ed.develop.my...)."""
FIND_MY_DOMAIN = (
    "the client credentials flow works only at the org's My Domain URL"
    " (https://NAME.my.salesforce.com; a sandbox: https://NAME--SANDBOX.sandbox.my.salesforce.com),"
    " shown in Salesforce under Setup > My Domain"
)

Problem = tuple[tuple[str, ...], str]


class AuthOptions(BaseModel):
    """The sign-in options; other keys of the section belong to other parts of syncd."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    login_url: str
    auth: Literal["client_credentials", "jwt"] = "client_credentials"
    client_id_env: str = "SALESFORCE_CLIENT_ID"
    client_secret_env: str = "SALESFORCE_CLIENT_SECRET"
    username: str | None = None
    private_key_file: str | None = None
    audience: str | None = None
    connect_to: dict[str, str] = {}


def read(options: dict[str, Any]) -> tuple[AuthOptions | None, list[Problem]]:
    """The sign-in options of a section, or None and every problem found."""
    try:
        parsed = AuthOptions.model_validate(options)
    except ValidationError as error:
        return None, [(tuple(str(p) for p in e["loc"]), str(e["msg"])) for e in error.errors()]
    problems: list[Problem] = []
    url = urlsplit(parsed.login_url)
    host = (url.hostname or "").lower()
    if url.scheme != "https" or not host:
        problems.append((("login_url",), "an https URL: your org's My Domain"))
    elif parsed.auth == "client_credentials" and not host.endswith(MY_DOMAIN_SUFFIXES):
        problems.append((("login_url",), f"{host} is not a My Domain: {FIND_MY_DOMAIN}"))
    if parsed.auth == "jwt":
        for key in ("username", "private_key_file"):
            if not getattr(parsed, key):
                problems.append(((key,), "required with auth: jwt"))
    return (None if problems else parsed), problems


def grant(
    auth: AuthOptions, secret: Callable[[str], str | None], base: Path
) -> tuple[Grant | None, list[Problem]]:
    """The grant ``auth`` configures, with credentials by ``secret(variable name)`` and the
    key file relative to ``base``; or None and what is missing."""
    problems: list[Problem] = []

    def need(key: str, variable: str) -> str:
        value = secret(variable)
        if not value:
            message = f"credential not set: put {variable} in the environment or secrets file"
            problems.append(((key,), message))
        return value or ""

    client_id = need("client_id_env", auth.client_id_env)
    if auth.auth == "client_credentials":
        client_secret = need("client_secret_env", auth.client_secret_env)
        check = (
            f"check {auth.client_id_env} / {auth.client_secret_env} and that the connected"
            " app's client credentials flow has a run-as user"
        )
        found = ClientCredentials(client_id, client_secret, check=check)
        return (None if problems else found), problems
    assert auth.username and auth.private_key_file  # read() refuses jwt without them
    path = base / auth.private_key_file
    try:
        private_key = path.read_text(encoding="utf-8")
    except OSError as error:
        return None, [*problems, (("private_key_file",), f"cannot read {path}: {error.strerror}")]
    check = (
        f"check that the certificate uploaded to the connected app ({auth.client_id_env})"
        f" matches private_key_file {auth.private_key_file}, the username {auth.username},"
        " and that the user is pre-authorized for the app"
    )
    try:
        jwt_grant = JwtBearer(
            client_id,
            auth.username,
            private_key,
            auth.audience or audience(auth.login_url),
            check=check,
        )
    except ValueError as error:
        return None, [*problems, (("private_key_file",), f"{path}: {error}")]
    return (None if problems else jwt_grant), problems
