"""A HubSpot CRM emulator (contacts, companies, deals, deal pipelines, v4 associations):
a real HTTP server on loopback, data in memory.

    emulator = HubSpotEmulator(rate_limit=(100, 10_000)).start()
    HubSpot(access_token=emulator.token, host=emulator.url)   # the official client
    ...
    emulator.stop()

Paths, JSON shapes and status codes follow the real API as far as the official client
parses them (201 for batch create, 207 multi-status, 204 for archive, 429 with
Retry-After). One bad input refuses a whole batch update, upsert or v4 association
create (400/404/409, nothing written); only batch create with a trace id on every input,
and batch reads, answer 207 per input (``emulator_store.MULTI_STATUS`` cites the
references; ``set_multi_status`` switches an endpoint).
Knobs are methods here and, for another process, an HTTP control API under
``/_emulator/`` that needs no token. ``python -m connectors.hubspot.emulator --port 0
--seed-contacts N`` serves in the foreground and prints its URL first; ``--limits
published`` enforces HubSpot's published rate limits (``emulator_gate`` cites them).

Objects: ``/crm/v3/objects/{contacts|companies|deals}`` (list, search, batch
read/create/update/upsert/archive, one by id), ``/crm/v3/properties/{type}``,
``/crm/v3/pipelines/deals[/{pipelineId}]`` and
``/crm/v4/associations/{from}/{to}/batch/{create|read|archive}``.

Authentication (``connectors.hubspot.emulator.auth``): the static ``token`` (a service key or
private app token), and an OAuth app (``client_id``, ``client_secret``, ``refresh_token``)
whose access tokens, fetched at ``/oauth/v1/token`` or ``/oauth/2026-03/token``, expire
after ``token_ttl`` seconds on ``clock``.

What the scans cannot see, modelled for the tests about it (sources in the methods'
docstrings): search indexing lag (``set_search_lag``, off by default), archived
records at scale (``seed_archived_contacts``; search never returns them), and
associations that change without moving a record's modified date (``associate``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from connectors.hubspot.emulator.associations import DEFAULT_TYPES, Associations, type_ids
from connectors.hubspot.emulator.auth import DEFAULT_TTL, TOKEN_PATHS, Tokens
from connectors.hubspot.emulator.control import control, synthetic_contact
from connectors.hubspot.emulator.crm import (
    COMPANIES,
    DEALS,
    DEFAULT_PIPELINE,
    check_deal,
    pipelines_answer,
    synthetic_company,
    synthetic_deal,
)
from connectors.hubspot.emulator.gate import Gate, Reply, parse_rate, published_limits
from connectors.hubspot.emulator.schema import CONTACTS as CONTACT_SCHEMA
from connectors.hubspot.emulator.schema import Problem, check_values, error_body
from connectors.hubspot.emulator.search import list_page, property_names, search
from connectors.hubspot.emulator.store import Answer, ContactStore, ObjectStore, Record

OBJECTS = "/crm/v3/objects"
CONTACTS = f"{OBJECTS}/contacts"
SEARCH = f"POST {CONTACTS}/search"
"""The contacts search call's label; every type's search meets the search rate limit."""
OBJECT_TYPES = ("contacts", "companies", "deals")
_TYPES = "|".join(OBJECT_TYPES)
_ID_PATH = re.compile("^" + re.escape(OBJECTS) + rf"/({_TYPES})/(?!search$)[^/]+$")
_SEARCH_PATH = re.compile("^" + re.escape(OBJECTS) + rf"/({_TYPES})/search$")
_ID_LABELS = {s.name: s.id_label() for s in (CONTACT_SCHEMA, COMPANIES, DEALS)}
"""How call counts name one record's path parameter: contacts -> ``{contactId}``."""
_ASSOCIATIONS = re.compile(r"^/crm/v4/associations/([^/]+)/([^/]+)/batch/([^/]+)$")
_PIPELINES = re.compile(r"^/crm/v3/pipelines/([^/]+)(?:/([^/]+))?$")


class HubSpotEmulator:
    """The emulated portal; thread-safe under one lock (``store.lock``).

    ``rate_limit`` is (max calls, interval ms) for every call but search, which has
    ``search_rate_limit``; ``daily_limit`` counts every call. ``limits="published"`` enforces
    HubSpot's published limits for a private app on ``tier`` (190 per 10 s, search 5 per
    second, 1,000,000 a day on Enterprise or 650,000 on Professional; sources in
    ``emulator_gate``); a limit given explicitly overrides its published value.
    ``search_cap`` is how far a search may page (HubSpot: 10,000).
    ``lifecycle_backward`` is what an API write moving lifecyclestage backwards meets:
    "keep" (the old stage stays, silently; the rest lands) or "refuse" (a 400), as
    reports about the real API differ.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        token: str = "emulator-token",
        latency_ms: int = 0,
        rate_limit: tuple[int, int] | None = None,
        daily_limit: int | None = None,
        search_cap: int = 10_000,
        search_rate_limit: tuple[int, int] | None = None,
        limits: str | None = None,
        tier: str = "enterprise",
        host: str = "127.0.0.1",
        lifecycle_backward: str = "keep",
        token_ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token, self.host, self.url = token, host, ""
        self.tokens = Tokens(token, ttl=token_ttl, clock=clock)
        """Accepted tokens; the OAuth app is ``tokens.client_id`` etc. (``clock``: expiry only)."""
        self.latency_ms = latency_ms
        self.search_cap = search_cap
        if limits not in (None, "none", "published"):
            raise ValueError(f"limits {limits!r}: 'published' or None")
        if limits == "published":
            published = published_limits(tier)
            rate_limit = rate_limit or published.rate
            search_rate_limit = search_rate_limit or published.search_rate
            daily_limit = daily_limit if daily_limit is not None else published.daily
        self.gate = Gate(rate_limit, daily_limit, search_rate_limit)
        """Call counts, injected failures and rate limits (``gate.rate_limit`` etc. may be set)."""
        self.store = ContactStore()
        self.store.refuse_backward = lifecycle_backward == "refuse"
        self._lock = self.store.lock
        self.stores: dict[str, ObjectStore] = {
            "contacts": self.store,
            "companies": ObjectStore(COMPANIES, lock=self._lock, first_id=5_000_001),
            "deals": ObjectStore(DEALS, lock=self._lock, first_id=9_000_001, check=check_deal),
        }
        """One store per object type, sharing the contacts store's lock."""
        self.links = Associations(self.stores)
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> HubSpotEmulator:
        server = _Server((self.host, self._port), _Handler)
        server.emulator, server.connections = self, set()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.url = f"http://{self.host}:{server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HubSpotEmulator:
        return self if self._server else self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- knobs ------------------------------------------------------------------------

    def fail_next(
        self, status: int, count: int = 1, path_contains: str | None = None, retry_after: float = 1
    ) -> None:
        """Answer the next ``count`` API calls (whose "METHOD path" contains
        ``path_contains``) with ``status`` and a realistic body."""
        with self._lock:
            self.gate.fail_next(status, count, path_contains, retry_after)

    def fail_at_call(self, n: int, status: int) -> None:
        """Answer the ``n``-th API call (counted from start or ``reset_calls``) with ``status``."""
        with self._lock:
            self.gate.fail_at[n] = status

    def calls(self) -> dict[str, int]:
        """API calls received, by "METHOD path" (control calls are not counted)."""
        with self._lock:
            return dict(self.gate.calls)

    def reset_calls(self) -> None:
        with self._lock:
            self.gate.reset()

    def statuses(self) -> dict[int, int]:
        """API answers by HTTP status since the start (control calls are not counted)."""
        with self._lock:
            return dict(self.gate.statuses)

    def set_multi_status(self, *endpoints: str) -> None:
        """The batch writes that answer 207 per input instead of refusing the batch:
        any of "create", "update", "upsert" (objects, inputs with trace ids) and
        "associations" (v4 create). Default: "create" only."""
        unknown = set(endpoints) - {"create", "update", "upsert", "associations"}
        if unknown:
            raise ValueError(f"no batch endpoint {sorted(unknown)}")
        with self._lock:
            for store in self.stores.values():
                store.multi_status = frozenset(endpoints) - {"associations"}
            self.links.multi_status = "associations" in endpoints

    def set_search_cap(self, n: int) -> None:
        """Refuse searches paging past ``n`` results (HubSpot: 10,000)."""
        self.search_cap = n

    def set_latency(self, ms: int) -> None:
        """Delay every API answer by ``ms``."""
        self.latency_ms = ms

    def set_rate_limit(
        self,
        rate_limit: tuple[int, int] | None,
        daily_limit: int | None = None,
        search_rate_limit: tuple[int, int] | None = None,
    ) -> None:
        """(max calls, interval ms) for non-search calls, a daily cap, and search's own."""
        with self._lock:
            self.gate.rate_limit, self.gate.daily_limit = rate_limit, daily_limit
            self.gate.search_rate_limit = search_rate_limit

    def change_property(
        self,
        object_type: str,
        name: str,
        *,
        drop: bool = False,
        unique: bool | None = None,
        read_only: bool | None = None,
    ) -> None:
        """Change the portal's schema as an admin would: delete a property (``drop``: gone
        from the properties API, and writes naming it are refused), or set its
        ``hasUniqueValue`` / ``modificationMetadata.readOnlyValue``."""
        store = self._store(object_type)
        with self._lock:
            properties = dict(store.schema.properties)
            if drop:
                properties.pop(name)
            else:
                found = properties[name]
                properties[name] = dataclasses.replace(
                    found,
                    unique=found.unique if unique is None else unique,
                    read_only=found.read_only if read_only is None else read_only,
                )
            store.set_schema(dataclasses.replace(store.schema, properties=properties))

    @property
    def client_id(self) -> str:
        return self.tokens.client_id

    @property
    def client_secret(self) -> str:
        return self.tokens.client_secret

    @property
    def refresh_token(self) -> str:
        return self.tokens.refresh_token

    def set_token_ttl(self, seconds: float) -> None:
        """OAuth access tokens issued from now on live ``seconds`` (HubSpot: 1800)."""
        with self._lock:
            self.tokens.ttl = seconds

    def expire_tokens(self, at_call: int | None = None) -> None:
        """Every OAuth access token issued so far expires now, or just before the
        ``at_call``-th API call (counted like ``fail_at_call``)."""
        with self._lock:
            if at_call is None:
                self.tokens.expire_issued()
            else:
                self.tokens.expire_at_calls.add(at_call)

    def expire_static_token(self, in_seconds: float = 0.0) -> None:
        """The static token (service key, private app token) expires in ``in_seconds``."""
        with self._lock:
            self.tokens.expire_static(self.token, in_seconds)

    def revoke_refresh_token(self) -> None:
        """The OAuth app's refresh token stops working (the app was uninstalled)."""
        with self._lock:
            self.tokens.refresh_token = "revoked-" + self.tokens.refresh_token

    def set_search_lag(self, ms: int) -> None:
        """Search indexing lag: writes from now on (every type, API or control) become
        visible to search ``ms`` later; reads by id, batch reads and lists see them at once.
        Until then a new record is not found at all and an edited one is found where its
        previous modified date put it (with its current values: how stale real search
        results are is not confirmed). 0 (the default): search sees every write at once.

        The real API: search "may take a few moments" to show a write (HubSpot's search
        guide, https://developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm);
        Okta's HubSpot connector advises waiting 10 s after a create and 60 s after an
        update (https://help.okta.com/wf/en-us/content/Topics/Workflows/connector-reference/hubspotcrm/actions/searchcontacts.htm);
        other sync tools lost records this way (https://github.com/supaglue-labs/supaglue/issues/665).
        Not confirmed: an upper bound on the lag.
        """
        with self._lock:
            for store in self.stores.values():
                store.search_lag_ms = max(0, int(ms))

    def seed_archived_contacts(self, n: int) -> list[str]:
        """Add ``n`` synthetic contacts that are archived already (cheaply: no search
        index, no email index), for the deletion-cost benchmark.

        The real archived list (``GET /crm/v3/objects/contacts?archived=true``) pages by
        ``after`` in id order, and search never returns archived records (Okta's connector
        reference above: "Archived HubSpot CRM objects don't appear in search results";
        https://github.com/supaglue-labs/supaglue/pull/494, https://github.com/airbytehq/airbyte/issues/35017),
        so a client finds recent archives only by reading the whole list or by asking
        about ids it knows (batch read: archived ids answer 207 "may be deleted",
        https://github.com/HubSpot/hubspot-api-php/issues/619). Not confirmed: that the
        real list is ordered by id (it is undocumented); how long archived records stay
        listed (HubSpot's UI restores deletions for 90 days).
        """
        store = self.stores["contacts"]
        with self._lock:
            ms = store.tick()
            rng = random.Random(store.next_id)
            ids = []
            for _ in range(n):
                record = Record(store.reserve_id(), {}, ms, store.schema)
                record.props = synthetic_contact(record.id, rng)
                record.archived_ms, record.search_ms = ms, None
                store.archived[record.id] = record
                ids.append(str(record.id))
            return ids

    def seed_contacts(self, n: int, *, same_instant: bool = False) -> list[str]:
        """Add ``n`` synthetic contacts at once; ``same_instant`` gives them one timestamp."""
        return self._seed("contacts", n, same_instant, synthetic_contact)

    def seed_companies(self, n: int, *, same_instant: bool = False) -> list[str]:
        """Add ``n`` synthetic companies at once (unique names and domains)."""
        return self._seed("companies", n, same_instant, synthetic_company)

    def seed_deals(
        self, n: int, *, same_instant: bool = False, pipeline: str | None = None
    ) -> list[str]:
        """Add ``n`` synthetic deals at once, each in a stage of its pipeline (or of
        ``pipeline``)."""
        return self._seed("deals", n, same_instant, partial(synthetic_deal, pipeline_id=pipeline))

    def seed_sales(self, people: int, companies: int, deals: int) -> None:
        """A sales database: contacts, companies and default-pipeline deals, each deal
        associated with one company and one contact (spread evenly over both)."""
        contacts = self.seed_contacts(people)
        firms = self.seed_companies(companies)
        sold = self.seed_deals(deals, pipeline=DEFAULT_PIPELINE)
        with self._lock:
            for index, deal in enumerate(sold):
                for to_type, ids in (("companies", firms), ("contacts", contacts)):
                    if ids:
                        target = ids[index * len(ids) // len(sold)]
                        pair = ("deals", to_type)
                        self.links.add(
                            "deals", int(deal), to_type, int(target), DEFAULT_TYPES[pair]
                        )

    def _seed(
        self,
        object_type: str,
        n: int,
        same_instant: bool,
        factory: Callable[[int, random.Random], dict[str, str]],
    ) -> list[str]:
        store = self._store(object_type)
        with self._lock:
            first = max(store.last_ms + 1, _now() - (0 if same_instant else n))
            stamps = [first] * n if same_instant else list(range(first, first + n))
            store.last_ms = max(store.last_ms, stamps[-1] if stamps else 0)
            rng = random.Random(store.next_id)
            return [str(store.insert(factory(store.next_id, rng), ms).id) for ms in stamps]

    # Records as a user edits them in HubSpot, for any type, and by name per type.

    def add_object(self, object_type: str, properties: dict[str, Any]) -> str:
        """Create a record as a user would in HubSpot; return its id."""
        store = self._store(object_type)
        with self._lock:
            props = self._checked(store, properties, None)
            return str(store.insert(props, store.tick()).id)

    def update_object(
        self, object_type: str, record_id: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        """Edit a record as a user would (the UI may move lifecyclestage backwards)."""
        store = self._store(object_type)
        with self._lock:
            record = self._live(store, record_id)
            props = self._checked(store, properties, record)
            store.modify(record, props, store.tick(), api=False)
            return record.to_json(store.schema.properties)

    def archive_object(self, object_type: str, record_id: str) -> None:
        store = self._store(object_type)
        with self._lock:
            store.archive(self._live(store, record_id), store.tick())

    def get_object(self, object_type: str, record_id: str) -> dict[str, Any] | None:
        """A record (archived ones too) with every property, or None."""
        store = self._store(object_type)
        with self._lock:
            key = int(record_id) if str(record_id).isdigit() else -1
            record = store.live.get(key) or store.archived.get(key)
            return record.to_json(store.schema.properties) if record else None

    def objects(self, object_type: str) -> list[dict[str, Any]]:
        """Every live record of a type with every property, by id."""
        store = self._store(object_type)
        with self._lock:
            return [r.to_json(store.schema.properties) for r in store.live.values()]

    def add_contact(self, properties: dict[str, Any]) -> str:
        """Create a contact as a user would in HubSpot; return its id."""
        return self.add_object("contacts", properties)

    def update_contact(self, contact_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        """Edit a contact as a user would (the UI may move lifecyclestage backwards)."""
        return self.update_object("contacts", contact_id, properties)

    def archive_contact(self, contact_id: str) -> None:
        self.archive_object("contacts", contact_id)

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        """A contact (archived ones too) with every property, or None."""
        return self.get_object("contacts", contact_id)

    def contacts(self) -> list[dict[str, Any]]:
        """Every live contact with every property, by id."""
        return self.objects("contacts")

    def add_company(self, properties: dict[str, Any]) -> str:
        return self.add_object("companies", properties)

    def update_company(self, company_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        return self.update_object("companies", company_id, properties)

    def archive_company(self, company_id: str) -> None:
        self.archive_object("companies", company_id)

    def get_company(self, company_id: str) -> dict[str, Any] | None:
        return self.get_object("companies", company_id)

    def companies(self) -> list[dict[str, Any]]:
        return self.objects("companies")

    def add_deal(self, properties: dict[str, Any]) -> str:
        """Create a deal (its stage must be one of its pipeline's; pipeline: "default")."""
        return self.add_object("deals", properties)

    def update_deal(self, deal_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        return self.update_object("deals", deal_id, properties)

    def archive_deal(self, deal_id: str) -> None:
        self.archive_object("deals", deal_id)

    def get_deal(self, deal_id: str) -> dict[str, Any] | None:
        return self.get_object("deals", deal_id)

    def deals(self) -> list[dict[str, Any]]:
        return self.objects("deals")

    def associate(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        type_id: int | None = None,
    ) -> None:
        """Associate two live records (default unlabeled type unless ``type_id``), both ways."""
        with self._lock:
            source = self._live(self._store(from_type), from_id)
            target = self._live(self._store(to_type), to_id)
            allowed = type_ids(from_type, to_type)
            chosen = DEFAULT_TYPES.get((from_type, to_type)) if type_id is None else type_id
            if chosen not in allowed:
                raise ValueError(f"no association type {chosen} from {from_type} to {to_type}")
            assert chosen is not None
            self.links.add(from_type, source.id, to_type, target.id, chosen)

    def associations(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        """Ids of the live ``to_type`` records associated with one record, ascending."""
        self._store(to_type)
        with self._lock:
            record = self._live(self._store(from_type), from_id)
            return [str(i) for i in self.links.of(from_type, record.id, to_type)]

    def _store(self, object_type: str) -> ObjectStore:
        store = self.stores.get(object_type)
        if store is None:
            raise KeyError(f"no object type {object_type}")
        return store

    def _live(self, store: ObjectStore, record_id: str) -> Record:
        record = store.find(str(record_id))
        if record is None:
            raise KeyError(f"no live {store.schema.singular} {record_id}")
        return record

    def _checked(
        self, store: ObjectStore, properties: dict[str, Any], record: Record | None
    ) -> dict[str, str]:
        # a user's edit may come from a form, where HubSpot sets no length limit
        props, problem = check_values(properties, store.schema, limit=None)
        if problem is None and store.check is not None:  # not the API's lifecycle rule
            problem = store.check(None if record is None else record.props, props)
        problem = problem or store.conflict(props, record.id if record else -1, {})
        if problem:
            raise ValueError(problem.message)
        return props

    # -- requests ---------------------------------------------------------------------

    def handle(self, method: str, target: str, authorization: str | None, raw: bytes) -> Reply:
        """Answer one HTTP request: (status, JSON body or None, extra headers)."""
        parts = urlsplit(target)
        path, params = parts.path.rstrip("/") or "/", parse_qs(parts.query)
        if path.startswith("/_emulator/"):
            return control(self, method, path, raw)
        label = f"{method} {_ID_PATH.sub(_id_label, path)}"
        with self._lock:
            ordinal = self.gate.count(label)
            injected = self.gate.injected(label, ordinal)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        if path in TOKEN_PATHS and method == "POST":
            if injected is not None:
                return injected
            with self._lock:
                return (*self.tokens.grant(raw), {})
        with self._lock:
            refused = self.tokens.refuse(authorization, ordinal)
        if refused is not None:
            return (*refused, {})
        if injected is not None:
            return injected
        with self._lock:
            refusal, headers = self.gate.admit(method == "POST" and bool(_SEARCH_PATH.match(path)))
        if refusal is not None:
            return refusal
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, error_body("VALIDATION_ERROR", "Invalid input JSON on line 1"), headers
        status, answer = self._route(method, path, params, body)
        return status, answer, headers

    def _route(self, method: str, path: str, params: dict[str, list[str]], body: Any) -> Answer:
        if path.startswith("/crm/v3/properties/") and method == "GET":
            found = self.stores.get(path.removeprefix("/crm/v3/properties/"))
            if found is not None:
                schema = found.schema
                props = schema.properties.values()
                return 200, {"results": [p.to_json(i, schema.group) for i, p in enumerate(props)]}
        pipelines = _PIPELINES.match(path)
        if pipelines and method == "GET":
            return pipelines_answer(pipelines.group(1), pipelines.group(2))
        associations = _ASSOCIATIONS.match(path)
        if associations and method == "POST":
            from_type, to_type, action = associations.groups()
            with self._lock:
                return self.links.route(from_type, to_type, action, body)
        for object_type, store in self.stores.items():
            base = f"{OBJECTS}/{object_type}"
            if path == base or path.startswith(base + "/"):
                return self._route_objects(store, base, method, path, params, body)
        return 404, error_body("OBJECT_NOT_FOUND", f"No route for {method} {path}")

    def _route_objects(
        self,
        store: ObjectStore,
        base: str,
        method: str,
        path: str,
        params: dict[str, list[str]],
        body: Any,
    ) -> Answer:
        if path == base and method == "GET":
            return list_page(store, params)
        if path == f"{base}/search" and method == "POST":
            return search(store, body, self.search_cap)
        payload = body if isinstance(body, dict) else {}
        if path.startswith(f"{base}/batch/") and method == "POST":
            inputs = payload.get("inputs")
            if not isinstance(inputs, list):
                return 400, error_body("VALIDATION_ERROR", "Invalid input JSON: inputs is required")
            action = path.rsplit("/", 1)[1]
            if action == "read":
                archived = (params.get("archived") or ["false"])[0].lower() == "true"
                return store.batch_read(payload, archived)
            writers = {
                "create": store.batch_create,
                "update": store.batch_update,
                "upsert": store.batch_upsert,
                "archive": store.batch_archive,
            }
            if action in writers:
                return writers[action](inputs)
        if path == base and method == "POST":
            return _single(store.batch_create([payload]), 201)
        match = re.fullmatch(re.escape(base) + r"/([^/]+)", path)
        if match and method in ("GET", "PATCH", "DELETE"):
            return self._one(store, method, unquote(match.group(1)), params, payload)
        return 404, error_body("OBJECT_NOT_FOUND", f"No route for {method} {path}")

    def _one(
        self,
        store: ObjectStore,
        method: str,
        id_text: str,
        params: dict[str, list[str]],
        body: dict[str, Any],
    ) -> Answer:
        id_property = params["idProperty"][0] if params.get("idProperty") else None
        if method == "PATCH":
            return _single(
                store.batch_update([{**body, "id": id_text, "idProperty": id_property}]), 200
            )
        with self._lock:
            contact = store.find(id_text, id_property)
            if method == "DELETE":
                if contact is not None:
                    store.archive(contact, store.tick())
                return 204, None
            if contact is None:
                return 404, Problem(404, "OBJECT_NOT_FOUND", "resource not found").body()
            return 200, contact.to_json(property_names(params))


def _id_label(match: re.Match[str]) -> str:
    """``/crm/v3/objects/deals/123`` as call counts name it: ``.../deals/{dealId}``."""
    return f"{OBJECTS}/{match.group(1)}/{_ID_LABELS[match.group(1)]}"


def _single(answer: Answer, ok_status: int) -> Answer:
    status, body = answer
    if status in (200, 201) and body is not None:
        return ok_status, body["results"][0]
    return status, body


def _now() -> int:
    return time.time_ns() // 1_000_000


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once
    emulator: HubSpotEmulator
    connections: set[socket.socket]

    def close_connections(self) -> None:
        """End open keep-alive connections, so a stopped emulator answers nobody."""
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 120  # idle keep-alive connections end eventually
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and benchmarks
        pass

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            status, body, headers = self.server.emulator.handle(
                self.command, self.path, self.headers.get("Authorization"), raw
            )
        except Exception as exc:  # an emulator bug: answer as HubSpot's 500 would, and go on
            status, headers = 500, {}
            body = error_body("INTERNAL_ERROR", f"internal error: {exc.__class__.__name__}: {exc}")
        if not self.path.startswith("/_emulator/"):
            emulator = self.server.emulator
            with emulator.store.lock:
                emulator.gate.statuses[status] += 1
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _reply


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground; the first line of stdout is the base URL."""
    parser = argparse.ArgumentParser(prog="python -m connectors.hubspot.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="emulator-token")
    parser.add_argument("--seed-contacts", type=int, default=0)
    parser.add_argument("--seed-companies", type=int, default=0)
    parser.add_argument("--seed-deals", type=int, default=0)
    parser.add_argument("--seed-archived", type=int, default=0, help="archived contacts")
    parser.add_argument(
        "--seed-sales", help="PEOPLE,COMPANIES,DEALS: deals associated with both (seed_sales)"
    )
    parser.add_argument("--token-ttl", type=float, default=DEFAULT_TTL, help="OAuth token life, s")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--rate-limit", help="MAX/INTERVAL_MS, e.g. 190/10000")
    parser.add_argument("--search-rate-limit", help="MAX/INTERVAL_MS, e.g. 5/1000")
    parser.add_argument("--daily-limit", type=int)
    parser.add_argument(
        "--limits",
        choices=("none", "published"),
        default="none",
        help="published: HubSpot's published limits of a private app (see --tier)",
    )
    parser.add_argument("--tier", choices=("enterprise", "professional"), default="enterprise")
    parser.add_argument("--search-cap", type=int, default=10_000)
    args = parser.parse_args(argv)
    try:
        rate = parse_rate(args.rate_limit, 10_000) if args.rate_limit else None
        search_rate = parse_rate(args.search_rate_limit, 1_000) if args.search_rate_limit else None
    except ValueError as exc:
        parser.error(str(exc))
    emulator = HubSpotEmulator(
        args.port,
        host=args.host,
        token=args.token,
        latency_ms=args.latency_ms,
        rate_limit=rate,
        daily_limit=args.daily_limit,
        search_rate_limit=search_rate,
        limits=args.limits,
        tier=args.tier,
        search_cap=args.search_cap,
        token_ttl=args.token_ttl,
    )
    if args.seed_sales:
        people, companies, deals = (int(n) for n in args.seed_sales.split(","))
        emulator.seed_sales(people, companies, deals)
    if args.seed_contacts:
        emulator.seed_contacts(args.seed_contacts)
    if args.seed_companies:
        emulator.seed_companies(args.seed_companies)
    if args.seed_deals:
        emulator.seed_deals(args.seed_deals)
    if args.seed_archived:
        emulator.seed_archived_contacts(args.seed_archived)
    emulator.start()
    print(emulator.url, flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
