"""The HTTP side of the connector: a requests session with timeouts and a meter, and the
OAuth 2.0 client-credentials login that yields a simple-salesforce client.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from connectors.salesforce.errors import SYSTEM, from_response, translate
from syncd.errors import AuthError

_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a (connect, read) timeout: simple-salesforce sets none."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__(max_retries=0)  # retries are syncd.retry's, visible and bounded
        self.timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
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


def session(ca_bundle: str | None, timeout: tuple[float, float], meter: Meter) -> requests.Session:
    """A session that trusts ``ca_bundle`` (not the environment), times out, and is metered."""
    http = requests.Session()
    http.trust_env = False
    if ca_bundle:
        http.verify = ca_bundle
    adapter = _TimeoutAdapter(timeout)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    http.hooks["response"].append(meter.observe)
    return http


def login(
    http: requests.Session, login_url: str, client_id: str, client_secret: str, version: str
) -> Salesforce:
    """OAuth 2.0 client credentials at ``login_url``; a client on the instance it names."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    }
    try:
        answer = http.post(f"{login_url}/services/oauth2/token", data=form)
        if answer.status_code != 200:
            raise from_response(answer, "token request")
        body = answer.json()
        token, instance_url = body["access_token"], body["instance_url"]
    except requests.RequestException as exc:
        raise translate(exc) from exc
    except (KeyError, TypeError) as exc:
        raise AuthError(SYSTEM, f"token answer without {exc}", status=200) from exc
    return Salesforce(instance_url=instance_url, session_id=token, session=http, version=version)


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
