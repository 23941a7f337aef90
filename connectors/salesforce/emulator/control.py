"""The emulator's control API under ``/_emulator/`` (no auth, not counted) and its
synthetic data.

    GET   /_emulator/calls                  calls by endpoint label
    POST  /_emulator/reset_calls
    GET   /_emulator/usage                  {"used", "limit"}
    POST  /_emulator/daily_limit            {"limit": n}
    POST  /_emulator/concurrent_limit       {"limit": n or null}: requests in flight at once
    GET   /_emulator/statuses               API answers by HTTP status: {"200": n, "403": n}
    GET   /_emulator/limit_refusals         REQUEST_LIMIT_EXCEEDED answers: {"daily", "concurrent"}
    POST  /_emulator/seed                   {"leads": n}
    POST  /_emulator/fail                   {"status", "count", "path_contains"} or
                                            {"status", "at_call"}
    POST  /_emulator/expire_tokens
    POST  /_emulator/token_ttl              {"seconds": n or null}: tokens expire n s after issue
    POST  /_emulator/client_secret          {"secret": s}: the consumer secret was rotated
    POST  /_emulator/jwt                    {"certificate": PEM, "users": [username, ...]}
    POST  /_emulator/latency                {"ms": n}
    POST  /_emulator/land_then_drop         {"path_contains", "count", "method"}: lose answers
    POST  /_emulator/rules                  {"validation": [{"object", "field", "pattern",
                                            "message"}], "duplicate": [{"object",
                                            "fields", "action"}], "read_only": [["Lead",
                                            "Title"]], "required": [["Lead", "Phone"]]}
    DELETE /_emulator/rules                 clear them all
    POST  /_emulator/drop_field             {"object", "field"}: gone for the API user
    POST  /_emulator/read_only_field        {"object", "field"}: field-level security
    POST  /_emulator/not_unique_field       {"object", "field"}: External ID, not Unique
    POST  /_emulator/reset_access
    POST  /_emulator/relabel_stage          {"api_name", "label"}: a new MasterLabel
    POST  /_emulator/commit_lag             {"seconds": n, "count": 1}: the next ``count``
                                            write transactions are stamped n s before
                                            their commit (a long transaction)
    GET   /_emulator/records/{Object}[/{Id}]
    POST  /_emulator/records/{Object}       fields -> {"id"}
    PATCH /_emulator/records/{Object}/{Id}  fields
    DELETE /_emulator/records/{Object}/{Id}
    POST  /_emulator/convert/{LeadId}       optional {"account_id", "create_opportunity",
                                            "opportunity_name"}
                                            -> {"accountId", "contactId", "opportunityId"}

Validation errors answer 400 with Salesforce's error list.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import unquote

from connectors.salesforce.emulator.api import Answer, Request, fault
from connectors.salesforce.emulator.schema import LEAD_SOURCES, LEAD_STATUSES, OBJECTS
from connectors.salesforce.emulator.store import Store


class Controlled(Protocol):
    """What the control API drives of the emulator (``server.SalesforceEmulator`` has
    it): a protocol, because the emulator routes ``/_emulator/`` requests here. Knobs
    without arguments of their own are called by name (``_SIMPLE``)."""

    def add(self, obj: str, fields: dict[str, Any]) -> str: ...
    def add_duplicate_rule(
        self, obj: str, fields: list[str], action: str = "alert", name: str = "Syncd_Test_Dupes"
    ) -> None: ...
    def add_validation_rule(
        self, obj: str, field: str, pattern: str, message: str, name: str = "Syncd_Test_Rule"
    ) -> None: ...
    def api_usage(self) -> tuple[int, int]: ...
    def calls(self) -> dict[str, int]: ...
    def clear_rules(self) -> None: ...
    def convert_lead(
        self,
        lead_id: str,
        *,
        account_id: str | None = None,
        create_opportunity: bool = True,
        opportunity_name: str | None = None,
    ) -> dict[str, str | None]: ...
    def delete(self, obj: str, id_: str) -> None: ...
    def fail_at_call(self, n: int, status: int) -> None: ...
    def fail_next(self, status: int, count: int = 1, path_contains: str | None = None) -> None: ...
    def get(self, obj: str, id_: str) -> dict[str, Any] | None: ...
    def land_then_drop(
        self, path_contains: str | None = None, count: int = 1, method: str | None = None
    ) -> None: ...
    def limit_refusals(self) -> dict[str, int]: ...
    def records(self, obj: str, *, include_deleted: bool = True) -> list[dict[str, Any]]: ...
    def set_read_only(self, obj: str, field: str) -> None: ...
    def set_required(self, obj: str, field: str) -> None: ...
    def statuses(self) -> dict[int, int]: ...
    def update(self, obj: str, id_: str, fields: dict[str, Any]) -> None: ...


_SIMPLE = {
    "reset_calls": ("reset_calls", ()),
    "expire_tokens": ("expire_tokens", ()),
    "token_ttl": ("set_token_ttl", ("seconds",)),
    "client_secret": ("set_client_secret", ("secret",)),
    "jwt": ("set_jwt", ("certificate", "users")),
    "seed": ("seed_leads", ("leads",)),
    "latency": ("set_latency", ("ms",)),
    "daily_limit": ("set_daily_limit", ("limit",)),
    "concurrent_limit": ("set_concurrent_limit", ("limit",)),
    "drop_field": ("drop_field", ("object", "field")),
    "read_only_field": ("make_read_only", ("object", "field")),
    "not_unique_field": ("make_not_unique", ("object", "field")),
    "reset_access": ("reset_access", ()),
    "relabel_stage": ("relabel_stage", ("api_name", "label")),
    "commit_lag": ("lag_commits", ("seconds", "count")),
}
"""Control endpoints that call one knob with arguments taken from the JSON body."""
_CONVERT_OPTIONS = {"account_id", "create_opportunity", "opportunity_name"}


def control(emulator: Controlled, request: Request) -> Answer:
    """Answer one control call."""
    parts = [unquote(p) for p in request.path.split("/")[2:] if p]
    method, body = request.method, request.json() or {}
    head = parts[0] if parts else ""
    if (method, head) == ("GET", "calls"):
        return Answer(200, emulator.calls())
    if (method, head) == ("GET", "statuses"):
        return Answer(200, {str(k): v for k, v in sorted(emulator.statuses().items())})
    if (method, head) == ("GET", "limit_refusals"):
        return Answer(200, emulator.limit_refusals())
    if (method, head) == ("GET", "usage"):
        used, limit = emulator.api_usage()
        return Answer(200, {"used": used, "limit": limit})
    if method == "POST" and head in _SIMPLE:
        name, arguments = _SIMPLE[head]
        getattr(emulator, name)(*(body[k] for k in arguments if k in body))
        return Answer(200, {})
    if (method, head) == ("POST", "fail"):
        if body.get("at_call"):
            emulator.fail_at_call(int(body["at_call"]), int(body["status"]))
        else:
            count = int(body.get("count", 1))
            emulator.fail_next(int(body["status"]), count, body.get("path_contains"))
        return Answer(200, {})
    if (method, head) == ("POST", "land_then_drop"):
        emulator.land_then_drop(
            body.get("path_contains"), int(body.get("count", 1)), body.get("method")
        )
        return Answer(200, {})
    if head == "rules" and method in ("POST", "DELETE"):
        _rules(emulator, body if method == "POST" else None)
        return Answer(200, {})
    if (method, head) == ("POST", "convert") and len(parts) == 2:
        unknown = set(body) - _CONVERT_OPTIONS
        if unknown:
            raise ValueError(f"unknown conversion options: {', '.join(sorted(unknown))}")
        return Answer(200, emulator.convert_lead(parts[1], **body))
    if head == "records" and len(parts) in (2, 3):
        return _records(emulator, method, parts[1], parts[2:], body)
    return fault(404, "NOT_FOUND", f"no control endpoint {method} {request.path}")


def _rules(emulator: Controlled, body: dict[str, Any] | None) -> None:
    """Add the org rules in ``body``; None clears them all."""
    if body is None:
        emulator.clear_rules()
        return
    for rule in body.get("validation") or []:
        emulator.add_validation_rule(
            rule["object"], rule["field"], rule.get("pattern", ""), rule["message"]
        )
    for rule in body.get("duplicate") or []:
        emulator.add_duplicate_rule(
            rule["object"], list(rule["fields"]), rule.get("action", "alert")
        )
    for obj, field in body.get("read_only") or []:
        emulator.set_read_only(obj, field)
    for obj, field in body.get("required") or []:
        emulator.set_required(obj, field)


def _records(emulator: Controlled, method: str, obj: str, rest: list[str], body: Any) -> Answer:
    if method == "GET" and not rest:
        return Answer(200, emulator.records(obj))
    if method == "POST" and not rest and isinstance(body, list):
        # many records in one control call (the benchmark's activity history); the
        # emulator's own seeding, not a Salesforce API
        return Answer(201, {"ids": [emulator.add(obj, fields) for fields in body]})
    if method == "POST" and not rest:
        return Answer(201, {"id": emulator.add(obj, body)})
    if method == "GET":
        found = emulator.get(obj, rest[0])
        return Answer(200, found) if found else fault(404, "NOT_FOUND", rest[0])
    if method == "PATCH":
        emulator.update(obj, rest[0], body)
    elif method == "DELETE":
        emulator.delete(obj, rest[0])
    else:
        return fault(405, "METHOD_NOT_ALLOWED", method)
    return Answer(200, {"id": rest[0]})


_FIRST = (
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Claude",
    "Radia",
    "Ken",
    "Margaret",
    "John",
    "Hedy",
    "Tim",
    "Sophie",
)
_LAST = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Johnson",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Shannon",
    "Perlman",
    "Thompson",
    "Hamilton",
    "McCarthy",
    "Lamarr",
    "Berners-Lee",
    "Wilson",
    "O'Neil",
)
_COMPANIES = (
    "Analytical Engines",
    "Navy Labs",
    "Bletchley Park",
    "NASA Langley",
    "Acme",
    "Initech",
    "Globex",
    "Umbrella",
    "Stark Industries",
    "Wayne Enterprises",
)
_TITLES = ("CTO", "VP Engineering", "Data Analyst", "Head of Marketing", None, "Founder")


def synthetic_leads(store: Store, n: int) -> list[dict[str, Any]]:
    """``n`` realistic leads with unique emails, stamped in import batches of 200."""
    rows: list[dict[str, Any]] = []
    blank = dict.fromkeys(OBJECTS["Lead"].fields)
    stamp = ""
    with store.lock:
        base = store.numbers.get("00Q", 0)
        for i in range(n):
            if i % 200 == 0:
                stamp = store.tick()
            first, last = _FIRST[i % len(_FIRST)], _LAST[(i // 7) % len(_LAST)]
            row = dict(blank)
            row.update(
                Id=store.next_id("00Q"),
                FirstName=first,
                LastName=last,
                Email=f"{first}.{last}.{base + i}@example.com".lower().replace("'", ""),
                Company=_COMPANIES[(i // 3) % len(_COMPANIES)],
                Title=_TITLES[i % len(_TITLES)],
                Phone=f"+1 555 {base + i:07d}",
                LeadSource=LEAD_SOURCES[i % 5],
                Status=LEAD_STATUSES[(i // 11) % 5],
                Lead_Score__c=float(i % 100),
                IsConverted=False,
                IsDeleted=False,
                CreatedDate=stamp,
                LastModifiedDate=stamp,
                SystemModstamp=stamp,
            )
            rows.append(row)
    return rows
