"""A Salesforce REST API emulator on loopback, over TLS, for tests, the demo and the benchmark.

    emulator = SalesforceEmulator().start()     # emulator.url, emulator.ca_pem_path
    session.verify = emulator.ca_pem_path; session.trust_env = False

It listens on loopback (``url``, where the control API answers) and plays the org's My
Domain ``my_domain_url`` (``https://syncd-emulator.my.salesforce.com:PORT``): a client
reaches it with ``connect_to`` (``{"syncd-emulator.my.salesforce.com:PORT":
"127.0.0.1:PORT"}``, see ``session.py``), as curl does with ``--connect-to``, and the test
certificate names both. The token endpoint answers only under the My Domain host name, as
the real client-credentials flow does; tokens expire after ``token_ttl_seconds``.

It serves the OAuth token (client credentials and JWT bearer, ``emulator_auth``), describe,
SOQL query/queryAll/queryMore (server-side cursors, ``Sforce-Query-Options: batchSize``),
sObject Collections and
single-record resources, with Salesforce's error bodies, ``Sforce-Limit-Info``, the
daily limit and the concurrent-request limit (both 403 ``REQUEST_LIMIT_EXCEEDED``, see
``SalesforceEmulator``). Knobs, as methods and under ``/_emulator/``
(no auth, not counted): latency, injected failures, token expiry, the daily limit, call
counters, the consumer secret, the JWT certificate and users, synthetic leads, UI-like edits
and lead conversion (account, contact, opportunity and its contact role), answers lost
after the write landed (``land_then_drop``), the org's rules: validation and duplicate
rules, read-only and required fields (``emulator_rules``), and an admin's setup as the
integration user sees it: a field dropped, read-only by field-level security, an External
ID not Unique (``emulator_access``), an opportunity stage whose label differs from its API
name, and commit lag
(``lag_commits``: a transaction's rows stamped with its start, behind a scan that passed
it; sources there). Adding a contact role leaves the opportunity's ``SystemModstamp``
alone here; whether the real org moves it is not confirmed (the object reference lists no
such effect:
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_opportunitycontactrole.htm).

Objects: Lead, Contact, Account, Opportunity, OpportunityContactRole, the activities
Task and Event with their owners (User; ``emulator_schema._activity`` has the sources),
and the read-only
OpportunityStage (the StageName picklist with IsWon/IsClosed) and LeadStatus (the
Lead.Status picklist with IsConverted), see ``emulator_schema``. A lead update that sets
a converted status is accepted and leaves the lead unconverted, as a real org does (see
``emulator_schema.CONVERTED_STATUSES`` for the source and what is not confirmed).

Run it in its own process with ``python -m connectors.salesforce.emulator --port 0``: it
prints its URL, the CA file's path and its My Domain URL, one a line, and serves until
terminated.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import trustme

from connectors.salesforce.emulator.api import Answer, Request, RestApi, fault, label
from connectors.salesforce.emulator.auth import Authority
from connectors.salesforce.emulator.control import control, synthetic_leads
from connectors.salesforce.emulator.rules import DuplicateRule, ValidationRule
from connectors.salesforce.emulator.schema import OBJECTS, SObject, error, sobject
from connectors.salesforce.emulator.store import Store, WriteError

DAILY_REFUSAL = "TotalRequests Limit exceeded."
"""The message past the daily allocation, as real orgs answer it
(https://github.com/SalesforceLabs/OrgCheck/issues/181,
https://success.salesforce.com/answers?id=90630000000gnuYAAQ)."""
CONCURRENT_REFUSAL = "ConcurrentRequests (Concurrent API Requests) Limit exceeded."
"""The message past the concurrent-request limit, as a real org answered it
(https://github.com/SalesforceLabs/OrgCheck/issues/432). "ConcurrentPerOrgLongTxn Limit
exceeded" (https://github.com/mautic/mautic/issues/5006) is the long-running Apex
limit's, a different one."""
PRODUCTION_CONCURRENT_LIMIT = 25
"""Concurrent long-running requests of a production org or sandbox (Developer Edition and
trials: 5)."""

_FAILURES = {
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if"
        " you contact support: 1904522151-34958 (-1357589281)",
    ),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later."),
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", DAILY_REFUSAL),
}


@dataclass
class _Failure:
    """An injected failure: answer with ``status`` while ``remaining`` > 0."""

    status: int
    remaining: int
    path_contains: str | None = None
    method: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: SalesforceEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up or failing the TLS handshake are not the emulator's errors."""
        if not isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    wbufsize = 1 << 16  # headers and body leave in one write, not two small ones
    timeout = 60  # idle keep-alive connections end instead of holding a thread forever

    def setup(self) -> None:
        # no Nagle: TLS writes a large answer as several records, and the last one would
        # wait for the client's delayed ACK
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        path, _, query = self.path.partition("?")
        request = Request(
            self.command,
            path,
            parse_qs(query, keep_blank_values=True),
            dict(self.headers.items()),
            self.rfile.read(length) if length else b"",
        )
        try:
            answer = self.server.emulator.dispatch(request)
        except Exception as exc:  # a bug of the emulator: say so as Salesforce would
            traceback.print_exc()
            answer = fault(500, "UNKNOWN_EXCEPTION", f"emulator error: {exc!r}")
        if answer.lost:  # the write landed; the client sees the connection end unanswered
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        headers = {"Content-Type": "application/json;charset=UTF-8", **answer.headers}
        if isinstance(answer.body, str) and headers["Content-Type"] == "text/html":
            body = answer.body.encode("utf-8")
        else:
            body = b"" if answer.body is None else json.dumps(answer.body).encode("utf-8")
        self.send_response(answer.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the benchmark read the counters, not a log."""


class SalesforceEmulator:
    """One emulated Salesforce org (Lead, Contact, Account, Opportunity,
    OpportunityContactRole, OpportunityStage) served over HTTPS on loopback.

    API limits, as Salesforce documents them ("API Request Limits and Allocations",
    https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html):

    - ``daily_limit``: the total API request allocation; past it every data API call
      answers 403 ``REQUEST_LIMIT_EXCEEDED`` "TotalRequests Limit exceeded." and
      ``Sforce-Limit-Info: api-usage=N/M`` reports the count on every answer. The real
      allocation is per rolling 24 hours (Enterprise Edition: 100,000 plus 1,000 per
      Salesforce license); here it never resets (unconfirmed whether refused calls count:
      here they do not).
    - ``concurrent_limit``: Salesforce limits concurrent requests that last 20 s or longer
      (25 in production orgs and sandboxes, 5 in Developer Edition and trials) and answers
      ``REQUEST_LIMIT_EXCEEDED`` past it; shorter requests are not limited. The emulator
      caps every data API request in flight at once, the token call aside (with
      ``latency_ms`` a request lasts that long), which is stricter: set the cap as if
      every request were long-running. A
      refused request answers 403 ``REQUEST_LIMIT_EXCEEDED``
      "ConcurrentRequests (Concurrent API Requests) Limit exceeded." (message as a real
      org answered, ``CONCURRENT_REFUSAL``; the status 403 is unconfirmed for this limit,
      taken from the daily one) and does not count toward the daily allocation. None (the
      default): no cap.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        client_id: str = "syncd",
        client_secret: str = "emulator-secret",
        latency_ms: int = 0,
        daily_limit: int = 15000,
        concurrent_limit: int | None = None,
        batch_min: int = 200,
        api_version: str = "60.0",
        clock: Callable[[], datetime] | None = None,
        host_name: str = "syncd-emulator.my.salesforce.com",
        token_ttl_seconds: float | None = None,
    ) -> None:
        self.port = port
        self.host_name = host_name.lower()
        self.api_version = api_version  # for the control API's renders; the REST API takes any
        self.client_id, self.client_secret = client_id, client_secret
        self.latency_ms = latency_ms
        self.daily_limit = daily_limit
        self.concurrent_limit = concurrent_limit
        self.store = Store(clock)
        self.lock = self.store.lock
        self.auth = Authority(
            self.lock, client_id=client_id, client_secret=client_secret, ttl=token_ttl_seconds
        )
        self.api = RestApi(self.store, batch_min=batch_min)
        self.url = ""
        self.my_domain_url = ""
        self.ca_pem_path = ""
        self.api_used = 0
        self._calls: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._limit_refusals: Counter[str] = Counter()
        self._in_flight = 0
        self._refused_sessions: Counter[str] = Counter()
        self._fail_next: list[_Failure] = []
        self._fail_at: list[_Failure] = []  # remaining: calls to go
        self._lose: list[_Failure] = []  # answers to lose after handling (status unused)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> SalesforceEmulator:
        """Serve on 127.0.0.1 over TLS with a fresh test CA; sets ``url``, ``my_domain_url``
        and ``ca_pem_path``."""
        ca = trustme.CA()
        handle, self.ca_pem_path = tempfile.mkstemp(prefix="sf-emulator-ca-", suffix=".pem")
        with os.fdopen(handle, "wb") as pem:
            pem.write(ca.cert_pem.bytes())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost", self.host_name).configure_cert(context)
        server = _Server(("127.0.0.1", self.port), _Handler)
        # the handshake happens on first read, in the connection's own thread
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        server.emulator = self
        self._server = server
        self.url = f"https://127.0.0.1:{server.server_address[1]}"
        self.my_domain_url = f"https://{self.host_name}:{server.server_address[1]}"
        self.auth.instance_url = self.my_domain_url
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove the CA file."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.ca_pem_path and os.path.exists(self.ca_pem_path):
            os.unlink(self.ca_pem_path)

    def __enter__(self) -> SalesforceEmulator:
        return self.start() if self._server is None else self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- the gate every API request passes -----------------------------------------------

    def dispatch(self, request: Request) -> Answer:
        if request.path.startswith("/_emulator/"):
            try:
                return self.control(request)
            except WriteError as exc:
                return Answer(400, exc.errors)
            except (KeyError, ValueError, TypeError) as exc:
                return fault(400, "INVALID_OPERATION", str(exc))
        data = 1 if request.path.startswith("/services/data/") else 0  # not the token call
        with self.lock:
            self._in_flight += data
            crowded = self.concurrent_limit is not None and self._in_flight > self.concurrent_limit
        try:
            answer = self._dispatch_api(request, crowded and data == 1)
        finally:
            with self.lock:
                self._in_flight -= data
        with self.lock:
            self._statuses[answer.status] += 1
        return answer

    def _dispatch_api(self, request: Request, crowded: bool) -> Answer:
        if self.latency_ms and not crowded:  # a refusal past the cap comes at once
            time.sleep(self.latency_ms / 1000)
        endpoint = label(request.method, request.path)
        with self.lock:
            self._calls[endpoint] += 1
            answer = self._injected(request)
        if answer is None and endpoint == "POST oauth2/token":
            return self.auth.token(request, self._host(request))
        if not request.path.startswith("/services/data/"):
            return answer or fault(404, "NOT_FOUND", "The requested resource does not exist")
        if answer is None and not self.auth.authorized(request):
            answer = fault(401, "INVALID_SESSION_ID", "Session expired or invalid")
            with self.lock:
                self._refused_sessions[endpoint] += 1
        if answer is None and crowded:
            answer = fault(403, "REQUEST_LIMIT_EXCEEDED", CONCURRENT_REFUSAL)
            with self.lock:
                self._limit_refusals["concurrent"] += 1
        with self.lock:
            counted = answer is None and self.api_used < self.daily_limit
            self.api_used += 1 if counted else 0
            usage = f"api-usage={self.api_used}/{self.daily_limit}"
            if answer is None and not counted:
                self._limit_refusals["daily"] += 1
        if answer is None:
            answer = (
                self.api.handle(request)
                if counted
                else fault(403, "REQUEST_LIMIT_EXCEEDED", DAILY_REFUSAL)
            )
            answer.lost = counted and self._loses(request)
        answer.headers["Sforce-Limit-Info"] = usage  # on every data API answer
        return answer

    def _loses(self, request: Request) -> bool:
        """Whether a ``land_then_drop`` rule takes this request's answer."""
        with self.lock:
            for rule in self._lose:
                wanted = rule.path_contains is None or rule.path_contains in request.path
                wanted = wanted and request.method == (rule.method or request.method)
                if rule.remaining > 0 and wanted and request.method != "GET":
                    rule.remaining -= 1
                    return True
        return False

    def _host(self, request: Request) -> bool:
        """Whether the request names the My Domain host (its Host header, port aside)."""
        host = next((v for k, v in request.headers.items() if k.lower() == "host"), "")
        name, sep, port = host.rpartition(":")
        return (name if sep and port.isdigit() else host).lower() == self.host_name

    def _injected(self, request: Request) -> Answer | None:
        status = None
        for rule in self._fail_at:
            rule.remaining -= 1
            if rule.remaining == 0:
                status = rule.status
        self._fail_at = [rule for rule in self._fail_at if rule.remaining > 0]
        if status is None:
            for rule in self._fail_next:
                wanted = rule.path_contains is None or rule.path_contains in request.path
                if rule.remaining > 0 and wanted:
                    rule.remaining -= 1
                    status = rule.status
                    break
        if status is None:
            return None
        if status in _FAILURES:
            return fault(status, *_FAILURES[status])
        if status >= 500:
            html = f"<html><body><h1>{status} Service Unavailable</h1></body></html>"
            return Answer(status, html, {"Content-Type": "text/html"})
        return fault(status, "INVALID_OPERATION", f"injected failure {status}")

    # --- knobs ---------------------------------------------------------------------------

    def set_latency(self, ms: int) -> None:
        """Delay every API answer by ``ms`` milliseconds."""
        self.latency_ms = ms

    def fail_next(self, status: int, count: int = 1, path_contains: str | None = None) -> None:
        """Answer the next ``count`` API calls (whose path contains ``path_contains``) with
        ``status`` and Salesforce's body for it."""
        with self.lock:
            self._fail_next.append(_Failure(status, count, path_contains))

    def fail_at_call(self, n: int, status: int) -> None:
        """Answer the ``n``-th API call from now (1 = the next one) with ``status``."""
        with self.lock:
            self._fail_at.append(_Failure(status, n))

    def land_then_drop(
        self, path_contains: str | None = None, count: int = 1, method: str | None = None
    ) -> None:
        """Handle the next ``count`` writes (not GETs; ``method`` only, if given) whose
        path contains ``path_contains``, then close the connection without answering:
        the write landed, the client sees a connection error (as after a read timeout)."""
        with self.lock:
            self._lose.append(_Failure(0, count, path_contains, method))

    def add_validation_rule(
        self, obj: str, field: str, pattern: str, message: str, name: str = "Syncd_Test_Rule"
    ) -> None:
        """A validation rule refusing a record of ``obj`` whose ``field`` fully matches
        the regular expression ``pattern`` ("" for blank), with ``message``."""
        target = _object(obj)
        if target.field(field) is None:
            raise ValueError(f"{target.name} has no field {field}")
        with self.lock:
            rule = ValidationRule(name, target.name, field, pattern, message)
            self.store.rules.validation.append(rule)

    def add_duplicate_rule(
        self, obj: str, fields: list[str], action: str = "alert", name: str = "Syncd_Test_Dupes"
    ) -> None:
        """A duplicate rule on ``obj`` matching records whose ``fields`` all equal
        (ignoring case); "alert" yields to ``allowSave=true``, "block" never does."""
        if action not in ("alert", "block"):
            raise ValueError(f"duplicate rule action {action!r}: alert or block")
        target = _object(obj)
        with self.lock:
            rule = DuplicateRule(name, target.name, tuple(fields), action)
            self.store.rules.duplicates.append(rule)

    def set_read_only(self, obj: str, field: str) -> None:
        """Field-level security: the integration user may read ``field`` but not edit it
        (one switch with ``make_read_only``: ``emulator_access``)."""
        self.api.access.read_only(_object(obj).name, _field(obj, field))

    def set_required(self, obj: str, field: str) -> None:
        """Make ``field`` required: a write leaving it blank is refused."""
        with self.lock:
            self.store.rules.required.add((_object(obj).name, _field(obj, field)))

    def clear_rules(self) -> None:
        """Remove every validation and duplicate rule and required field, and every
        field access switch (read-only, dropped, not unique)."""
        with self.lock:
            self.store.rules.clear()
        self.api.access.reset()

    def expire_tokens(self) -> None:
        """Invalidate every token issued: the next data call answers 401 INVALID_SESSION_ID."""
        self.auth.expire_all()

    def set_token_ttl(self, seconds: float | None) -> None:
        """Tokens expire ``seconds`` after they were issued (None: never, the default)."""
        self.auth.set_ttl(seconds)

    def set_client_secret(self, secret: str) -> None:
        """The admin rotated the consumer secret: token requests with the old one fail."""
        self.client_secret = secret
        self.auth.set_client_secret(secret)

    def set_jwt(self, certificate: str, users: list[str]) -> None:
        """The connected app's uploaded certificate (or public key), PEM, and the usernames
        pre-authorized for the JWT bearer flow."""
        self.auth.set_jwt(certificate, users)

    def lag_commits(self, seconds: float, count: int = 1) -> None:
        """Commit lag: the next ``count`` write transactions (API or control) are stamped
        ``seconds`` before they commit, behind a scan that may have passed that instant.

        Salesforce documents it for replication: ``getUpdated``'s ``latestDateCovered``
        "is the start time of that long-running transaction until it completes", and a
        replica should restart from it
        (https://developer.salesforce.com/docs/atlas.en-us.api.meta/object_ref/sforce_api_calls_getupdated_getupdatedresult.htm).
        Not confirmed: how long such transactions last in practice; whether
        ``SystemModstamp`` itself (not just ``getUpdated``) is the start time (the guide
        implies it: getUpdated reads ``SystemModstamp``).
        """
        self.store.lag_next(timedelta(seconds=float(seconds)), int(count))

    def set_concurrent_limit(self, n: int | None) -> None:
        """At most ``n`` API requests in flight at once (None: no cap); see the class."""
        with self.lock:
            self.concurrent_limit = None if n is None else int(n)

    def statuses(self) -> dict[int, int]:
        """API answers by HTTP status since the start (control calls are not counted)."""
        with self.lock:
            return dict(self._statuses)

    def limit_refusals(self) -> dict[str, int]:
        """REQUEST_LIMIT_EXCEEDED answers since the start: {"daily": n, "concurrent": n}."""
        with self.lock:
            return {kind: self._limit_refusals[kind] for kind in ("daily", "concurrent")}

    def set_daily_limit(self, n: int) -> None:
        """Set the daily API request limit (calls past it answer 403 REQUEST_LIMIT_EXCEEDED)."""
        with self.lock:
            self.daily_limit = n

    def api_usage(self) -> tuple[int, int]:
        """(requests used today, daily limit), as Sforce-Limit-Info reports them."""
        with self.lock:
            return self.api_used, self.daily_limit

    def calls(self) -> dict[str, int]:
        """API calls received by endpoint label (``GET query``, ``POST oauth2/token``, ...)."""
        with self.lock:
            return dict(self._calls)

    def refused_sessions(self) -> dict[str, int]:
        """Calls answered 401 for an expired or unknown token, by endpoint label."""
        with self.lock:
            return dict(self._refused_sessions)

    def reset_calls(self) -> None:
        with self.lock:
            self._calls.clear()

    # --- the org's setup as the integration user sees it ------------------------------
    # (``emulator_access`` says what describe, SOQL and writes then answer)

    def drop_field(self, obj: str, field: str) -> None:
        """Remove a field for the integration user (deleted, or hidden by field-level
        security): gone from describe, SOQL and writes."""
        self.api.access.drop(_object(obj).name, field)

    def make_read_only(self, obj: str, field: str) -> None:
        """Field-level security: the integration user may read the field, not edit it."""
        self.api.access.read_only(_object(obj).name, field)

    def make_not_unique(self, obj: str, field: str) -> None:
        """The External ID field loses its Unique attribute (describe ``unique: false``)."""
        self.api.access.not_unique(_object(obj).name, field)

    def reset_access(self) -> None:
        """Every field visible and as built again."""
        self.api.access.reset()

    def relabel_stage(self, api_name: str, label: str) -> None:
        """Rename an opportunity stage's label (``MasterLabel``), as an admin does in Setup;
        its API name, the value ``StageName`` holds, stays."""
        with self.lock:
            rows = self.store.rows["OpportunityStage"]
            found = next((i for i, r in rows.items() if r["ApiName"] == api_name), None)
            if found is None:
                raise KeyError(f"no opportunity stage {api_name!r}")
            rows[found] = {**rows[found], "MasterLabel": label}

    # --- data as a user in the Salesforce UI sees it -------------------------------------

    def add(self, obj: str, fields: dict[str, Any]) -> str:
        """Create a record as a user would; raises WriteError on a validation error."""
        return str(self._write(self.store.create(_object(obj), fields))["id"])

    def update(self, obj: str, id_: str, fields: dict[str, Any]) -> None:
        """Edit a record as a user would; raises WriteError on a validation error."""
        self._write(self.store.update(_object(obj), id_, fields))

    def delete(self, obj: str, id_: str) -> None:
        """Delete a record (to the recycle bin: queryAll still returns it, IsDeleted true)."""
        _object(obj)
        self._write(self.store.delete(id_))

    def get(self, obj: str, id_: str) -> dict[str, Any] | None:
        """A record with every field (and ``attributes``), or None."""
        row = self.store.get(_object(obj).name, id_)
        return None if row is None else RestApi.render(self.api_version, _object(obj).name, row)

    def records(self, obj: str, *, include_deleted: bool = True) -> list[dict[str, Any]]:
        """Every record of ``obj`` in creation order; deleted ones carry ``IsDeleted: True``."""
        name = _object(obj).name
        rows = self.store.all(name)
        return [
            RestApi.render(self.api_version, name, r)
            for r in rows
            if include_deleted or not r["IsDeleted"]
        ]

    def convert_lead(
        self,
        lead_id: str,
        *,
        account_id: str | None = None,
        create_opportunity: bool = True,
        opportunity_name: str | None = None,
    ) -> dict[str, str | None]:
        """Convert a lead as Salesforce's UI does, in one transaction.

        The lead's company becomes a new Account (or ``account_id``, an existing one, is
        used and touched); a Contact carries the lead's person fields and partner id; unless
        ``create_opportunity`` is false, an Opportunity (``opportunity_name`` or
        "{Company}-", stage Prospecting, closing in 30 days) gets the contact as its primary
        contact role. The lead is closed: IsConverted, Converted*Id, ConvertedDate and
        Status "Closed - Converted"; it refuses later updates (CANNOT_UPDATE_CONVERTED_LEAD).
        Every record touched gets the transaction's SystemModstamp. Raises WriteError.
        """
        lead = self.store.get("Lead", lead_id)
        if lead is None or lead["IsDeleted"] or lead["IsConverted"]:
            problem = error("INVALID_STATUS", f"lead {lead_id} cannot be converted")
            raise WriteError([problem])
        ids: dict[str, str | None] = {"opportunityId": None}

        def convert(batch: Any) -> dict[str, Any]:
            if account_id:
                account = self.store.update(OBJECTS["Account"], account_id, {}, system=True)(batch)
            else:
                account = self.store.create(OBJECTS["Account"], {"Name": lead["Company"]})(batch)
            if not account["success"]:
                return account
            person = {f: lead[f] for f in _CONVERTED_FIELDS}
            contact = self.store.create(OBJECTS["Contact"], {**person, "AccountId": account["id"]})(
                batch
            )
            if not contact["success"]:
                return contact
            ids.update(accountId=account["id"], contactId=contact["id"])
            # the lead's activities follow it to the contact (WhoId), as the UI's conversion
            # is understood to do; not confirmed from a public page
            for kind in ("Task", "Event"):
                for row in batch.live(kind, "WhoId", lead["Id"]):
                    move = {"WhoId": contact["id"]}
                    self.store.update(OBJECTS[kind], row["Id"], move, system=True)(batch)
            if create_opportunity:
                close = date.fromisoformat(batch.stamp[:10]) + timedelta(days=30)
                deal = {
                    "Name": (opportunity_name or f"{lead['Company']}-")[:120],
                    "AccountId": account["id"],
                    "StageName": "Prospecting",
                    "CloseDate": close.isoformat(),
                    "LeadSource": lead["LeadSource"],
                }
                opportunity = self.store.create(OBJECTS["Opportunity"], deal)(batch)
                if not opportunity["success"]:
                    return opportunity
                role = {"OpportunityId": opportunity["id"], "ContactId": contact["id"]}
                self.store.create(OBJECTS["OpportunityContactRole"], {**role, "IsPrimary": True})(
                    batch
                )
                ids["opportunityId"] = opportunity["id"]
            converted = {
                "IsConverted": True,
                "ConvertedAccountId": account["id"],
                "ConvertedContactId": contact["id"],
                "ConvertedOpportunityId": ids["opportunityId"],
                "ConvertedDate": batch.stamp[:10],
                "Status": "Closed - Converted",
            }
            return self.store.update(OBJECTS["Lead"], lead_id, converted, system=True)(batch)

        self._write(convert)
        return ids

    def add_user(self, first: str, last: str) -> str:
        """A new active sales user (a rep who can own leads and activities); its id."""
        return self.add(
            "User",
            {
                "FirstName": first,
                "LastName": last,
                "Email": f"{first}.{last}@example.com".lower(),
                "IsActive": True,
            },
        )

    def seed_leads(self, n: int) -> None:
        """Add ``n`` synthetic leads, imported in batches of 200 that share a SystemModstamp."""
        self.store.bulk_load("Lead", synthetic_leads(self.store, n))

    def _write(self, operation: Any) -> dict[str, Any]:
        result = self.store.write([operation], all_or_none=True)[0]
        if not result["success"]:
            raise WriteError(result["errors"])
        return result

    def control(self, request: Request) -> Answer:
        """One call of the control API under ``/_emulator/``."""
        return control(self, request)


_CONVERTED_FIELDS = (
    "FirstName",
    "LastName",
    "Email",
    "Title",
    "Phone",
    "LeadSource",
    "Syncd_HubSpot_Id__c",
)
"""Lead fields a conversion copies to the new contact."""


def _field(obj: str, name: str) -> str:
    found = _object(obj).field(name)
    if found is None:
        raise ValueError(f"{obj} has no field {name}")
    return found.name


def _object(name: str) -> SObject:
    found = sobject(name)
    if found is None:
        raise KeyError(f"sObject type '{name}' is not supported")
    return found


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground; print the URL, the CA path and the My Domain URL, one a line."""
    parser = argparse.ArgumentParser(
        prog="python -m connectors.salesforce.emulator",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed-leads", type=int, default=0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--daily-limit", type=int, default=15000)
    parser.add_argument(
        "--concurrent-limit",
        type=int,
        default=None,
        help=f"requests in flight at once (production orgs: {PRODUCTION_CONCURRENT_LIMIT})",
    )
    parser.add_argument("--batch-min", type=int, default=200)
    parser.add_argument("--host-name", default="syncd-emulator.my.salesforce.com")
    parser.add_argument("--token-ttl-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    emulator = SalesforceEmulator(
        args.port,
        latency_ms=args.latency_ms,
        daily_limit=args.daily_limit,
        concurrent_limit=args.concurrent_limit,
        batch_min=args.batch_min,
        host_name=args.host_name,
        token_ttl_seconds=args.token_ttl_seconds,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with emulator.start():
        if args.seed_leads:
            emulator.seed_leads(args.seed_leads)
        print(emulator.url, flush=True)
        print(emulator.ca_pem_path, flush=True)
        print(emulator.my_domain_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
