"""The HTTP side of the connector: a requests session with timeouts, a meter and an
optional ``connect_to`` map, and the OAuth 2.0 login that yields a simple-salesforce client.

``connect_to`` works like curl's ``--connect-to``: ``{"NAME.my.salesforce.com:443":
"10.0.0.5:8443"}`` opens the TCP connection to the right-hand address while the URL, the
``Host`` header, TLS SNI and the certificate check keep the left-hand name. The emulator
uses it to serve a My Domain host name on loopback, where no DNS resolves one; a private
endpoint or a TCP forwarder can use it in production.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from connectors.salesforce.auth import Grant
from connectors.salesforce.errors import SYSTEM, error_details, from_response, translate
from syncd.daemon.pacing import Pacer
from syncd.errors import AuthError

_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


class _Transport(HTTPAdapter):
    """Gives every request a (connect, read) timeout (simple-salesforce sets none) and
    connects to the ``connect_to`` address of its host, if it has one; with a ``pacer``
    (``syncd.daemon.pacing``), at most its cap of requests are in flight at once."""

    def __init__(
        self,
        timeout: tuple[float, float],
        connect_to: Mapping[str, str],
        pacer: Pacer | None = None,
    ) -> None:
        super().__init__(max_retries=0)  # retries are syncd.retry's, visible and bounded
        self.timeout = timeout
        self.pacer = pacer
        self.connect_to = {_host_port(k): _host_port(v) for k, v in connect_to.items()}

    def _target(self, url: str | None) -> tuple[str, int] | None:
        split = urlsplit(url or "")
        if not split.hostname:
            return None
        port = split.port or (443 if split.scheme == "https" else 80)
        return self.connect_to.get((split.hostname.lower(), port))

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> Any:
        """The pool of the ``connect_to`` address, checking the certificate of the URL's name."""
        found = super().build_connection_pool_key_attributes(request, verify, cert)
        host_params: dict[str, Any] = dict(found[0])
        pool_kwargs: dict[str, Any] = dict(found[1])
        target = self._target(request.url)
        if target is not None:
            name = urlsplit(request.url or "").hostname
            host_params.update(host=target[0], port=target[1])
            if host_params.get("scheme") == "https":  # SNI and the certificate: the URL's name
                pool_kwargs.update(server_hostname=name, assert_hostname=name)
        return host_params, pool_kwargs

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if self._target(request.url) is not None and "Host" not in request.headers:
            # http.client would name the connect_to address; the server must see the URL's
            request.headers["Host"] = urlsplit(request.url or "").netloc
        with self.pacer.slot("in_flight") if self.pacer else nullcontext():
            return super().send(
                request,
                stream=stream,
                timeout=self.timeout if timeout is None else timeout,
                verify=verify,
                cert=cert,
                proxies=proxies,
            )


class Meter:
    """Counts every HTTP call by endpoint label and keeps the API usage Salesforce reports."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.usage: tuple[int, int] | None = None

    def observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A requests response hook."""
        self.calls[_label(response.request.method or "GET", response.request.url or "")] += 1
        self.statuses[response.status_code] += 1
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.usage = (int(match.group(1)), int(match.group(2)))


def session(
    ca_bundle: str | None,
    timeout: tuple[float, float],
    meter: Meter | None = None,
    connect_to: Mapping[str, str] | None = None,
    pacer: Pacer | None = None,
) -> requests.Session:
    """A session that trusts ``ca_bundle`` (not the environment), times out, is metered, and
    connects to the ``connect_to`` address of a ``host:port`` it names."""
    http = requests.Session()
    http.trust_env = False
    if ca_bundle:
        http.verify = ca_bundle
    adapter = _Transport(timeout, connect_to or {}, pacer)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    if meter is not None:
        http.hooks["response"].append(meter.observe)
    return http


def login(http: requests.Session, login_url: str, grant: Grant, version: str) -> Salesforce:
    """A token by ``grant`` at ``login_url``; a client on the instance it names.

    A refused grant is an AuthError whose message says which credential to check."""
    try:
        answer = http.post(f"{login_url}/services/oauth2/token", data=grant.form())
        if answer.status_code != 200:
            error = from_response(answer, "token request")
            if isinstance(error, AuthError):
                code, said = error_details(answer.content)
                raise AuthError(
                    SYSTEM,
                    f"Salesforce refused to sign syncd in at {login_url}"
                    f" (token request, HTTP {answer.status_code}{', ' + code if code else ''})",
                    status=error.status,
                    check=f"{grant.check}; credentials come from the environment, else from"
                    " the secrets file (secrets_file in syncd.yaml)",
                    said=f"{code}: {said}" if code else said or None,
                )
            raise error
        body = answer.json()
        token, instance_url = body["access_token"], body["instance_url"]
    except requests.RequestException as exc:
        raise translate(exc) from exc
    except (KeyError, TypeError) as exc:
        raise AuthError(SYSTEM, f"token answer without {exc}", status=200) from exc
    return Salesforce(instance_url=instance_url, session_id=token, session=http, version=version)


def _host_port(text: str) -> tuple[str, int]:
    """``host:port`` (port 443 when left out) as a lower-case host and a number."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit():
        host, port = text.strip(), "443"
    return host.strip("[]").lower(), int(port)


def _label(method: str, url: str) -> str:
    """An endpoint label like the emulator's: ``GET query``, ``PATCH composite/sobjects``."""
    path = urlsplit(url).path
    if path.endswith("/oauth2/token"):
        return f"{method} oauth2/token"
    parts = [p for p in path.split("/") if p][3:]  # after services/data/vXX.X
    if parts[:1] in (["query"], ["queryAll"]):
        return f"{method} queryMore" if len(parts) > 1 else f"{method} {parts[0]}"
    if parts[-1:] == ["describe"]:
        return f"{method} describe"
    if parts[:2] == ["composite", "sobjects"]:
        return f"{method} composite/sobjects" + (" upsert" if len(parts) == 4 else "")
    return f"{method} {parts[0] if parts else 'other'}"
