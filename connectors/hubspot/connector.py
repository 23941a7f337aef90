"""``HubSpotConnector``: contacts, companies and deals through the official client
(hubspot-api-client 12), with their v4 associations.

Reads are incremental searches on each type's modified date (contacts
``lastmodifieddate``, companies and deals ``hs_lastmodifieddate``); writes are batch
upserts (keyed on the partner-id property, so a replay finds what it created) and batch
updates with a trace id on every input, then the associations they add; one refused
record costs only itself: a batch HubSpot refuses as a whole (update, upsert, v4
association create) is split until the refused input stands alone (``syncd.sync.split``),
and a batch create answers per input (207). ``connectors.hubspot.writes`` lists the
calls of a write. Every call goes through ``syncd.retry`` after
``connectors.hubspot.errors.translate``, with
the bearer token of ``connectors.hubspot.auth`` (a static token, or an OAuth app's token
refreshed before it expires and once after a 401).

Calls of one scan (``changes``) of a type with N records changed or in the lookback
window (read again ``overlap`` after a first read, see ``changes``), P to a page
(``page_size``) and A associated types (the distinct "@" targets of its field map):

- ``POST /crm/v3/objects/{type}/search``: one, newest first, a page of P (the new
  changes OR the lookback window, two filter groups): when it holds them all (N <= P),
  that is the whole scan; otherwise one more per page by id: 1 + ceil(N / P);
- ``POST /crm/v4/associations/{type}/{target}/batch/read``: A for each page holding
  records (a page's ids fit one read), more only for a record with more associations
  than HubSpot returns at once.

So an idle scan costs one search; a page of N <= P deals with a company and contacts
1 + 2 = 3 calls, and each further page 1 + 2. Archived records never come from search:
the engine's deletion sweep hands a slice of 100 linked ids to ``prefetch`` before the
scan, whose first search checks them (one more filter group, no more calls), then to
``deletions``: a batch read of the ones search did not find, read as archived, only when
some are missing (one batch read of the live ones first when the search could not
answer, on a busy cycle); its association sweep hands
``associations`` a slice (A v4 reads of 1,000 ids). ``fetch`` costs one batch read per
100 ids of a type plus A association reads for each of those batches.

The client builds, authenticates and sends every request; answers are read as JSON
(``_preload_content=False``) because the client's model deserialisation parses every
timestamp with dateutil: it took about 70% of a 100,000-contact scan.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from hubspot import HubSpot
from hubspot.crm import companies, contacts, deals
from urllib3.util.retry import Retry

from connectors.hubspot.associations import MAX_INPUTS, Associations, type_id
from connectors.hubspot.auth import (
    Credentials,
    OAuthCredentials,
    StaticCredentials,
    TokenSource,
    token_source,
)
from connectors.hubspot.errors import SYSTEM, VENDOR_ERRORS, HubSpotRequestError, translate
from connectors.hubspot.mapping import OBJECT_TYPES, ObjectMapping, epoch_ms, seen
from connectors.hubspot.schema import problems as schema_problems
from connectors.hubspot.writes import ObjectWriter
from syncd.daemon.pacing import Pacer
from syncd.errors import AuthError, TransientError
from syncd.model import (
    Change,
    Cursor,
    FieldMap,
    FieldType,
    Outcome,
    Page,
    PartnerFields,
    Record,
    RecordRef,
    SchemaProblem,
    Value,
    partner_field_of,
)
from syncd.retry import RetryPolicy, call_with_retry
from syncd.sync.split import Splitter

PACKAGES: dict[str, Any] = {"contacts": contacts, "companies": companies, "deals": deals}
"""Each object type's package of the client (its APIs, models and ApiException)."""
DAILY = "X-HubSpot-RateLimit-Daily"
RATE_MAX = "X-HubSpot-RateLimit-Max"
RATE_INTERVAL = "X-HubSpot-RateLimit-Interval-Milliseconds"
OBJECTS_OF = {"person": "contacts", "company": "companies", "deal": "deals"}
DEFAULT_STAGE_FIELDS: Mapping[str, Sequence[str]] = {
    "contacts": ("lifecyclestage", "hs_lead_status"),
    "deals": ("dealstage", "pipeline"),
}
DEFAULT_RETRY = RetryPolicy()
BATCH_READ = 100
"""Ids per batch read of objects (HubSpot's batch limit)."""
PIPELINES = "GET /crm/v3/pipelines/deals"
Answer = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ObjectApis:
    """One object type's APIs, sharing one ApiClient (so one connection pool)."""

    basic: Any
    batch: Any
    search: Any

    @classmethod
    def of(cls, client: HubSpot, kind: str) -> ObjectApis:
        basic = getattr(client.crm, kind).basic_api
        package = PACKAGES[kind]
        return cls(basic, package.BatchApi(basic.api_client), package.SearchApi(basic.api_client))


class HubSpotConnector:
    """HubSpot contacts, companies and deals as a ``syncd.abc.Connector``."""

    system = SYSTEM

    def __init__(
        self,
        *,
        host: str,
        access_token: str | None = None,
        credentials: Credentials | None = None,
        field_map: FieldMap,
        field_types: Mapping[str, Mapping[str, FieldType]],
        stage_fields: Mapping[str, Sequence[str]] = DEFAULT_STAGE_FIELDS,
        partner_id_field: PartnerFields = "syncd_salesforce_id",
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy = DEFAULT_RETRY,
        page_size: int = 200,
        batch_size: int = 100,
        settle: timedelta = timedelta(seconds=5),
        clock: Callable[[], float] = time.time,
        overlap: timedelta = timedelta(minutes=5),
        pacer: Pacer | None = None,
    ) -> None:
        """``credentials`` (or a plain ``access_token``) say how to authenticate
        (``connectors.hubspot.auth``); ``clock`` times the OAuth token's refresh;
        ``pacer`` (``syncd.daemon.pacing``) keeps the calls under the portal's rate limits
        (None: no pacing)."""
        if credentials is None:
            if access_token is None:
                raise ValueError("the HubSpot connector needs credentials or an access_token")
            credentials = StaticCredentials(access_token)
        unknown = sorted(set(field_map) - set(OBJECT_TYPES))
        if unknown:
            raise ValueError(f"the HubSpot connector syncs {OBJECT_TYPES}, not {unknown}")
        self.mappings = {
            kind: ObjectMapping(
                kind,
                dict(field_map[kind]),
                dict(field_types.get(kind, {})),
                tuple(stage_fields.get(kind, ())),
                partner_field_of(partner_id_field, kind) or "",
            )
            for kind in OBJECT_TYPES
            if kind in field_map
        }
        for mapping in self.mappings.values():
            for target in mapping.link_types:
                type_id(mapping.kind, target)  # an association we could not write: say so now
        # No token in the client's configuration: each call carries the current one.
        client = HubSpot(host=host.rstrip("/"), retry=Retry(0))
        oauth = None
        if isinstance(credentials, OAuthCredentials):
            oauth = client.oauth.tokens_api.api_client
        self._auth: TokenSource = token_source(credentials, oauth, timeout=timeout, clock=clock)
        self._check_kind = next(iter(self.mappings), "contacts")
        self._objects = {
            kind: ObjectApis.of(client, kind) for kind in {*self.mappings, self._check_kind}
        }
        self._properties = client.crm.properties.core_api
        self._pipelines = client.crm.pipelines.pipelines_api
        association_api = client.crm.associations.v4.batch_api
        self._splitter = Splitter()
        self._associations = Associations(association_api, self._call, self._splitter)
        self._clients = [
            *(apis.basic.api_client for apis in self._objects.values()),
            self._properties.api_client,
            self._pipelines.api_client,
            association_api.api_client,
            *([oauth] if oauth is not None else []),
        ]
        self._timeout, self._retry = timeout, retry
        self.pacer = pacer
        self.page_size = max(1, min(page_size, 200))
        self.batch_size = max(1, min(batch_size, 100))
        self._calls: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._usage: tuple[int, int] | None = None
        self.settle = settle
        self.overlap = overlap
        """How long after a scan its window is searched again (``Cursor.trail``)."""
        self._probes: dict[str, tuple[str, ...]] = {}
        """Per type, the linked ids the next scan's first search checks are live."""
        self._probed: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {}
        """Per type, (the ids probed, those the search found live)."""
        self._writer = ObjectWriter(
            batch_apis={kind: self._objects[kind].batch for kind in self.mappings},
            packages=PACKAGES,
            mappings=self.mappings,
            associations=self._associations,
            call=self._call,
            batch_size=self.batch_size,
            splitter=self._splitter,
        )

    def _call(self, label: str, request: Callable[..., Any]) -> Answer:
        """One API call as parsed JSON, translated to syncd errors and retried per policy;
        after a 401 the token source renews the token once and the call is made again."""
        try:
            return self._attempts(label, request)
        except AuthError as refused:
            if refused.status != 401:
                raise
            final = call_with_retry(self._retry, partial(self._auth.renew, refused))
            if final is not None:
                raise final from refused
            return self._attempts(label, request)

    def _attempts(self, label: str, request: Callable[..., Any]) -> Answer:
        search = label.endswith("/search")
        rates = ("general", "search") if search else ("general",)

        def attempt() -> Answer:
            auth = self._auth.request_auth()  # may refresh first: not a call of ``label``
            try:
                with self.pacer.slot(*rates) if self.pacer else nullcontext():
                    self._calls[label] += 1
                    response = request(
                        _preload_content=False, _request_timeout=self._timeout, _request_auth=auth
                    )
                    try:
                        raw = response.data
                    finally:
                        response.release_conn()
            except VENDOR_ERRORS as exc:
                status = int(getattr(exc, "status", 0) or 0)
                self._statuses[status] += 1
                error = translate(exc)
                if status == 429 and self.pacer is not None:
                    wait = getattr(error, "retry_after", None)
                    self.pacer.pause(wait if wait is not None or not search else 1.0)
                raise error from exc
            self._statuses[int(getattr(response, "status", 200) or 200)] += 1
            self._note_usage(getattr(response, "headers", None) or {})
            try:
                answer = orjson.loads(raw) if raw else {}
            except ValueError as exc:
                raise TransientError(SYSTEM, f"unreadable answer to {label}: {exc}") from exc
            return answer if isinstance(answer, dict) else {}

        return call_with_retry(self._retry, attempt)

    def check(self) -> None:
        """One cheap authenticated call."""
        kind = self._check_kind
        request = partial(self._objects[kind].basic.get_page, limit=1, archived=False)
        self._call(f"GET /crm/v3/objects/{kind}", request)

    def kinds(self, obj: str) -> Sequence[str]:
        kind = OBJECTS_OF.get(obj)
        return [kind] if kind in self.mappings else []

    def _mapping(self, kind: str) -> ObjectMapping:
        mapping = self.mappings.get(kind)
        if mapping is None:
            raise ValueError(f"the HubSpot connector reads {sorted(self.mappings)}, not {kind!r}")
        return mapping

    # -- reads ------------------------------------------------------------------------

    def changes(self, kind: str, cursor: Cursor) -> Iterator[Page]:
        """Records of ``kind`` changed in one window from ``cursor.since``, and those of
        the lookback window read a second time (the call pattern is in the module
        docstring). Archived records come from ``deletions``, not from here.

        The window ends just after the newest change HubSpot holds (the first search,
        newest first: the server's clock, not ours), and ``settle`` before now at the
        latest, because search is eventually consistent: a record written a moment ago
        may not be indexed yet. A change indexed later than that, stamped behind the
        cursor, would be lost for good: so each window is searched again ``overlap``
        later (``Cursor.trail``), in the same search as the new changes (a second filter
        group), and what that finds unchanged the engine settles against its base.

        The first search asks for a full page: when it holds every match (a quiet or
        lightly used portal), it is the whole scan. Otherwise pages are keyed on
        ``hs_object_id`` (``id > last id``, ascending), never on ``after``: an offset
        window shifts when a record already read is edited during the scan and loses an
        unread one, and offsets stop at the 10,000-result cap; an id keyset does neither.
        Only the last page carries the advanced cursor, so a scan cut short is read again
        whole (re-reading is harmless: the merge finds no change).
        """
        mapping = self._mapping(kind)
        modified = mapping.modified
        began = datetime.now(UTC)
        head: list[dict[str, str]] = []
        if cursor.since is not None:
            head = [_filter(modified, "GTE", cursor.since)]
        lookback = cursor.lookback(began, self.overlap)
        again: list[dict[str, str]] = []
        if lookback is not None:
            again = [_filter(modified, "GTE", lookback[0]), _filter(modified, "LT", lookback[1])]
        trail = lookback[1] if lookback else cursor.trail
        probe = self._probes.pop(kind, ()) if head else ()
        self._probed.pop(kind, None)
        probing = [[_within("hs_object_id", probe)]] if probe else []
        first = self._search_page(
            mapping, [head, *([again] if again else []), *probing], modified, descending=True
        )
        results = first.get("results") or []
        if probe and not (first.get("paging") or {}).get("next"):  # it holds every match
            live = frozenset(str(r.get("id")) for r in results) & frozenset(probe)
            self._probed[kind] = (probe, live)
        if not results:
            if trail != cursor.trail:
                yield Page([], replace(cursor, trail=trail))
            return
        upper = mapping.record(results[0]).modified_at + timedelta(milliseconds=1)
        if self.settle:
            upper = min(upper, began - self.settle)
        since = cursor.since
        moved = since is None or upper > since
        end = Cursor(upper, trail=trail) if moved else replace(cursor, trail=trail)

        def wanted(record: Record) -> bool:
            if lookback is not None and lookback[0] <= record.modified_at < lookback[1]:
                return True
            if not moved or record.modified_at >= upper:
                return False
            return since is None or (record.modified_at >= since and not seen(cursor, record))

        if not (first.get("paging") or {}).get("next"):  # the first page held them all
            records = sorted(
                filter(wanted, map(mapping.record, results)),
                key=lambda r: (r.modified_at, int(r.ref.id)),
            )
            if records or end != cursor:  # not for the probed ids alone: nothing to store
                yield Page(self._linked(mapping, records), end)
            return
        if not moved and not again:  # all it found is too new to read yet
            if trail != cursor.trail:
                yield Page([], end)
            return
        window = [*head, _filter(modified, "LT", upper)]
        last_id, pending = "0", list[Record]()
        while True:
            after = _filter("hs_object_id", "GT", last_id)
            groups = [[*window, after]] if moved else []
            groups += [[*again, after]] if again else []
            answer = self._search_page(mapping, groups, "hs_object_id")
            results = answer.get("results") or []
            if pending:
                yield Page(pending, cursor)
            pending = self._linked(mapping, [r for r in map(mapping.record, results) if wanted(r)])
            if not results or not (answer.get("paging") or {}).get("next"):
                break
            last_id = str(results[-1]["id"])
        yield Page(pending, end)

    def _linked(self, mapping: ObjectMapping, records: list[Record]) -> list[Record]:
        """Live records with their associations, read in one batch per associated type."""
        if not records or not mapping.links:
            return records
        ids = [r.ref.id for r in records]
        linked = self._associations.read_all(mapping.kind, mapping.link_types, ids)
        return [mapping.with_links(r, linked) for r in records]

    def _search_page(
        self,
        mapping: ObjectMapping,
        groups: list[list[dict[str, str]]],
        sort: str,
        *,
        descending: bool = False,
        limit: int | None = None,
    ) -> Answer:
        """One search; ``groups`` are OR'ed filter groups (an empty group: every record;
        no group at all is left out)."""
        if any(not group for group in groups):
            groups = []
        request = PACKAGES[mapping.kind].PublicObjectSearchRequest(
            filter_groups=[{"filters": group} for group in groups],
            sorts=[
                {"propertyName": sort, "direction": "DESCENDING" if descending else "ASCENDING"}
            ],
            properties=mapping.read_properties,
            limit=limit or self.page_size,
        )
        search = self._objects[mapping.kind].search
        return self._call(
            f"POST /crm/v3/objects/{mapping.kind}/search", partial(search.do_search, request)
        )

    def prefetch(self, kind: str, sweep: str, ids: Sequence[str]) -> bool:
        """Fold the deletion check of ``ids`` (at most a slice) into the next scan of
        ``kind``: its first search gets one more filter group, ``hs_object_id IN ids``,
        so that the answer names which of them are live, at no call of its own. True
        when it will (``deletions`` then uses that answer); associations cannot be
        folded into a search.

        The probe needs the first search to hold every match (the changes and the live
        probed ids within one page of ``page_size``): on a busy cycle it is left
        unanswered and ``deletions`` reads the slice by batch read as before."""
        if sweep != "deletions" or kind not in self.mappings or not ids:
            return False
        self._probes[kind] = tuple(dict.fromkeys(ids))[:BATCH_READ]
        self._probed.pop(kind, None)
        return True

    def sweep_slice(self, kind: str, sweep: str) -> int:
        """Linked ids one call of a sweep takes: ``deletions`` 100 (a batch read),
        ``associations`` 1,000 (a v4 batch read per associated type; kinds without
        association fields: 0)."""
        mapping = self.mappings.get(kind)
        if mapping is None:
            return 0
        if sweep == "deletions":
            return BATCH_READ
        if sweep == "associations" and mapping.links:
            return MAX_INPUTS
        return 0

    def deletions(self, kind: str, ids: Sequence[str]) -> list[Record]:
        """The records among ``ids`` HubSpot has archived, as deleted records.

        Search never returns archived records, and the archived list is ordered by id,
        not by when a record was archived, so reading it whole costs a call per 100
        archived records (forever: the list only grows). Instead the engine hands a
        rotating slice of linked ids: one batch read (``archived=false``, 100 ids, one
        property) finds the live ones (HubSpot answers 207 naming the others); only when
        some are missing, one more batch read (``archived=true``) reads them as they were
        archived. An id missing from both (merged away, or purged after 90 days) is left
        out: nothing can be said of it.
        """
        mapping = self._mapping(kind)
        missing: list[str] = []
        wanted = tuple(dict.fromkeys(ids))
        probed = self._probed.pop(kind, None)
        if probed is not None and probed[0] == wanted:
            # the scan's search named the live ones; search lags, so a missing id is
            # only a suspect until the archived batch read below finds it archived
            missing = [i for i in wanted if i not in probed[1]]
            wanted = ()
        for chunk in _chunks(list(wanted), BATCH_READ):
            answer = self._batch_read(mapping, chunk, ["hs_object_id"], archived=False)
            live = {str(o.get("id")) for o in answer.get("results") or []}
            missing += [i for i in chunk if i not in live]
        gone: list[Record] = []
        for chunk in _chunks(missing, BATCH_READ):
            answer = self._batch_read(mapping, chunk, mapping.read_properties, archived=True)
            gone += [mapping.record(o, deleted=True) for o in answer.get("results") or []]
        return sorted(gone, key=lambda r: (r.modified_at, int(r.ref.id)))

    def associations(self, kind: str, ids: Sequence[str]) -> dict[str, dict[str, Value]]:
        """Per id, its association fields as HubSpot holds them now (canonical name ->
        joined ids): one v4 batch read per associated type and 1,000 ids. Adding a
        contact to a deal does not move the deal's modified date, so scans miss it."""
        mapping = self._mapping(kind)
        if not mapping.links or not ids:
            return {}
        linked = self._associations.read_all(kind, mapping.link_types, list(ids))
        return {
            i: {name: linked.get(target, {}).get(i) for name, target in mapping.links.items()}
            for i in ids
        }

    def _batch_read(
        self, mapping: ObjectMapping, ids: Sequence[str], properties: list[str], *, archived: bool
    ) -> Answer:
        request = PACKAGES[mapping.kind].BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids], properties=properties, properties_with_history=[]
        )
        batch = self._objects[mapping.kind].batch
        try:
            return self._call(
                f"POST /crm/v3/objects/{mapping.kind}/batch/read",
                partial(batch.read, request, archived=archived),
            )
        except HubSpotRequestError as exc:
            if exc.status != 404:  # some ids missing: 207; all of them: 404 (reported)
                raise
            return {}

    def fetch(self, refs: Sequence[RecordRef]) -> list[Record]:
        """Records by id with their associations, 100 a call per type; unknown and
        archived ids (and kinds not synced) are left out."""
        wanted = list(dict.fromkeys((r.kind, r.id) for r in refs if r.kind in self.mappings))
        records: list[Record] = []
        for kind, mapping in self.mappings.items():
            ids = [id_ for k, id_ in wanted if k == kind]
            for chunk in _chunks(ids, BATCH_READ):
                answer = self._batch_read(mapping, chunk, mapping.read_properties, archived=False)
                found = [mapping.record(o) for o in answer.get("results") or []]
                records.extend(self._linked(mapping, found))
        order = {key: n for n, key in enumerate(wanted)}
        return sorted(records, key=lambda r: order.get((r.ref.kind, r.ref.id), len(order)))

    # -- writes -----------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """Upserts (creates) and updates, batched per type, then associations; one outcome
        per change (``connectors.hubspot.writes`` lists the calls)."""
        return self._writer.apply(changes)

    def mark_people(self, ids: Sequence[str], properties: Mapping[str, str]) -> list[Outcome]:
        """Set syncd's own flags (``properties``, "" clears) on contacts, 100 a batch;
        one outcome per id (``syncd.sync.sla``)."""
        return self._writer.mark("contacts", ids, properties)

    def associate(
        self, kind: str, field: str, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, str | None]]:
        """Associate records of ``kind`` with the records of association field ``field``
        (``syncd.abc.Associating``): v4 batch creates of the default type, 1,000 a call
        (``connectors.hubspot.associations``); the refused pairs with HubSpot's words."""
        mapping = self.mappings.get(kind)
        target = mapping.links.get(field) if mapping else None
        if target is None:
            raise ValueError(f"{field!r} is no association field of HubSpot {kind}")
        if not pairs:
            return {}
        refused = self._associations.add(kind, target, pairs)
        return {pair: (r.message, r.code) for pair, r in refused.items()}

    # -- the rest ---------------------------------------------------------------------

    def id_problem(self, value: str) -> str | None:
        """Why ``value`` cannot be a HubSpot record id: ids are positive whole numbers
        (``hs_object_id``), at most 19 digits (a signed 64-bit number)."""
        if not (value.isascii() and value.isdigit()):
            return f"ids are digits only ({len(value)} characters given)"
        if len(value) > 19:
            return f"{len(value)} digits, ids have at most 19"
        return None

    def stage_fields(self, kind: str) -> Sequence[str]:
        mapping = self.mappings.get(kind)
        return tuple(mapping.stage_fields) if mapping else ()

    def refers_to(self, kind: str, field: str) -> frozenset[str] | None:
        """An association may name any record of its object type."""
        return None

    def picklists(self) -> Mapping[str, frozenset[str]]:
        """Options of every enumeration property of the synced types, merged by name; for
        deals, ``dealstage`` is every stage id of every pipeline, ``pipeline`` every id."""
        options: dict[str, frozenset[str]] = {}
        for kind in self.mappings:
            answer = self._call(
                f"GET /crm/v3/properties/{kind}", partial(self._properties.get_all, kind)
            )
            for prop in answer.get("results") or []:
                if prop.get("type") == "enumeration":
                    values = frozenset(str(o["value"]) for o in prop.get("options") or [])
                    name = str(prop["name"])
                    options[name] = options.get(name, frozenset()) | values
        if "deals" in self.mappings:
            pipelines = self._deal_pipelines()
            options["pipeline"] = frozenset(str(p["id"]) for p in pipelines)
            options["dealstage"] = frozenset(
                str(s["id"]) for p in pipelines for s in p.get("stages") or []
            )
        return options

    def stage_outcomes(self) -> dict[tuple[str, str], str]:
        """``("dealstage", stage id) -> "won" | "lost"`` for the closed deal stages.

        A closed stage (``metadata.isClosed`` "true") with probability 1 is won, with
        probability 0 lost; a closed stage with another probability is left out. Empty
        when deals are not synced.
        """
        if "deals" not in self.mappings:
            return {}
        outcomes: dict[tuple[str, str], str] = {}
        for pipeline in self._deal_pipelines():
            for stage in pipeline.get("stages") or []:
                metadata = stage.get("metadata") or {}
                if str(metadata.get("isClosed", "")).lower() != "true":
                    continue
                try:
                    probability = float(str(metadata.get("probability")))
                except ValueError:
                    continue
                if probability in (0.0, 1.0):
                    outcomes[("dealstage", str(stage["id"]))] = "won" if probability else "lost"
        return outcomes

    def stage_values(self) -> list[dict[str, str]]:
        """Every stage of every deal pipeline, with its pipeline (when deals are synced).

        Lifecycle stages and lead statuses are left out: portals refine them freely and
        the vocabulary reads them by their lifecycle stage.
        """
        if "deals" not in self.mappings:
            return []
        return [
            {"dealstage": str(stage["id"]), "pipeline": str(pipeline["id"])}
            for pipeline in self._deal_pipelines()
            for stage in pipeline.get("stages") or []
        ]

    def unwritable_stages(self, kind: str) -> Mapping[str, frozenset[str]]:
        """HubSpot takes every stage value it offers."""
        return {}

    def schema_problems(self, written: Mapping[str, Collection[str]]) -> list[SchemaProblem]:
        """Mapped properties missing, of an incompatible type or read-only where syncd
        writes them; the partner-id property missing or not unique (one properties read
        per synced type; ``connectors.hubspot.schema`` has the rules)."""
        found: list[SchemaProblem] = []
        for kind, mapping in self.mappings.items():
            answer = self._call(
                f"GET /crm/v3/properties/{kind}", partial(self._properties.get_all, kind)
            )
            found += schema_problems(mapping, answer.get("results") or [], written.get(kind, ()))
        return found

    def _deal_pipelines(self) -> list[Answer]:
        answer = self._call(PIPELINES, partial(self._pipelines.get_all, "deals"))
        return list(answer.get("results") or [])

    def _note_usage(self, headers: Mapping[str, str]) -> None:
        daily, left = headers.get(DAILY), headers.get(DAILY + "-Remaining")
        if daily and left and daily.isdigit() and left.isdigit():
            self._usage = (int(daily) - int(left), int(daily))
        most, interval = headers.get(RATE_MAX), headers.get(RATE_INTERVAL)
        if self.pacer and most and interval and most.isdigit() and interval.isdigit():
            self.pacer.observe_limit("general", int(most), int(interval) / 1000)

    def api_usage(self) -> tuple[int, int] | None:
        """(calls used today, daily limit) from the last ``X-HubSpot-RateLimit-Daily*``."""
        return self._usage

    def api_statuses(self) -> Mapping[int, int]:
        """HTTP answers by status code (0: no answer, a connection error)."""
        return dict(self._statuses)

    def api_calls(self) -> Mapping[str, int]:
        """HTTP requests sent (retries and token refreshes included), by "METHOD path"."""
        return {**self._calls, **self._auth.api_calls()}

    def split_calls(self) -> int:
        """Calls made beyond one per batch, splitting batches HubSpot refused as a whole
        to find the refused inputs (``syncd.sync.split``); 0 while nothing is refused."""
        return self._splitter.extra_calls

    def close(self) -> None:
        for api_client in self._clients:
            api_client.close()
            api_client.rest_client.pool_manager.clear()
        if self.pacer is not None:
            self.pacer.close()


def _filter(name: str, operator: str, value: datetime | str) -> dict[str, str]:
    """One search filter; instants as epoch milliseconds."""
    text = str(epoch_ms(value)) if isinstance(value, datetime) else value
    return {"propertyName": name, "operator": operator, "value": text}


def _within(name: str, values: Sequence[str]) -> dict[str, Any]:
    """One search filter: ``name`` is one of ``values``."""
    return {"propertyName": name, "operator": "IN", "values": list(values)}


def _chunks(ids: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])
