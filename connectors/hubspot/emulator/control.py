"""The emulator's control API (``/_emulator/...``, no token) and its synthetic contacts.

GET    /_emulator/calls             per-endpoint call counts
GET    /_emulator/statuses          API answers by HTTP status since the start: {"200": n, "429": n}
POST   /_emulator/reset_calls
POST   /_emulator/seed              {"contacts": n, "companies": n, "deals": n,
                                     "same_instant": false}
POST   /_emulator/fail              {"status": 503, "count": 1, "path_contains": "search",
                                     "retry_after": 1} or {"status": 500, "at_call": n}
POST   /_emulator/latency           {"ms": 50}
POST   /_emulator/property          {"object_type": "contacts", "name": "x", "drop": true}
                                    or {..., "unique": false, "read_only": true}
POST   /_emulator/search_cap        {"cap": 100}
POST   /_emulator/multi_status      {"endpoints": ["create", "update", "upsert",
                                     "associations"]}: the batch writes answering 207
POST   /_emulator/search_lag        {"ms": 2000}: later writes reach search that late
POST   /_emulator/seed_archived     {"contacts": n}: n contacts archived already
POST   /_emulator/rate_limit        {"max": 100, "interval_ms": 10000, "daily": null,
                                     "search_max": 5, "search_interval_ms": 1000}
POST   /_emulator/token_ttl         {"seconds": 1800}: life of OAuth tokens issued from now
POST   /_emulator/expire_tokens     every OAuth access token issued so far expires now
                                    ({"at_call": n}: just before the n-th API call)
POST   /_emulator/expire_static_token  {"in_seconds": 0}: the service key / private app token
POST   /_emulator/revoke_refresh_token  the OAuth app's refresh token stops working
GET    /_emulator/contacts          every live contact
POST   /_emulator/contacts          {properties} (or {"properties": {...}}): add as a user
GET    /_emulator/contacts/{id}
PATCH  /_emulator/contacts/{id}     {properties}: edit as a user
DELETE /_emulator/contacts/{id}     archive
... and the same under /_emulator/companies and /_emulator/deals
POST   /_emulator/associations      {"from_type": "deals", "from_id": "9000001",
                                     "to_type": "contacts", "to_id": "1001", "type_id": null}
GET    /_emulator/associations/{from_type}/{from_id}/{to_type}   {"results": [ids]}
"""

from __future__ import annotations

import json
import random
from typing import Any, Protocol

from connectors.hubspot.emulator.gate import Reply
from connectors.hubspot.emulator.schema import (
    LEAD_SOURCES,
    LEAD_STATUSES,
    LIFECYCLE_STAGES,
    error_body,
)
from connectors.hubspot.emulator.store import ObjectStore


class Controlled(Protocol):
    """What the control API drives of the emulator (``server.HubSpotEmulator`` has it):
    a protocol, because the emulator routes ``/_emulator/`` requests here."""

    def add_object(self, object_type: str, properties: dict[str, Any]) -> str: ...
    def archive_object(self, object_type: str, record_id: str) -> None: ...
    def associate(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        type_id: int | None = None,
    ) -> None: ...
    def associations(self, from_type: str, from_id: str, to_type: str) -> list[str]: ...
    def calls(self) -> dict[str, int]: ...
    def change_property(
        self,
        object_type: str,
        name: str,
        *,
        drop: bool = False,
        unique: bool | None = None,
        read_only: bool | None = None,
    ) -> None: ...
    def expire_static_token(self, in_seconds: float = 0.0) -> None: ...
    def expire_tokens(self, at_call: int | None = None) -> None: ...
    def fail_at_call(self, n: int, status: int) -> None: ...
    def fail_next(
        self, status: int, count: int = 1, path_contains: str | None = None, retry_after: float = 1
    ) -> None: ...
    def get_object(self, object_type: str, record_id: str) -> dict[str, Any] | None: ...
    def objects(self, object_type: str) -> list[dict[str, Any]]: ...
    def reset_calls(self) -> None: ...
    def revoke_refresh_token(self) -> None: ...
    def seed_archived_contacts(self, n: int) -> list[str]: ...
    def seed_companies(self, n: int, *, same_instant: bool = False) -> list[str]: ...
    def seed_contacts(self, n: int, *, same_instant: bool = False) -> list[str]: ...
    def seed_deals(
        self, n: int, *, same_instant: bool = False, pipeline: str | None = None
    ) -> list[str]: ...
    def set_latency(self, ms: int) -> None: ...
    def set_multi_status(self, *endpoints: str) -> None: ...
    def set_rate_limit(
        self,
        rate_limit: tuple[int, int] | None,
        daily_limit: int | None = None,
        search_rate_limit: tuple[int, int] | None = None,
    ) -> None: ...
    def set_search_cap(self, n: int) -> None: ...
    def set_search_lag(self, ms: int) -> None: ...
    def set_token_ttl(self, seconds: float) -> None: ...
    def statuses(self) -> dict[int, int]: ...
    @property
    def stores(self) -> dict[str, ObjectStore]: ...
    def update_object(
        self, object_type: str, record_id: str, properties: dict[str, Any]
    ) -> dict[str, Any]: ...


FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Margaret",
    "Linus", "Radia", "Ken", "Frances", "John", "Hedy", "Tim", "Sophie", "Niklaus", "Lynn",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Hamilton",
    "Torvalds", "Perlman", "Thompson", "Allen", "McCarthy", "Lamarr", "Berners-Lee", "Wilson",
)  # fmt: skip
COMPANIES = (
    "Analytical Engines", "Bletchley Park", "Acme Corp", "Globex", "Initech", "Umbrella",
    "Stark Industries", "Wayne Enterprises", "Hooli", "Vandelay Industries",
)  # fmt: skip
TITLES = ("CTO", "VP Marketing", "Engineer", "Analyst", "Head of Sales", "CEO", "Consultant")
DOMAINS = ("example.com", "example.org", "example.net")


def synthetic_contact(contact_id: int, rng: random.Random) -> dict[str, str]:
    """Plausible properties for a seeded contact (its email is unique through the id)."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    props = {
        "email": f"{first}.{last}.{contact_id}@{rng.choice(DOMAINS)}".lower().replace(" ", ""),
        "firstname": first,
        "lastname": last,
        "company": rng.choice(COMPANIES),
        "jobtitle": rng.choice(TITLES),
        "phone": f"+1 555 {rng.randrange(1000, 9999)} {rng.randrange(100, 999)}",
        "lifecyclestage": rng.choice(LIFECYCLE_STAGES[:4]),
        "lead_source": rng.choice(LEAD_SOURCES),
        "hubspotscore": str(rng.randrange(0, 100)),
    }
    if rng.random() < 0.5:
        props["hs_lead_status"] = rng.choice(LEAD_STATUSES)
    return props


def control(emulator: Controlled, method: str, path: str, raw: bytes) -> Reply:
    """Answer one control request."""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return 400, error_body("VALIDATION_ERROR", "Invalid JSON"), {}
    if not isinstance(body, dict):
        return 400, error_body("VALIDATION_ERROR", "Expected a JSON object"), {}
    try:
        return _dispatch(emulator, method, path.removeprefix("/_emulator/"), body)
    except KeyError as exc:
        return 404, error_body("OBJECT_NOT_FOUND", str(exc)), {}
    except (ValueError, TypeError) as exc:
        return 400, error_body("VALIDATION_ERROR", str(exc)), {}


def _dispatch(emulator: Controlled, method: str, action: str, body: dict[str, Any]) -> Reply:
    ok: Reply = (200, {"ok": True}, {})
    if (method, action) == ("GET", "calls"):
        return 200, emulator.calls(), {}
    if (method, action) == ("GET", "statuses"):
        return 200, {str(k): v for k, v in sorted(emulator.statuses().items())}, {}
    if (method, action) == ("POST", "reset_calls"):
        emulator.reset_calls()
        return ok
    if (method, action) == ("POST", "seed"):
        same_instant = bool(body.get("same_instant"))
        others = {
            "companies": emulator.seed_companies,
            "deals": emulator.seed_deals,
        }
        if "contacts" not in body and not any(k in body for k in others):
            raise KeyError("contacts")
        ids = emulator.seed_contacts(int(body.get("contacts") or 0), same_instant=same_instant)
        answer: dict[str, Any] = _seeded(ids)
        for name, seed in others.items():
            if name in body:
                answer[name] = _seeded(seed(int(body[name]), same_instant=same_instant))
        return 200, answer, {}
    if (method, action) == ("POST", "fail"):
        if body.get("at_call") is not None:
            emulator.fail_at_call(int(body["at_call"]), int(body["status"]))
        else:
            emulator.fail_next(
                int(body["status"]),
                int(body.get("count", 1)),
                body.get("path_contains"),
                float(body.get("retry_after", 1)),
            )
        return ok
    if (method, action) == ("POST", "property"):
        emulator.change_property(
            str(body["object_type"]),
            str(body["name"]),
            drop=bool(body.get("drop")),
            unique=body.get("unique"),
            read_only=body.get("read_only"),
        )
        return ok
    if (method, action) == ("POST", "latency"):
        emulator.set_latency(int(body["ms"]))
        return ok
    if (method, action) == ("POST", "multi_status"):
        emulator.set_multi_status(*(str(e) for e in body.get("endpoints") or []))
        return ok
    if (method, action) == ("POST", "search_lag"):
        emulator.set_search_lag(int(body["ms"]))
        return ok
    if (method, action) == ("POST", "seed_archived"):
        return 200, _seeded(emulator.seed_archived_contacts(int(body["contacts"]))), {}
    if (method, action) == ("POST", "search_cap"):
        emulator.set_search_cap(int(body["cap"]))
        return ok
    if (method, action) == ("POST", "rate_limit"):
        limit, interval = body.get("max"), int(body.get("interval_ms", 10_000))
        search = body.get("search_max")
        emulator.set_rate_limit(
            (int(limit), interval) if limit else None,
            int(body["daily"]) if body.get("daily") else None,
            (int(search), int(body.get("search_interval_ms", 1000))) if search else None,
        )
        return ok
    if (method, action) == ("POST", "token_ttl"):
        emulator.set_token_ttl(float(body["seconds"]))
        return ok
    if (method, action) == ("POST", "expire_tokens"):
        at_call = body.get("at_call")
        emulator.expire_tokens(None if at_call is None else int(at_call))
        return ok
    if (method, action) == ("POST", "expire_static_token"):
        emulator.expire_static_token(float(body.get("in_seconds", 0)))
        return ok
    if (method, action) == ("POST", "revoke_refresh_token"):
        emulator.revoke_refresh_token()
        return ok
    if action == "associations" and method == "POST":
        type_id = body.get("type_id")
        emulator.associate(
            str(body["from_type"]),
            str(body["from_id"]),
            str(body["to_type"]),
            str(body["to_id"]),
            None if type_id is None else int(type_id),
        )
        return ok
    if action.startswith("associations/") and method == "GET":
        parts = action.split("/")
        if len(parts) == 4:
            return 200, {"results": emulator.associations(parts[1], parts[2], parts[3])}, {}
    object_type, _, record_id = action.partition("/")
    if object_type in emulator.stores:
        return _records(emulator, method, object_type, record_id, body)
    return 404, error_body("OBJECT_NOT_FOUND", f"No control route {method} /_emulator/{action}"), {}


def _seeded(ids: list[str]) -> dict[str, Any]:
    return {"count": len(ids), "first": ids[0] if ids else None, "last": ids[-1] if ids else None}


def _records(
    emulator: Controlled, method: str, object_type: str, record_id: str, body: dict[str, Any]
) -> Reply:
    """The records of one type: list, add, get, edit, archive as a user would."""
    if not record_id:
        if method == "GET":
            return 200, {"results": emulator.objects(object_type)}, {}
        if method == "POST":
            new_id = emulator.add_object(object_type, body.get("properties", body))
            return 201, emulator.get_object(object_type, new_id), {}
    elif "/" not in record_id:
        if method == "GET":
            found = emulator.get_object(object_type, record_id)
            if found is None:
                singular = emulator.stores[object_type].schema.singular
                raise KeyError(f"no {singular} {record_id}")
            return 200, found, {}
        if method == "PATCH":
            properties = body.get("properties", body)
            return 200, emulator.update_object(object_type, record_id, properties), {}
        if method == "DELETE":
            emulator.archive_object(object_type, record_id)
            return 204, None, {}
    action = f"{object_type}/{record_id}" if record_id else object_type
    return 404, error_body("OBJECT_NOT_FOUND", f"No control route {method} /_emulator/{action}"), {}
